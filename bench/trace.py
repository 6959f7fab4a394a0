#!/usr/bin/python3
"""Trace overhead, run INSIDE the lab (bench/run.sh trace).

Boots the default guest to poweroff (`vigil.run=poweroff`) three ways, side by
side in one lab run: no trace, the trace of everything (--trace FILE), and a
filtered trace (--trace-filter, default: what the policy denied). Prints the
median wall time of LAB_BENCH_RUNS boots (default 3) per case, the overhead
against no trace in %, and how many records each trace holds and lost (from
--stats). Lab times are emulation times and the lab is shared: read them
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
    t0 = time.monotonic()
    p = subprocess.run(BASE + extra, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    secs = time.monotonic() - t0
    m = re.search(r"^trace: events=(\d+) lost=(\d+).* trace_lines=(\d+)", p.stderr, re.M)
    exits = re.search(r"^total exits: (\d+)", p.stderr, re.M)
    return secs, p.returncode, (int(m.group(3)) if m else 0), (int(m.group(2)) if m else 0), \
        (int(exits.group(1)) if exits else 0)


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
    print(f"{'case':32}{'time':>10}{'overhead':>10}{'lines':>10}{'lost':>8}{'exits':>9}  status")
    results = {label: [] for label, _ in cases}
    for _ in range(RUNS):
        for label, extra in cases:
            results[label].append(run_once(extra))
    base = None
    for label, extra in cases:
        runs = results[label]
        secs = statistics.median(r[0] for r in runs)
        bad = [r for r in runs if r[1] != 0]
        if base is None:
            base = secs
        over = (secs - base) / base * 100
        last = runs[-1]
        print(f"{label:32}{secs:9.2f}s{over:9.1f}%{last[2]:>10}{last[3]:>8}{last[4]:>9}  "
              f"{'ok' if not bad else 'exit %d' % bad[0][1]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
