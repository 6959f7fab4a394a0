#!/usr/bin/python3
"""Trace overhead, run INSIDE the lab (bench/run.sh trace).

Boots the default guest to poweroff (`vigil.run=poweroff`) three ways, side by
side in one lab run: no trace, the trace of everything (--trace FILE), and a
filtered trace (--trace-filter, default: what the policy denied). Prints the
median and the fastest wall time of LAB_BENCH_RUNS boots (default 3) per
case, each with its overhead against no trace in %, vigil's CPU time (user +
system, median), and how many records each trace holds and lost (from
--stats). What one event costs the vCPU natively: bench/trace_emit.c. Lab times are emulation times and the lab is shared: read them
side by side only, and expect a few % of noise.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

RUNS = int(os.environ.get("LAB_BENCH_RUNS", "3"))
G = os.environ.get("LAB_GUEST", "build/guest")
FILTER = os.environ.get("TRACE_FILTER", "device=unclaimed")
BASE = ["build/vigil", "run", "--kernel", f"{G}/vmlinuz", "--initrd", f"{G}/initramfs.cpio.gz",
        "--mem", "256M", "--cmdline", "quiet vigil.run=poweroff", "--console", "none", "--stats"]


def run_once(extra):
    """(wall s, exit status, trace lines, lost, exits, vigil's CPU s)"""
    t0 = time.monotonic()
    p = subprocess.Popen(BASE + extra, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    err = p.stderr.read()
    p.stderr.close()
    _, status, ru = os.wait4(p.pid, 0)
    secs = time.monotonic() - t0
    m = re.search(r"^trace: events=(\d+) lost=(\d+).* trace_lines=(\d+)", err, re.M)
    exits = re.search(r"^total exits: (\d+)", err, re.M)
    return (secs, os.waitstatus_to_exitcode(status), int(m.group(3)) if m else 0, int(m.group(2)) if m else 0,
            int(exits.group(1)) if exits else 0, ru.ru_utime + ru.ru_stime)


def main():
    tmp = tempfile.mkdtemp(prefix="vigil-trace-bench-")
    out = os.path.join(tmp, "trace.jsonl")
    cases = [
        ("no trace", []),
        ("trace everything", ["--trace", out]),
        (f"trace {FILTER}", ["--trace", out, "--trace-filter", FILTER]),
    ]
    print(f"Linux boot to poweroff, median of {RUNS} (lab seconds; the cases take turns, so that a"
          " lab slowing down or speeding up meets them all alike)")
    print(f"{'case':32}{'median':>9}{'overhead':>10}{'min':>9}{'overhead':>10}{'cpu':>8}"
          f"{'lines':>8}{'lost':>6}{'exits':>7}  status")
    results = {label: [] for label, _ in cases}
    for _ in range(RUNS):
        for label, extra in cases:
            results[label].append(run_once(extra))
    base = None
    for label, extra in cases:
        runs = results[label]
        med = statistics.median(r[0] for r in runs)
        low = min(r[0] for r in runs)
        cpu = statistics.median(r[5] for r in runs)
        bad = [r for r in runs if r[1] != 0]
        if base is None:
            base = (med, low)
        last = runs[-1]
        print(f"{label:32}{med:8.2f}s{(med - base[0]) / base[0] * 100:9.1f}%{low:8.2f}s"
              f"{(low - base[1]) / base[1] * 100:9.1f}%{cpu:7.2f}s{last[2]:>8}{last[3]:>6}{last[4]:>7}  "
              f"{'ok' if not bad else 'exit %d' % bad[0][1]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
