#!/usr/bin/python3
"""Boot benchmark, vigil beside QEMU (microvm and pc), run INSIDE the lab
(bench/run.sh with LAB=1): Debian's stock kernel, the default initramfs, 2
vCPUs, 1 GiB, `quiet vigil.run=poweroff` (guest/init prints its own uptime as
init started, then powers off), as a bzImage and through the PVH entry (the
ELF vmlinux). Per VMM and kernel:
  - whole run: exec to exit of the VMM;
  - guest to init: the guest's /proc/uptime read first thing by /init;
  - with --trace-only (a separate pass, after the timed boots): exits by
    reason and nested page faults (SVM exit 0x400) as L1's KVM saw them, a
    tracefs histogram trigger on kvm:kvm_exit, and KVM's debugfs counters,
    one boot per VMM and kernel ($LAB_RESULTS/boot-trace.json), so the
    tracing costs no timed run.
Runs are interleaved (every VMM and kernel once per round, the order reversed
every other round); medians of LAB_BENCH_RUNS (default 3) with min-max. Lab
times are emulation times: read them side by side only. Writes the figures
to $LAB_RESULTS/boot.json. A benchmark, never a test.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time

RUNS = int(os.environ.get("LAB_BENCH_RUNS", "3"))
G = os.environ.get("LAB_GUEST", "build/guest")
OUT = os.environ.get("LAB_RESULTS", "/tmp/lab-results")
INITRD = f"{G}/initramfs.cpio.gz"
CMDLINE = "quiet vigil.run=poweroff"
MEM, CPUS = "1024", "2"
TRACING = "/sys/kernel/tracing"
DEBUGFS = "/sys/kernel/debug/kvm"
TRACE_TIMEOUT = int(os.environ.get("LAB_TRACE_TIMEOUT", "240"))
TRIGGER = "hist:keys=exit_reason:vals=hitcount:sort=hitcount.descending:size=256"
UPTIME_RE = re.compile(rb"vigil guest: uptime at init ([\d.]+)")
# SVM exit codes (AMD APM vol. 2, appendix C) for the ones a Linux boot makes.
SVM_EXITS = {0x060: "INTR", 0x061: "NMI", 0x064: "VINTR", 0x065: "CR0_SEL_WRITE", 0x06e: "RDTSC",
             0x06f: "RDPMC", 0x072: "CPUID", 0x074: "IRET", 0x077: "PAUSE", 0x078: "HLT",
             0x07b: "IOIO", 0x07c: "MSR", 0x07f: "SHUTDOWN", 0x081: "VMMCALL", 0x087: "RDTSCP",
             0x08d: "XSETBV", 0x400: "NPF", 0x401: "AVIC_INCOMPLETE_IPI", 0x402: "AVIC_UNACCELERATED"}
for _n in range(16):
    SVM_EXITS[_n] = f"READ_CR{_n}"
    SVM_EXITS[0x10 + _n] = f"WRITE_CR{_n}"
    SVM_EXITS[0x20 + _n] = f"READ_DR{_n}"
    SVM_EXITS[0x30 + _n] = f"WRITE_DR{_n}"
for _n in range(32):
    SVM_EXITS[0x40 + _n] = f"EXCP{_n}"


def vigil(kernel):
    return ["build/vigil", "run", "--kernel", kernel, "--initrd", INITRD, "--mem", MEM + "M",
            "--cpus", CPUS, "--cmdline", CMDLINE, "--console", "stdio"]


def qemu(kernel, machine):
    # reboot=t as in lab/scenarios.py: a microvm ACPI reset can hang nested
    # KVM; a poweroff never takes that path, it only keeps the lines alike.
    return ["qemu-system-x86_64", "-M", machine, "-enable-kvm", "-cpu", "host", "-m", MEM,
            "-smp", CPUS, "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
            "-kernel", kernel, "-initrd", INITRD, "-append", "console=ttyS0 reboot=t " + CMDLINE]


VMMS = [
    ("vigil", vigil),
    ("qemu microvm", lambda k: qemu(k, "microvm,rtc=on")),
    ("qemu pc", lambda k: qemu(k, "pc")),
]
KERNELS = [("bzImage", f"{G}/vmlinuz"), ("PVH", f"{G}/vmlinux")]


def run_once(argv):
    """{'wall_s', 'init_s', 'status'}: the guest's console is read from the
    VMM's stdout (the guest prints one line at init, so little to read)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=900)
    except subprocess.TimeoutExpired as e:
        return {"wall_s": time.monotonic() - t0, "init_s": None, "status": "timeout",
                "tail": ((e.stdout or b"")[-300:]).decode(errors="replace")}
    wall = time.monotonic() - t0
    m = UPTIME_RE.search(p.stdout)
    return {"wall_s": wall, "init_s": float(m.group(1)) if m else None, "status": p.returncode,
            "tail": (p.stdout[-300:] + p.stderr[-300:]).decode(errors="replace") if not m else ""}


