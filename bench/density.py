#!/usr/bin/env python3
"""Density on this host's own KVM: N tiny VMs at once (default 100), each with
a disk (a small sparse file) and, for vigil, a vsock device, vigil beside
QEMU microvm in one run.

The guest is tiny-idle (tests/guests/tiny.S): it prints "tiny: hello" on
COM1 and sleeps in HLT with interrupts off, so N of them cost no CPU once up.
QEMU boots the same code as a PVH ELF (bench/qemu_pvh.S), with the same
memory size and a virtio-blk device on virtio-mmio; QEMU's vsock is vhost only
(vhost-vsock-device needs /dev/vhost-vsock), so it gets one only when the host
has that device: the table says which.

For each VMM in turn (RUNS rounds, the order reversed every other round):
  - all N started back to back, each with its console in a file; the start
    rate is N over the time from the first exec to the last console showing
    "tiny: hello" (every guest has executed its own code);
  - then, with all N up: each VMM process's Rss and Pss (smaps_rollup; Pss
    shares the libraries' text among the N), its peak RSS (VmHWM), and the
    Rss of its guest-RAM mapping (the mapping of the guest's size in
    /proc/PID/smaps): memory the guest never touched must not be resident;
  - the host's MemAvailable before and with all N up, over N (what a VM costs
    the host, the kernel's side included: KVM's structures, page tables);
  - then all N are killed (SIGTERM).
Prints one table; --json FILE writes the figures. A benchmark, never a test:
it fails only when it cannot measure.
    bench/density.py [BUILD_DIR] [--vms N] [--mem MIB] [--runs N] [--json FILE] [--no-qemu]
    make bench-density
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default="build")
ap.add_argument("--vms", type=int, default=int(os.environ.get("VMS", "100")))
ap.add_argument("--mem", type=int, default=256, help="guest RAM, MiB")
ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "1")))
ap.add_argument("--json", default=None)
ap.add_argument("--no-qemu", action="store_true")
ap.add_argument("--timeout", type=float, default=120.0)
ARGS = ap.parse_args()
B = ARGS.build
V = os.path.abspath(os.path.join(B, "vigil"))
GUEST = os.path.abspath(os.path.join(B, "tests/guests/tiny-idle.bin"))
QGUEST = os.path.abspath(os.path.join(B, "bench/tiny-idle-pvh.elf"))
QEMU = shutil.which("qemu-system-x86_64")
HELLO = b"tiny: hello"
QEMU_VSOCK = os.path.exists("/dev/vhost-vsock")


def vigil_argv(d, i):
    return [V, "run", "--kernel", GUEST, "--mem", f"{ARGS.mem}M", "--console", f"file:{d}/con{i}",
            "--disk", f"path={d}/disk{i}", "--vsock", f"cid={3 + i},uds={d}/vsock{i}"]


def qemu_argv(d, i):
    # -cpu host without arch-capabilities: on kvm_pvm QEMU cannot set MSR 0x10a.
    a = [QEMU, "-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-smp", "1",
         "-m", str(ARGS.mem), "-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
         "-kernel", QGUEST, "-serial", f"file:{d}/con{i}",
         "-drive", f"file={d}/disk{i},format=raw,if=none,id=d0",
         "-device", "virtio-blk-device,drive=d0"]
    if QEMU_VSOCK:
        a += ["-device", f"vhost-vsock-device,guest-cid={3 + i}"]
    return a


def mem_available_kb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def rollup(pid):
    """{'rss', 'pss'} in KiB from smaps_rollup, 'hwm' from status."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss"):
                out[k.lower()] = int(v.split()[0])
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                out["hwm"] = int(line.split()[1])
    return out


def guest_ram_rss(pid, mib):
    """Rss (KiB) of the process's mappings at least as large as guest RAM:
    the guest's memory (one mapping, maybe with guard pages around)."""
    total, size, rss = 0, 0, 0
    want = mib * 1024
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            if "-" in head and not head.endswith(":"):  # a mapping's first line
                if size >= want:
                    total += rss
                size = rss = 0
            elif line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    if size >= want:
        total += rss
    return total


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def batch(name, mk):
    """One round of one VMM: N started, measured, stopped."""
    d = tempfile.mkdtemp(prefix="vigil-density-")
    procs = []
    try:
        for i in range(ARGS.vms):
            with open(f"{d}/disk{i}", "wb") as f:
                f.truncate(1 << 20)
        avail0 = mem_available_kb()
        t0 = time.perf_counter()
        for i in range(ARGS.vms):
            procs.append(subprocess.Popen(mk(d, i), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=open(f"{d}/err{i}", "wb")))
        t_spawned = time.perf_counter()
        pending = set(range(ARGS.vms))
        t_all = None
        while pending and time.perf_counter() - t0 < ARGS.timeout:
            for i in list(pending):
                try:
                    with open(f"{d}/con{i}", "rb") as f:
                        if HELLO in f.read(4096):
                            pending.discard(i)
                except FileNotFoundError:
                    pass
                if i in pending and procs[i].poll() is not None:
                    err = open(f"{d}/err{i}", "rb").read().decode(errors="replace").strip()
                    raise RuntimeError(f"{name} VM {i} exited {procs[i].returncode}: {err[-300:]}")
            if pending:
                time.sleep(0.002)
        t_all = time.perf_counter()
        if pending:
            raise RuntimeError(f"{name}: {len(pending)} of {ARGS.vms} VMs printed nothing in {ARGS.timeout:g} s")
        time.sleep(0.5)  # threads that start after the first guest instruction
        per = [rollup(p.pid) for p in procs]
        gram = [guest_ram_rss(p.pid, ARGS.mem) for p in procs]
        avail1 = mem_available_kb()
        alive = sum(p.poll() is None for p in procs)
        return {
            "vms": ARGS.vms, "alive": alive,
            "spawn_s": t_spawned - t0, "all_up_s": t_all - t0,
            "vms_per_s": ARGS.vms / (t_all - t0),
            "rss_kb": statistics.median(x["rss"] for x in per),
            "pss_kb": statistics.median(x["pss"] for x in per),
            "hwm_kb": statistics.median(x["hwm"] for x in per),
            "rss_sum_kb": sum(x["rss"] for x in per), "pss_sum_kb": sum(x["pss"] for x in per),
            "guest_ram_rss_kb": statistics.median(gram), "guest_ram_rss_max_kb": max(gram),
            "host_kb_per_vm": (avail0 - avail1) / ARGS.vms,
        }
    finally:
        stop(procs)
        shutil.rmtree(d, ignore_errors=True)


