#!/usr/bin/python3
"""Start-up cost on this host's own /dev/kvm, measured on the VMM's own
process (bench/startup_probe.c): wall time from exec to the first KVM_RUN,
the process's CPU time (user + sys, every thread) at that moment, and its
peak RSS (VmHWM, read as it exits: not wait4's ru_maxrss, which keeps the
forking parent's high-water mark across exec). The guest is the tiny
poweroff guest (a few dozen instructions), so this is the VMM's own set-up.
Median of N runs with min-max; runs of the VMMs are interleaved.

"bare KVM floor" is bench/kvm_floor.c: exec, then the KVM ioctls of a
1-vCPU 256 MiB guest and one OUT, nothing else; what a VMM spends above it
is its own. QEMU (microvm) and kvmtool beside vigil where they can run here: kvmtool
when `lkvm` is installed, QEMU (with -cpu host,-arch-capabilities: on
kvm_pvm it cannot set MSR 0x10a); the table says which ran.
The goals (issue 10) are printed as met or not; never a test assertion.
    bench/startup.py [BUILD_DIR] [--json FILE]        N=20 bench/startup.py
"""
import os
import shutil
import statistics
import subprocess
import sys
import json

JSON = None
if "--json" in sys.argv:  # --json FILE: the same figures, machine-readable
    i = sys.argv.index("--json")
    JSON = sys.argv[i + 1]
    del sys.argv[i:i + 2]
B = sys.argv[1] if len(sys.argv) > 1 else "build"
N = int(os.environ.get("N", "20"))
PROBE = f"{B}/bench/startup_probe"
GUEST = f"{B}/tests/guests/tiny-poweroff.bin"
# The same guest code as a PVH ELF (bench/qemu_pvh.S): QEMU cannot enter the
# tiny bzImage, which has no real-mode setup code.
QGUEST = f"{B}/bench/tiny-poweroff-pvh.elf"
GOAL_CPU_US = 1500
GOAL_RSS_KB = 2048


def kvm_kind():
    out = subprocess.run([f"{B}/vigil", "check"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("kvm module:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def probe(argv):
    """One run; {} when the VMM did not finish within 60 s (the probe is
    killed, and PTRACE_O_EXITKILL takes the VMM with it)."""
    try:
        out = subprocess.run([PROBE] + argv, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=60).stdout
    except subprocess.TimeoutExpired:
        return {}
    return dict(kv.split("=") for kv in out.split())


def vmms(kind):
    yield "vigil", [f"{B}/vigil", "run", "--kernel", GUEST, "--console", "none"], None
    # Not a VMM: the KVM set-up every VMM makes and nothing else (bench/kvm_floor.c).
    yield "bare KVM floor", [f"{B}/bench/kvm_floor"], None
    lkvm = shutil.which("lkvm")
    yield ("kvmtool", [lkvm, "run", "-k", GUEST, "-m", "256", "-c", "1", "--console", "serial"]
           if lkvm else None, None if lkvm else "not installed (no lkvm on PATH)")
    qemu = shutil.which("qemu-system-x86_64")
    why = None
    if not qemu:
        why = "not installed"
    elif not os.path.exists(QGUEST):
        why = f"{QGUEST} missing (make {QGUEST})"
    # -cpu host without arch-capabilities: on kvm_pvm QEMU aborts setting
    # MSR 0x10a otherwise; elsewhere the guest does not read it either.
    yield ("qemu microvm",
           [qemu, "-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "256",
            "-display", "none",
            "-serial", "null", "-monitor", "none", "-no-reboot", "-kernel", QGUEST,
            "-device", "isa-debug-exit,iobase=0x604,iosize=2"] if not why else None, why)


def fmt(xs):
    if not xs:
        return "-"
    return f"{statistics.median(xs):.0f} ({min(xs):.0f}-{max(xs):.0f})"


def main():
    kind = kvm_kind()
    rows = [(name, argv, why, {"wall": [], "cpu": [], "rss": [], "anon": [], "file": []}) for name, argv, why in vmms(kind)]
    for _ in range(N):
        for name, argv, why, r in rows:
            if not argv:
                continue
            p = probe(argv)
            if int(p.get("first_run_wall_us", -1)) < 0:
                r["fail"] = (f"no KVM_RUN (status {p.get('status')})" if p
                             else "did not exit within 60 s")
                continue
            r["wall"].append(int(p["first_run_wall_us"]))
            r["cpu"].append(int(p["first_run_cpu_us"]))
            r["rss"].append(int(p["peak_rss_kb"]))
            r["anon"].append(int(p["anon_kb"]))
            r["file"].append(int(p["file_kb"]))
    print(f"start-up of a tiny guest, median (min-max) of {N}, this host's KVM: {kind}")
    print(f"{'VMM':<14} {'exec->KVM_RUN us':>20} {'CPU at KVM_RUN us':>20} {'peak RSS KiB':>20}"
          f" {'anon / file KiB':>16}")
    for name, argv, why, r in rows:
        why = why or r.get("fail")
        if why and not r["wall"]:
            print(f"{name:<14} {'-':>20} {'-':>20} {'-':>20} {'-':>16}  {why}")
            continue
        af = f"{statistics.median(r['anon']):.0f} / {statistics.median(r['file']):.0f}"
        print(f"{name:<14} {fmt(r['wall']):>20} {fmt(r['cpu']):>20} {fmt(r['rss']):>20} {af:>16}")
    v, f = rows[0][3], rows[1][3]
    floor = (f" (the bare KVM floor here: {statistics.median(f['cpu']):.0f} us, so vigil's own"
             f" {statistics.median(v['cpu']) - statistics.median(f['cpu']):.0f} us)") if f["cpu"] and v["cpu"] else ""
    if v["cpu"]:
        cpu, rss = statistics.median(v["cpu"]), statistics.median(v["rss"])
        print(f"goal CPU at first KVM_RUN <= {GOAL_CPU_US} us: {'met' if cpu <= GOAL_CPU_US else 'NOT met'}"
              f" ({cpu:.0f} us){floor}")
        print(f"goal peak RSS <= {GOAL_RSS_KB} KiB: {'met' if rss <= GOAL_RSS_KB else 'NOT met'}"
              f" ({rss:.0f} KiB, of which {statistics.median(v['file']):.0f} file-backed: libc's and"
              f" vigil's text, shared with every process that maps them)")
    if JSON:
        def st(xs):
            return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)} if xs else None
        out = {"runs": N, "kvm": kind, "goal_cpu_us": GOAL_CPU_US, "goal_rss_kb": GOAL_RSS_KB, "vmm": {}}
        for name, argv, why, r in rows:
            out["vmm"][name] = ({k: st(r[k]) for k in ("wall", "cpu", "rss", "anon", "file")} if r["wall"]
                                else {"not_measured": why or r.get("fail")})
        with open(JSON, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
