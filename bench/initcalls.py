#!/usr/bin/python3
"""Where the guest's boot time goes, vigil beside QEMU microvm: run INSIDE
the lab (bench/run.sh initcalls). Debian's stock kernel and the default
initramfs (2 vCPUs, 1 GiB, as bench/boot.py), booted with `initcall_debug`
and `vigil.run=dmesg` (guest/init prints the kernel's log at init, then
powers off): the console stays quiet, the log keeps every initcall's own
duration and each line's timestamp. Per VMM, LAB_BENCH_RUNS boots (default
2, interleaved); per initcall the median of its durations. Prints the
initcalls that differ most between the two and the longest gaps in each
log (time that passed between two lines: waits outside initcalls, such as
the early boot before the first initcall). Lab times are emulation times:
read them side by side only. Writes $LAB_RESULTS/initcalls.json.
    bench/initcalls.py [bzImage|PVH]
"""
import json
import os
import re
import statistics
import subprocess
import sys

RUNS = int(os.environ.get("LAB_BENCH_RUNS", "2"))
G = os.environ.get("LAB_GUEST", "build/guest")
OUT = os.environ.get("LAB_RESULTS", "/tmp/lab-results")
INITRD = f"{G}/initramfs.cpio.gz"
CMDLINE = "quiet initcall_debug log_buf_len=4M vigil.run=dmesg"
MEM, CPUS = "1024", "2"
KERNEL = {"bzImage": f"{G}/vmlinuz", "PVH": f"{G}/vmlinux"}[sys.argv[1] if len(sys.argv) > 1 else "bzImage"]
LINE = re.compile(rb"^\[\s*(\d+\.\d+)\] (.*)$", re.M)
DONE = re.compile(rb"initcall (\S+?)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[[^\]]+\])? returned -?\d+ after (\d+) usecs")
UPTIME = re.compile(rb"vigil guest: uptime at init ([\d.]+)")

VMMS = {
    "vigil": ["build/vigil", "run", "--kernel", KERNEL, "--initrd", INITRD, "--mem", MEM + "M",
              "--cpus", CPUS, "--cmdline", CMDLINE, "--console", "stdio"],
    "microvm": ["qemu-system-x86_64", "-M", "microvm,rtc=on", "-enable-kvm", "-cpu", "host", "-m", MEM,
                "-smp", CPUS, "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
                "-kernel", KERNEL, "-initrd", INITRD, "-append", "console=ttyS0 reboot=t " + CMDLINE],
}


def boot(argv):
    """(initcall -> usecs, [(gap_s, line before, line after)], uptime at init) of one boot."""
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       timeout=1200)
    calls = {}
    for m in DONE.finditer(p.stdout):
        name = m.group(1).decode(errors="replace")
        calls[name] = calls.get(name, 0) + int(m.group(2))
    lines = [(float(m.group(1)), m.group(2).decode(errors="replace")[:70]) for m in LINE.finditer(p.stdout)]
    gaps = sorted(((b[0] - a[0], a[1], b[1]) for a, b in zip(lines, lines[1:])), reverse=True)[:12]
    u = UPTIME.search(p.stdout)
    return calls, gaps, float(u.group(1)) if u else None, len(lines)


def main():
    per = {v: [] for v in VMMS}
    for r in range(RUNS):
        order = list(VMMS) if r % 2 == 0 else list(reversed(VMMS))
        for v in order:
            res = boot(VMMS[v])
            per[v].append(res)
            print(f"  {v} run {r + 1}: {len(res[0])} initcalls, {res[3]} log lines, uptime at init {res[2]}",
                  flush=True)
    med = {}
    for v, runs in per.items():
        names = set().union(*(c for c, _, _, _ in runs))
        med[v] = {n: statistics.median(c.get(n, 0) for c, _, _, _ in runs) for n in names}
    a, b = list(VMMS)
    print(f"\nguest uptime at init (median): {a} {statistics.median([x[2] or 0 for x in per[a]]):.3f} s, "
          f"{b} {statistics.median([x[2] or 0 for x in per[b]]):.3f} s")
    print(f"sum of initcalls (median per call): {a} {sum(med[a].values()) / 1e6:.3f} s, "
          f"{b} {sum(med[b].values()) / 1e6:.3f} s")
    diff = sorted(set(med[a]) | set(med[b]), key=lambda n: -abs(med[a].get(n, 0) - med[b].get(n, 0)))
    print(f"\ninitcalls that differ most (usecs, median of {RUNS}):")
    print(f"  {'initcall':40} {a:>10} {b:>10} {'diff':>10}")
    for n in diff[:25]:
        x, y = med[a].get(n, 0), med[b].get(n, 0)
        print(f"  {n[:40]:40} {x:10.0f} {y:10.0f} {x - y:+10.0f}")
    for v in VMMS:
        print(f"\nlongest gaps between log lines, {v} (first run):")
        for g, l1, l2 in per[v][0][1][:8]:
            print(f"  {g:7.3f} s after: {l1}\n            before: {l2}")
    os.makedirs(OUT, exist_ok=True)
    with open(f"{OUT}/initcalls.json", "w") as f:
        json.dump({"median_usecs": med, "uptime": {v: [x[2] for x in per[v]] for v in VMMS},
                   "gaps": {v: per[v][0][1] for v in VMMS}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
