#!/usr/bin/python3
"""Exits per second of a port-I/O-bound tiny guest under the policy engine,
on this host's own KVM (no lab needed): no policy, a 10,000-rule policy, and
the same policy with auditing on (a rule providing the guest's port with
"audit": true, and --audit to a file), side by side in one run.

The guest (tests/guests/tiny.S, ACTION_pioloop) reads COM1's scratch register
256 Ki times, one exit each, then powers off. Each figure is the median of
REPS runs of the whole VMM (start-up is ~25 ms of it). The goal (issue 7): the
decision costs the same with 1 rule or 10,000.
    bench/policy.py [BUILD_DIR] [--json FILE]        REPS=5 bench/policy.py
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

JSON = None
if "--json" in sys.argv:  # --json FILE: the same figures, machine-readable
    _i = sys.argv.index("--json")
    JSON = sys.argv[_i + 1]
    del sys.argv[_i:_i + 2]
B = sys.argv[1] if len(sys.argv) > 1 else "build"
VIGIL = f"{B}/vigil"
GUEST = f"{B}/tests/guests/tiny-pioloop.bin"
REPS = int(os.environ.get("REPS", "3"))
EXITS_RE = re.compile(r"^total exits: (\d+)$", re.M)


def many_rules(n, audit_port=None):
    """n rules none of which (but the audited one) matches the guest's port:
    single ports from 0x1000 up, and MMIO pages, interleaved."""
    rules = []
    if audit_port is not None:
        rules.append({"id": "watch-scr", "resource": "pio", "ports": hex(audit_port),
                      "verdict": "provide", "audit": True})
    for i in range(n - len(rules)):
        if i % 2:
            rules.append({"id": f"p{i}", "resource": "pio", "ports": hex(0x1000 + i), "verdict": "deny"})
        else:
            a = 0xe0000000 + i * 0x1000
            rules.append({"id": f"m{i}", "resource": "mmio", "addresses": f"{a:#x}-{a + 0xfff:#x}",
                          "verdict": "deny"})
    return {"mode": "enforce", "rules": rules}


def run(args):
    t0 = time.perf_counter()
    p = subprocess.run([VIGIL, "run", "--kernel", GUEST, "--stats"] + args, capture_output=True, text=True,
                       timeout=600)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"bench/policy: vigil exited {p.returncode}: {p.stderr.strip()[:300]}")
    m = EXITS_RE.search(p.stdout + p.stderr)
    if not m:
        sys.exit("bench/policy: no 'total exits' line in --stats output")
    return int(m.group(1)) / dt


def main():
    if not os.path.exists(GUEST):
        sys.exit(f"bench/policy: {GUEST} missing (make guests)")
    with tempfile.TemporaryDirectory() as tmp:
        pol = os.path.join(tmp, "10k.json")
        with open(pol, "w") as f:
            json.dump(many_rules(10000), f)
        apol = os.path.join(tmp, "10k-audit.json")
        with open(apol, "w") as f:
            json.dump(many_rules(10000, audit_port=0x3ff), f)
        audit = os.path.join(tmp, "audit.jsonl")
        cases = [("no policy", []), ("10,000 rules", ["--policy", pol]),
                 ("10,000 rules + audit", ["--policy", apol, "--audit", audit])]
        res = {name: [] for name, _ in cases}
        for _ in range(REPS):  # interleaved, so host noise hits every case alike
            for name, args in cases:
                res[name].append(run(args))
        base = statistics.median(res["no policy"])
        print(f"policy bench: {REPS} runs each, port-I/O tiny guest (256 Ki exits), host KVM")
        for name, _ in cases:
            med = statistics.median(res[name])
            print(f"  {name:24s} {med / 1e3:8.1f} k exits/s  ({(med / base - 1) * 100:+.1f}%)")
        with open(audit) as f:
            lines = f.readlines()
        print(f"  audit records written: {len(lines)} (coalesced)")
        if JSON:
            with open(JSON, "w") as f:
                json.dump({"reps": REPS, "exits_per_s": {n: {"median": statistics.median(v), "min": min(v),
                                                             "max": max(v), "n": len(v)}
                                                         for n, v in res.items()},
                           "audit_records": len(lines)}, f, indent=1)


if __name__ == "__main__":
    main()
