#!/usr/bin/python3
"""Boot benchmark, vigil beside QEMU, run INSIDE the lab (bench/run.sh).

Each case boots the default guest with `vigil.run=poweroff` (guest/init powers
off right after its banner) and measures, per VMM: wall time from exec to
exit, the VMM's peak RSS, and the exit status. Median of N runs (LAB_BENCH_RUNS,
default 3). Lab times are emulation times: read them side by side only.
"""
import os
import resource
import statistics
import subprocess
import sys
import time

RUNS = int(os.environ.get("LAB_BENCH_RUNS", "3"))
G = os.environ.get("LAB_GUEST", "build/guest")
INITRD = f"{G}/initramfs.cpio.gz"
CMDLINE = "quiet vigil.run=poweroff"


def vigil(kernel):
    return ["build/vigil", "run", "--kernel", kernel, "--initrd", INITRD, "--mem", "256M",
            "--cmdline", CMDLINE, "--console", "none"]


def qemu(kernel, machine):
    return ["qemu-system-x86_64", "-M", machine, "-enable-kvm", "-cpu", "host", "-m", "256",
            "-smp", "1", "-display", "none", "-serial", "null", "-monitor", "none", "-no-reboot",
            "-kernel", kernel, "-initrd", INITRD, "-append", "console=ttyS0 " + CMDLINE]


def run_once(argv):
    """(seconds, peak RSS MiB of this child, exit status)"""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    return time.monotonic() - t0, ru.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def measure(argv):
    runs = [run_once(argv) for _ in range(RUNS)]
    bad = [r for r in runs if r[2] != 0]
    return (statistics.median(r[0] for r in runs), max(r[1] for r in runs),
            "ok" if not bad else f"exit {bad[0][2]}")


def main():
    cases = [
        ("Debian bzImage", f"{G}/vmlinuz"),
        ("Debian vmlinux (PVH)", f"{G}/vmlinux"),
    ]
    vmms = [
        ("vigil", lambda k: vigil(k)),
        ("qemu microvm", lambda k: qemu(k, "microvm,rtc=on")),
        ("qemu pc", lambda k: qemu(k, "pc")),
    ]
    print(f"boot to poweroff, exec to exit, median of {RUNS} (lab seconds; peak RSS MiB)")
    print(f"{'case':24}" + "".join(f"{name:>22}" for name, _ in vmms))
    for label, kernel in cases:
        cells = []
        for _, argv in vmms:
            secs, rss, status = measure(argv(kernel))
            cells.append(f"{secs:7.2f}s {rss:6.1f}M {status:>4}")
        print(f"{label:24}" + "".join(f"{c:>22}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
