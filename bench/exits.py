#!/usr/bin/env python3
"""Exits per second on this host's own KVM, vigil beside QEMU microvm: the
tiny guest that reads COM1's scratch register 256 Ki times, one port-I/O exit
to the VMM's user space each, served by each VMM's own UART (tiny-pioloop),
then powers off. Each VMM also runs the poweroff guest (the same start-up,
a few dozen exits), and the figure is 262,144 / (t_pioloop - t_poweroff):
start-up and teardown cancel out. QEMU runs the same guest code as a PVH ELF
(bench/qemu_pvh.S) with isa-debug-exit on the ACPI port, so its exit status
is 1 at the guest's poweroff. Runs interleaved, median (min-max) of N.
kvmtool beside them when `lkvm` is installed. A benchmark, never a test.
    bench/exits.py [BUILD_DIR] [--runs N] [--json FILE]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default="build")
ap.add_argument("--runs", type=int, default=int(os.environ.get("N", "5")))
ap.add_argument("--json", default=None)
ARGS = ap.parse_args()
B = ARGS.build
EXITS = 0x40000  # tests/guests/tiny.S, ACTION_pioloop


def vmms():
    g = lambda n: f"{B}/tests/guests/tiny-{n}.bin"  # noqa: E731
    yield "vigil", lambda n: [f"{B}/vigil", "run", "--kernel", g(n), "--console", "none"], 0, None
    qemu = shutil.which("qemu-system-x86_64")
    pvh = lambda n: f"{B}/bench/tiny-{n}-pvh.elf"  # noqa: E731
    why = None if qemu else "not installed"
    if qemu and not os.path.exists(pvh("pioloop")):
        why = f"{pvh('pioloop')} missing (make bench builds it)"
    # -cpu host without arch-capabilities: on kvm_pvm QEMU cannot set MSR 0x10a.
    yield ("qemu microvm", lambda n: [qemu, "-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities",
                                      "-smp", "1", "-m", "256", "-display", "none", "-monitor", "none",
                                      "-no-reboot", "-nodefaults", "-serial", "null", "-kernel", pvh(n),
                                      "-device", "isa-debug-exit,iobase=0x604,iosize=2"], 1, why)
    lkvm = shutil.which("lkvm")
    yield ("kvmtool", lambda n: [lkvm, "run", "-k", g(n), "-m", "256", "-c", "1"], 0,
           None if lkvm else "not installed (no lkvm on PATH)")


def timed(argv, want):
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=300)
    dt = time.perf_counter() - t0
    if p.returncode != want:
        raise RuntimeError(f"exit {p.returncode}: {p.stderr.decode(errors='replace').strip()[-200:]}")
    return dt


def main():
    rows = [(n, mk, want, why, []) for n, mk, want, why in vmms()]
    fails = {}
    for r in range(ARGS.runs):
        for name, mk, want, why, xs in (rows if r % 2 == 0 else rows[::-1]):
            if why or name in fails:
                continue
            try:
                t0 = timed(mk("poweroff"), want)
                t1 = timed(mk("pioloop"), want)
                xs.append(EXITS / (t1 - t0))
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                fails[name] = str(e)
    res = {"runs": ARGS.runs, "exits": EXITS, "vmm": {}}
    print(f"exits per second, a tiny guest reading a UART port {EXITS} times, median (min-max) of {ARGS.runs}")
    for name, _, _, why, xs in rows:
        why = why or fails.get(name)
        if xs:
            s = {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}
            res["vmm"][name] = s
            print(f"  {name:<14} {s['median'] / 1e3:8.1f} k exits/s ({s['min'] / 1e3:.1f}-{s['max'] / 1e3:.1f})")
        else:
            res["vmm"][name] = {"not_measured": why}
            print(f"  {name:<14} not measured: {why}")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