def st(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt(s, prec=1, scale=1.0):
    if not s:
        return "-"
    m, lo, hi = s["median"] / scale, s["min"] / scale, s["max"] / scale
    return f"{m:.{prec}f}" if s["n"] == 1 else f"{m:.{prec}f} ({lo:.{prec}f}-{hi:.{prec}f})"


def main():
    for f in (V, GUEST):
        if not os.path.exists(f):
            sys.exit(f"bench/density: {f} missing (make bench-density builds it)")
    vmms = [("vigil", vigil_argv, None)]
    if ARGS.no_qemu:
        vmms.append(("qemu microvm", None, "--no-qemu"))
    elif not QEMU:
        vmms.append(("qemu microvm", None, "qemu-system-x86_64 not installed"))
    elif not os.path.exists(QGUEST):
        vmms.append(("qemu microvm", None, f"{QGUEST} missing"))
    else:
        vmms.append(("qemu microvm", qemu_argv, None))
    rounds = {n: [] for n, _, _ in vmms}
    why = {n: w for n, _, w in vmms}
    for r in range(ARGS.runs):
        order = vmms if r % 2 == 0 else vmms[::-1]
        for name, mk, _ in order:
            if not mk or why[name]:
                continue
            try:
                rounds[name].append(batch(name, mk))
            except (RuntimeError, OSError) as e:
                why[name] = str(e)
            time.sleep(1.0)  # the last batch's memory freed before the next one
    res = {"vms": ARGS.vms, "mem_mib": ARGS.mem, "runs": ARGS.runs, "qemu_vsock": QEMU_VSOCK, "vmm": {}}
    keys = ("vms_per_s", "all_up_s", "rss_kb", "pss_kb", "hwm_kb", "guest_ram_rss_kb",
            "guest_ram_rss_max_kb", "host_kb_per_vm", "pss_sum_kb")
    for name, _, _ in vmms:
        rs = rounds[name]
        res["vmm"][name] = ({k: st([x[k] for x in rs]) for k in keys} if rs else None)
        if why[name]:
            res["vmm"][name] = dict(res["vmm"][name] or {}, not_measured=why[name])
    print(f"density: {ARGS.vms} tiny VMs at once ({ARGS.mem} MiB each, a 1 MiB disk each; vsock: vigil"
          f"{', QEMU' if QEMU_VSOCK else ' only (QEMU: vhost only, no /dev/vhost-vsock here)'}),"
          f" median (min-max) of {ARGS.runs} round(s), this host's KVM")
    print(f"{'VMM':<14}{'VMs/s':>16}{'all up s':>16}{'Rss/VM MiB':>16}{'Pss/VM MiB':>16}"
          f"{'guest RAM Rss KiB':>20}{'host/VM MiB':>14}")
    for name, _, _ in vmms:
        r = res["vmm"][name]
        if not r or "vms_per_s" not in r:
            print(f"{name:<14}  not measured: {why[name]}")
            continue
        print(f"{name:<14}{fmt(r['vms_per_s']):>16}{fmt(r['all_up_s'], 2):>16}"
              f"{fmt(r['rss_kb'], 2, 1024):>16}{fmt(r['pss_kb'], 2, 1024):>16}"
              f"{fmt(r['guest_ram_rss_kb'], 0):>20}{fmt(r['host_kb_per_vm'], 2, 1024):>14}")
        if why[name]:
            print(f"{'':<14}  (a later round failed: {why[name]})")
    v = res["vmm"].get("vigil")
    if v and "guest_ram_rss_kb" in v:
        print(f"untouched guest memory not resident: the largest guest-RAM Rss of any vigil VM was"
              f" {v['guest_ram_rss_max_kb']['max']:.0f} KiB of {ARGS.mem * 1024} KiB")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