def tracing_ok():
    if not os.path.isdir(f"{TRACING}/events"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACING], stderr=subprocess.DEVNULL)
    if not os.path.isdir(DEBUGFS):
        subprocess.run(["mount", "-t", "debugfs", "nodev", "/sys/kernel/debug"], stderr=subprocess.DEVNULL)
    return os.path.exists(f"{TRACING}/events/kvm/kvm_exit/trigger") or os.path.isdir(DEBUGFS)


# KVM's per-VM debugfs counters read while a traced boot runs: plain
# counters only (some files there, e.g. mmu_rmaps_stat, walk the MMU).
KVM_COUNTERS = ("exits", "io_exits", "mmio_exits", "halt_exits", "irq_exits", "irq_window_exits",
                "pf_taken", "pf_fixed", "insn_emulation", "hypercalls")


def kvm_stats(pid):
    """KVM's debugfs counters of the VM of process pid ({name: n}), or {}."""
    out = {}
    try:
        for d in os.listdir(DEBUGFS):
            if d.startswith(f"{pid}-"):
                for n in KVM_COUNTERS:
                    try:
                        with open(f"{DEBUGFS}/{d}/{n}") as f:
                            out[n] = out.get(n, 0) + int(f.read().split()[0])
                    except (OSError, ValueError, IndexError):
                        pass
    except OSError:
        pass
    return out


def traced(argv):
    """One more boot, watched: ({exit reason: count} from the tracefs
    histogram or None, KVM's debugfs counters as last read before the VM
    went away: polled, so the last ~0.5 s of the run may be missing)."""
    trig = f"{TRACING}/events/kvm/kvm_exit/trigger"
    hist = True
    try:
        with open(trig, "w") as f:
            f.write(TRIGGER)
    except OSError as e:
        print(f"  (no exit histogram: {e})", flush=True)
        hist = False
    last = {}
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        while p.poll() is None:
            s = kvm_stats(p.pid)
            if s:
                last = s
            if time.monotonic() - t0 > TRACE_TIMEOUT:
                p.kill()
                p.wait()
                print(f"  (a traced boot took over {TRACE_TIMEOUT} s: killed)", flush=True)
                break
            time.sleep(0.5)
        text = ""
        if hist:
            with open(f"{TRACING}/events/kvm/kvm_exit/hist") as f:
                text = f.read()
    finally:
        if hist:
            with open(trig, "w") as f:
                f.write("!" + TRIGGER)
    counts = {}
    for m in re.finditer(r"exit_reason:\s*(\d+)\s*\}\s*hitcount:\s*(\d+)", text):
        name = SVM_EXITS.get(int(m.group(1)), f"{int(m.group(1)):#x}")
        counts[name] = counts.get(name, 0) + int(m.group(2))
    return (counts if hist else None), last


def st(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt(s):
    if not s:
        return "-"
    return f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})"


