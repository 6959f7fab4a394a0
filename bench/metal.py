#!/usr/bin/env python3
"""vigil-metal beside vigil on KVM, both under the same emulation (QEMU TCG,
-cpu EPYC,+svm,+npt): vigil-metal is QEMU's guest, running the guest under
SVM itself; vigil on KVM runs in the lab's L1 (the same emulated AMD-V host,
running Linux and kvm_amd; lab/README.md). Per round, in one invocation, the
two sides interleaved (the order reversed every other round), one L1 boot per
round for the lab side:
  - exits/s: the port-hammering tiny guests (tiny-hammer: 200,000 reads of
    a denied port; tiny-pioloop: 262,144 reads of COM1's scratch register)
    beside tiny-poweroff, the same start-up with a few exits:
    (exits(g) - exits(poweroff)) / (t(g) - t(poweroff)), exits from --stats,
    t the wall time of the run (vigil's exec to exit in L1; QEMU's exec to
    exit for vigil-metal), so start-up and teardown cancel out. vigil-metal's
    own figure from its TSC ("guest ran N ms") is shown beside it.
  - Debian: build/guest/vmlinuz + initramfs, 1 vCPU, MEM, `quiet
    vigil.run=poweroff`: the guest's uptime as init started (guest/init
    prints it) and the whole run (exec to exit, as above).
Median of N (default 3) with min-max. Emulation figures: compare the two
sides with each other only, never with hardware. A benchmark, never a test.
    bench/metal.py [BUILD_DIR] [--runs N] [--json FILE] [--mem MIB]
    bench/metal.py --lab-side [BUILD_DIR] [--mem MIB]   (inside L1: one round)
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default="build")
ap.add_argument("--runs", type=int, default=int(os.environ.get("N", "3")))
ap.add_argument("--json", default=None)
ap.add_argument("--mem", default=os.environ.get("METAL_BENCH_MEM", "512"))
ap.add_argument("--lab-side", action="store_true", help="inside L1: one round of vigil on KVM, JSON on stdout")
ap.add_argument("--timeout", type=int, default=int(os.environ.get("METAL_BENCH_TIMEOUT", "900")))
ARGS = ap.parse_args()
B = ARGS.build
G = os.environ.get("LAB_GUEST", "build/guest")
CMDLINE = "quiet vigil.run=poweroff"
TINY = ("poweroff", "hammer", "pioloop")
EXITS_RE = re.compile(r"total exits: (\d+)")
RAN_RE = re.compile(r"vigil-metal: guest ran (\d+) ms")
UPTIME_RE = re.compile(r"vigil guest: uptime at init ([\d.]+)")
QEMU = ["nice", "qemu-system-x86_64", "-accel", "tcg", "-cpu", "EPYC,+svm,+npt", "-m", "2G", "-serial", "stdio",
        "-display", "none", "-monitor", "none", "-no-reboot", "-kernel", f"{B}/vigil-metal"]


def timed(cmd, limit):
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=limit)
        text = p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        text = (e.output or b"").decode("utf-8", "replace") + "\n(timed out)"
    return time.monotonic() - t0, text


def num(regex, text, conv=int):
    m = regex.search(text)
    return conv(m.group(1)) if m else None


def one_side(run_tiny, run_debian):
    """One round of one side: {guest: {"s", "exits", ...}, "debian": {...}}."""
    r = {}
    for g in TINY:
        t, text = run_tiny(g)
        r[g] = {"s": t, "exits": num(EXITS_RE, text), "ran_ms": num(RAN_RE, text)}
        if r[g]["exits"] is None:
            print(f"metal bench: {g}: no exit count; output ends: {text[-300:]!r}", file=sys.stderr)
    t, text = run_debian()
    r["debian"] = {"s": t, "init": num(UPTIME_RE, text, float)}
    if r["debian"]["init"] is None:
        print(f"metal bench: debian: no uptime at init; output ends: {text[-300:]!r}", file=sys.stderr)
    return r


def kvm_round():
    tiny = lambda g: timed([f"{B}/vigil", "run", "--kernel", f"{B}/tests/guests/tiny-{g}.bin", "--console", "none",  # noqa: E731
                            "--stats"], 300)
    debian = lambda: timed([f"{B}/vigil", "run", "--kernel", f"{G}/vmlinuz", "--initrd", f"{G}/initramfs.cpio.gz",  # noqa: E731
                            "--mem", ARGS.mem + "M", "--cpus", "1", "--cmdline", CMDLINE, "--console", "stdio"], 600)
    return one_side(tiny, debian)


def metal_round():
    tiny = lambda g: timed(QEMU + ["-append", "--mem 64M --stats", "-initrd", f"{B}/tests/guests/tiny-{g}.bin"], 600)  # noqa: E731
    debian = lambda: timed(QEMU + ["-append", f'--mem {ARGS.mem}M --cpus 1 --stats --cmdline "{CMDLINE}"',  # noqa: E731
                                   "-initrd", f"{G}/vmlinuz,{G}/initramfs.cpio.gz"], 900)
    return one_side(tiny, debian)


def lab_round():
    env = dict(os.environ, LAB_OUT="build/lab/metal-bench")
    cmd = ["nice", "lab/run-l1.sh", "--timeout", str(ARGS.timeout), "--", "bench/metal.py", "--lab-side", B,
           "--mem", ARGS.mem]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    text = p.stdout.decode("utf-8", "replace")
    for line in reversed(text.splitlines()):
        if line.startswith("metal-bench-json "):
            return json.loads(line[len("metal-bench-json "):])
    print(f"metal bench: the lab round gave no figures (status {p.returncode}); output ends: {text[-500:]!r}",
          file=sys.stderr)
    return None


def exits_per_s(r, g):
    a, p = r.get(g, {}), r.get("poweroff", {})
    if a.get("exits") is None or p.get("exits") is None or a["s"] <= p["s"]:
        return None
    return (a["exits"] - p["exits"]) / (a["s"] - p["s"])


def tsc_per_s(r, g):
    a = r.get(g, {})
    return a["exits"] / (a["ran_ms"] / 1000) if a.get("exits") and a.get("ran_ms") else None


def figure(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def fmt(f, unit=""):
    if f is None:
        return "n/a"
    big = f["median"] >= 1000
    s = (lambda v: f"{v:,.0f}") if big else (lambda v: f"{v:.2f}")
    return f"{s(f['median'])}{unit} ({s(f['min'])}-{s(f['max'])})"


def main():
    if ARGS.lab_side:
        print("metal-bench-json " + json.dumps(kvm_round()), flush=True)
        return 0
    rounds = {"vigil-metal": [], "vigil on KVM (lab)": []}
    sides = [("vigil-metal", metal_round), ("vigil on KVM (lab)", lab_round)]
    for i in range(ARGS.runs):
        for name, fn in (sides if i % 2 == 0 else sides[::-1]):
            t0 = time.monotonic()
            r = fn()
            print(f"round {i + 1}/{ARGS.runs}: {name} done in {time.monotonic() - t0:.0f} s", file=sys.stderr,
                  flush=True)
            if r:
                rounds[name].append(r)
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": ARGS.runs, "mem_mib": int(ARGS.mem),
           "emulation": "QEMU TCG -cpu EPYC,+svm,+npt", "sides": {}}
    for name, rs in rounds.items():
        res["sides"][name] = {
            "rounds": len(rs),
            "hammer_exits_per_s": figure([exits_per_s(r, "hammer") for r in rs]),
            "pioloop_exits_per_s": figure([exits_per_s(r, "pioloop") for r in rs]),
            "hammer_exits_per_s_tsc": figure([tsc_per_s(r, "hammer") for r in rs]),
            "pioloop_exits_per_s_tsc": figure([tsc_per_s(r, "pioloop") for r in rs]),
            "debian_init_s": figure([r["debian"]["init"] for r in rs]),
            "debian_run_s": figure([r["debian"]["s"] for r in rs]),
            "raw": rs,
        }
    print(f"metal bench, {res['date']}: median (min-max) of {ARGS.runs}, Debian at {ARGS.mem} MiB, 1 vCPU")
    print("lab/emulation times (QEMU TCG, EPYC+svm+npt): compare side by side only")
    rows = [("tiny-hammer exits/s", "hammer_exits_per_s", ""), ("tiny-pioloop exits/s", "pioloop_exits_per_s", ""),
            ("  (metal's TSC) hammer", "hammer_exits_per_s_tsc", ""),
            ("  (metal's TSC) pioloop", "pioloop_exits_per_s_tsc", ""),
            ("Debian: uptime at init", "debian_init_s", " s"), ("Debian: whole run", "debian_run_s", " s")]
    names = list(rounds)
    print(f"{'':26} " + " ".join(f"{n:>30}" for n in names))
    for label, key, unit in rows:
        print(f"{label:26} " + " ".join(f"{fmt(res['sides'][n][key], unit):>30}" for n in names))
    if ARGS.json:
        os.makedirs(os.path.dirname(ARGS.json) or ".", exist_ok=True)
        with open(ARGS.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if all(rounds.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