def trace_only():
    """One traced boot per VMM and kernel: exits by reason as L1 saw them.
    Its own pass (bench/run.sh runs it after the other lab sections), so a
    boot that tracing slows past its timeout costs no other figure."""
    out = {}
    if not tracing_ok():
        print("boot trace: neither tracefs's kvm:kvm_exit nor KVM's debugfs in L1")
        return 0
    for v, mk in VMMS:
        for k, kp in KERNELS:
            print(f"  traced boot: {v} {k}", flush=True)
            t0 = time.monotonic()
            try:
                e, ks = traced(mk(kp))
            except (OSError, subprocess.SubprocessError) as err:
                print(f"  (traced boot of {v} {k} failed: {err})", flush=True)
                continue
            out[f"{v}/{k}"] = {"exits": e, "kvm_debugfs": ks, "wall_s": time.monotonic() - t0}
            top = ", ".join(f"{n} {c}" for n, c in sorted((e or {}).items(), key=lambda t: -t[1])[:6])
            print(f"    {time.monotonic() - t0:.1f} s; exits {sum((e or {}).values())}: {top}; debugfs {ks}",
                  flush=True)
            with open(f"{OUT}/boot-trace.json", "w") as f:
                json.dump(out, f, indent=1)
    return 0


def main():
    if "--trace-only" in sys.argv:
        return trace_only()
    os.makedirs(OUT, exist_ok=True)
    raw = {(v, k): [] for v, _ in VMMS for k, _ in KERNELS}
    combos = [(v, mk, k, kp) for v, mk in VMMS for k, kp in KERNELS]
    print(f"boot: {len(combos)} cases x {RUNS} rounds, 2 vCPUs, 1 GiB, '{CMDLINE}'", flush=True)
    for r in range(RUNS):
        for v, mk, k, kp in (combos if r % 2 == 0 else combos[::-1]):
            x = run_once(mk(kp))
            raw[(v, k)].append(x)
            print(f"  round {r + 1} {v:<13} {k:<8} {x['wall_s']:7.2f} s, init at "
                  f"{x['init_s'] if x['init_s'] is not None else '-'} s, exit {x['status']}"
                  + (f"  [{x['tail'].strip()[-160:]!r}]" if x["tail"] else ""), flush=True)
    with open(f"{OUT}/boot-timed.json", "w") as f:
        json.dump({f"{v}/{k}": xs for (v, k), xs in raw.items()}, f, indent=1)
    res = {"runs": RUNS, "mem_mib": int(MEM), "cpus": int(CPUS), "cmdline": CMDLINE, "cases": {}}
    print(f"\nboot to poweroff in the lab, median (min-max) of {RUNS}, lab seconds (emulated: compare side by side)")
    print(f"{'VMM':<14}{'kernel':<9}{'whole run s':>22}{'guest to init s':>22}{'exits':>9}{'NPF':>8}  top exits")
    for k, _ in KERNELS:
        for v, _ in VMMS:
            xs = raw[(v, k)]
            ok = [x for x in xs if x["init_s"] is not None]
            c = {"wall_s": st([x["wall_s"] for x in ok]), "init_s": st([x["init_s"] for x in ok]),
                 "statuses": [x["status"] for x in xs], "failed": len(xs) - len(ok),
                 "exits": None, "kvm_debugfs": None}
            res["cases"][f"{v}/{k}"] = c
            e = c["exits"] or {}
            ks = c["kvm_debugfs"] or {}
            if not e and ks:  # no histogram: KVM's own counters (exits, pf_taken = nested faults)
                e = {"NPF": ks.get("pf_taken", 0), "IOIO": ks.get("io_exits", 0),
                     "MMIO": ks.get("mmio_exits", 0), "HLT": ks.get("halt_exits", 0),
                     "INTR": ks.get("irq_exits", 0)}
                e["other"] = max(0, ks.get("exits", 0) - sum(e.values()))
            top = ", ".join(f"{n} {cnt}" for n, cnt in sorted(e.items(), key=lambda t: -t[1])[:4])
            print(f"{v:<14}{k:<9}{fmt(c['wall_s']):>22}{fmt(c['init_s']):>22}"
                  f"{sum(e.values()) if e else '-':>9}{e.get('NPF', '-') if e else '-':>8}  {top}"
                  + (f"  ({c['failed']} runs without the init line)" if c["failed"] else ""))
    for k, _ in KERNELS:
        a, b = res["cases"][f"vigil/{k}"], res["cases"][f"qemu microvm/{k}"]
        for key, label in (("wall_s", "whole run"), ("init_s", "guest to init")):
            if a[key] and b[key]:
                print(f"vigil / microvm, {k}, {label}: {a[key]['median'] / b[key]['median']:.2f}x (goal <= 0.80)")
    with open(f"{OUT}/boot.json", "w") as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
