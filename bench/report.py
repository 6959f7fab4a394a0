#!/usr/bin/env python3
"""The one table of a bench/run.sh run: reads the JSON each bench wrote into
DIR (startup.json, exit_cost.json, exits.json, policy.json, snapshot.json,
density.json, lab/boot.json, lab/disk.json), prints vigil beside its peers
with medians (min-max), says per goal of issue 10 MET / NOT MET / NOT
MEASURED (and why), and writes everything as one JSON file for comparison
across commits. A report, never a test: its exit status is 0 whatever the
figures are.
    bench/report.py DIR --out FILE [--why-not SECTION=REASON]...
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--out", required=True)
ap.add_argument("--why-not", action="append", default=[],
                help="SECTION=REASON: why a section was not run")
ARGS = ap.parse_args()
WHY = dict(w.split("=", 1) for w in ARGS.why_not)


def load(name):
    p = os.path.join(ARGS.dir, name)
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def med(s):
    return s["median"] if isinstance(s, dict) and "median" in s else None


def f(s, prec=1, scale=1.0, unit=""):
    """'median (min-max)' of a stats dict."""
    if not isinstance(s, dict) or "median" not in s:
        return "-"
    m, lo, hi = s["median"] / scale, s["min"] / scale, s["max"] / scale
    if s.get("n", 1) == 1:
        return f"{m:.{prec}f}{unit}"
    return f"{m:.{prec}f} ({lo:.{prec}f}-{hi:.{prec}f}){unit}"


rows = []   # (section, metric, vigil, peer, ratio)
goals = []  # (goal, verdict, detail)


def row(section, metric, vigil, peer="", ratio=None):
    rows.append((section, metric, vigil, peer, "" if ratio is None else f"{ratio:.2f}x"))


def goal(name, verdict, detail):
    goals.append((name, verdict, detail))


def why(section, default):
    return WHY.get(section, default)


# --- start-up and memory (bench/startup.py) ---
s = load("startup.json")
if s:
    v = s["vmm"].get("vigil", {})
    q = s["vmm"].get("qemu microvm", {})
    fl = s["vmm"].get("bare KVM floor", {})
    peer = lambda k, sc=1.0, u="": (f"microvm {f(q.get(k), 2, sc, u)}" if "median" in (q.get(k) or {})  # noqa: E731
                                    else f"microvm: {q.get('not_measured', '-')}")
    row("start-up", "exec->first KVM_RUN ms", f(v.get("wall"), 2, 1000), peer("wall", 1000))
    row("start-up", "CPU at first KVM_RUN ms", f(v.get("cpu"), 2, 1000), peer("cpu", 1000),
        med(v.get("cpu")) / med(q.get("cpu")) if med(v.get("cpu")) and med(q.get("cpu")) else None)
    row("start-up", "  bare KVM floor CPU ms", f(fl.get("cpu"), 2, 1000))
    row("start-up", "peak RSS MiB", f(v.get("rss"), 2, 1024), peer("rss", 1024),
        med(v.get("rss")) / med(q.get("rss")) if med(v.get("rss")) and med(q.get("rss")) else None)
    c, r = med(v.get("cpu")), med(v.get("rss"))
    if c is not None:
        goal("start-up CPU <= 1.5 ms", "MET" if c <= 1500 else "NOT MET",
             f"{c / 1000:.2f} ms" + (f" (bare KVM floor here {med(fl.get('cpu')) / 1000:.2f} ms)" if med(fl.get("cpu")) else ""))
    if r is not None:
        goal("peak RSS <= 2 MiB", "MET" if r <= 2048 else "NOT MET",
             f"{r / 1024:.2f} MiB, {med(v.get('file')) / 1024:.2f} of it file-backed (shared text)"
             if med(v.get("file")) else f"{r / 1024:.2f} MiB")
if not s or med(s["vmm"].get("vigil", {}).get("cpu")) is None:
    goal("start-up CPU <= 1.5 ms", "NOT MEASURED", why("startup", "bench/startup.py wrote nothing"))
    goal("peak RSS <= 2 MiB", "NOT MEASURED", why("startup", "bench/startup.py wrote nothing"))

# --- instructions per exit (bench/exit_cost.sh) ---
e = load("exit_cost.json")
if e and "instructions_per_exit" in e:
    row("exit path", "vigil instructions per denied exit", str(e["instructions_per_exit"]), "kvmtool ~220 (issue)")
    goal("<= 250 instructions per exit", "MET" if e["instructions_per_exit"] <= 250 else "NOT MET",
         f"{e['instructions_per_exit']} (callgrind, deny path)")
else:
    goal("<= 250 instructions per exit", "NOT MEASURED",
         why("exitcost", (e or {}).get("not_measured", "bench/exit_cost.sh wrote nothing")))

# --- exits per second (bench/exits.py) ---
x = load("exits.json")
if x and med(x["vmm"].get("vigil")):
    v = x["vmm"]["vigil"]
    peers = {n: d for n, d in x["vmm"].items() if n != "vigil" and med(d)}
    best = max(peers.items(), key=lambda t: med(t[1])) if peers else None
    row("exits/s", "k port exits/s (UART)", f(v, 1, 1000),
        "; ".join(f"{n} {f(d, 1, 1000)}" for n, d in peers.items()) or "no peer ran",
        med(v) / med(best[1]) if best else None)
    if best:
        goal("exits/s >= best peer", "MET" if med(v) >= med(best[1]) else "NOT MET",
             f"{med(v) / 1e3:.1f} k vs {best[0]} {med(best[1]) / 1e3:.1f} k ({med(v) / med(best[1]):.2f}x;"
             f" ranges overlap: {'yes' if v['min'] <= best[1]['max'] and best[1]['min'] <= v['max'] else 'no'})")
    else:
        goal("exits/s >= best peer", "NOT MEASURED", "no peer ran: " +
             "; ".join(f"{n}: {d.get('not_measured')}" for n, d in x["vmm"].items() if n != "vigil"))
else:
    goal("exits/s >= best peer", "NOT MEASURED", why("exits", "bench/exits.py wrote nothing"))

# --- policy (bench/policy.py): not a goal of issue 10, shown for context ---
p = load("policy.json")
if p:
    for n, d in p["exits_per_s"].items():
        row("policy", f"k exits/s, {n}", f(d, 1, 1000))

# --- snapshot (bench/snapshot.py): issue 9's figures, for context ---
sn = load("snapshot.json")
if sn:
    for mib in ("256", "2048"):
        vr = sn.get("vigil", {}).get(mib, {}).get("restore", {})
        qr = sn.get("qemu", {}).get(mib, {}).get("restore", {})
        if vr.get("load_ms"):
            qs = qr.get("load_ms")
            row("snapshot", f"restore {mib} MiB ms", f(vr["load_ms"], 2),
                f"QEMU incoming {f(qs, 1)}" if qs else "", med(vr["load_ms"]) / med(qs) if med(qs) else None)

# --- density (bench/density.py) ---
d = load("density.json")
if d and "vms_per_s" in (d["vmm"].get("vigil") or {}):
    v, q = d["vmm"]["vigil"], d["vmm"].get("qemu microvm") or {}
    qok = "vms_per_s" in q
    qn = lambda k, p_, sc=1.0: f"microvm {f(q[k], p_, sc)}" if qok else ""  # noqa: E731
    rt = lambda k: med(v[k]) / med(q[k]) if qok and med(q[k]) else None  # noqa: E731
    n = d["vms"]
    row("density", f"{n} VMs: start rate VMs/s", f(v["vms_per_s"]), qn("vms_per_s", 1), rt("vms_per_s"))
    row("density", "Rss per VM MiB", f(v["rss_kb"], 2, 1024), qn("rss_kb", 2, 1024), rt("rss_kb"))
    row("density", "Pss per VM MiB", f(v["pss_kb"], 2, 1024), qn("pss_kb", 2, 1024), rt("pss_kb"))
    row("density", f"guest RAM Rss KiB (of {d['mem_mib']} MiB)", f(v["guest_ram_rss_kb"], 0),
        qn("guest_ram_rss_kb", 0), None)
    row("density", "host MemAvailable drop/VM MiB (host-wide: noisy)", f(v["host_kb_per_vm"], 2, 1024), qn("host_kb_per_vm", 2, 1024),
        rt("host_kb_per_vm"))
    if not qok:
        row("density", "  QEMU", "", f"not measured: {q.get('not_measured', 'not run')}")
    gmax = v["guest_ram_rss_max_kb"]["max"]
    ok = n >= 100 and gmax <= d["mem_mib"] * 1024 / 16
    goal("density: 100 VMs, untouched memory not resident", "MET" if ok else "NOT MET",
         f"{n} VMs up at {med(v['vms_per_s']):.0f}/s, {med(v['rss_kb']) / 1024:.2f} MiB Rss /"
         f" {med(v['pss_kb']) / 1024:.2f} MiB Pss each; largest guest-RAM Rss {gmax:.0f} KiB of"
         f" {d['mem_mib']} MiB" + (f"; QEMU {med(q['rss_kb']) / 1024:.1f} MiB Rss each" if qok else ""))
else:
    goal("density: 100 VMs, untouched memory not resident", "NOT MEASURED",
         why("density", (d or {}).get("vmm", {}).get("vigil", {}).get("not_measured", "bench/density.py wrote nothing")))

# --- lab: boot (bench/boot.py) ---
b = load("lab/boot.json")
bt = load("lab/boot-trace.json") or {}
if b:
    for case, t in bt.items():  # the traced pass's exit counts, into the cases
        if case in b["cases"]:
            b["cases"][case].update(exits=t.get("exits"), kvm_debugfs=t.get("kvm_debugfs"))
    ratios, failed = [], []

    def exits_of(c):
        e, ks = c.get("exits") or {}, c.get("kvm_debugfs") or {}
        if e:
            top = ", ".join(f"{n} {v}" for n, v in sorted(e.items(), key=lambda t: -t[1]) if n != "NPF")
            return f"{sum(e.values())} (NPF {e.get('NPF', 0)}; {', '.join(top.split(', ')[:3])})"
        if ks:
            return f"{ks.get('exits')} (pf_taken {ks.get('pf_taken')}, io {ks.get('io_exits')})"
        return "-"

    for k in ("bzImage", "PVH"):
        a, m, pc = (b["cases"].get(f"{vm}/{k}", {}) for vm in ("vigil", "qemu microvm", "qemu pc"))
        for key, label in (("wall_s", "whole run s"), ("init_s", "guest to init s")):
            r = med(a.get(key)) / med(m.get(key)) if med(a.get(key)) and med(m.get(key)) else None
            row(f"boot {k}", label, f(a.get(key), 2) + (f" [{a['failed']} failed]" if a.get("failed") else ""),
                f"microvm {f(m.get(key), 2)}; pc {f(pc.get(key), 2)}", r)
            if r is None:
                failed.append(f"{k} {label}")
            else:
                ratios.append((f"{k} {label.rsplit(' ', 1)[0]}", r))
        if any(c.get("exits") or c.get("kvm_debugfs") for c in (a, m, pc)):
            row(f"boot {k}", "L1 exits, one traced boot", exits_of(a), f"microvm {exits_of(m)}; pc {exits_of(pc)}")
    if ratios and not failed:
        goal("boot <= 0.8x QEMU microvm", "MET" if all(r <= 0.8 for _, r in ratios) else "NOT MET",
             ", ".join(f"{n} {r:.3f}x" for n, r in ratios))
    else:
        goal("boot <= 0.8x QEMU microvm", "NOT MEASURED" if not ratios else "NOT MET",
             f"no figure for {', '.join(failed)}" + (": " + ", ".join(f"{n} {r:.2f}x" for n, r in ratios)
                                                     if ratios else ""))
else:
    goal("boot <= 0.8x QEMU microvm", "NOT MEASURED", why("boot", "lab not run: LAB=0"))

# --- lab: disk (bench/disk.py) ---
dk = load("lab/disk.json")
if dk:
    rs = []
    for label, c in dk["table"].items():
        q = c.get("qemu aio=io_uring")
        row("disk (lab)", label + (" MB/s" if label.startswith("seq") else " IOPS"),
            f"uring {c.get('vigil uring') or 0:.0f}, threads {c.get('vigil threads') or 0:.0f}",
            f"QEMU {q or 0:.0f}", c.get("ratio"))
        rs.append((label, c.get("ratio")))
    bad = [n for n, r in rs if r is None]
    goal("disk >= 1.1x QEMU", ("NOT MET" if any(r is not None and r < 1.1 for _, r in rs) or bad else "MET"),
         ", ".join(f"{n} {r:.2f}x" if r else f"{n} -" for n, r in rs))
else:
    goal("disk >= 1.1x QEMU", "NOT MEASURED", why("disk", "lab not run: LAB=0"))

# --- network ---
nt = load("lab/net.json")
if nt:
    for key, c in nt["table"].items():
        row("net (lab)", f"{key} Mbit/s", f(c.get("vigil"), 0), f"QEMU {f(c.get('qemu'), 0)}", c.get("ratio"))
    goal("network >= QEMU", nt.get("verdict", "NOT MEASURED"), nt.get("detail", ""))
else:
    goal("network >= QEMU", "NOT MEASURED", why("net", "bench/net.py wrote nothing"))

# --- vigil-metal beside vigil on KVM in the lab (bench/metal.py; only with --only metal) ---
mt = load("metal.json")
if mt:
    km, kk = mt["sides"].get("vigil-metal", {}), mt["sides"].get("vigil on KVM (lab)", {})
    for key, label, prec, unit in (("hammer_exits_per_s", "tiny-hammer exits/s", 0, ""),
                                   ("pioloop_exits_per_s", "tiny-pioloop exits/s", 0, ""),
                                   ("debian_init_s", "Debian uptime at init", 2, " s"),
                                   ("debian_run_s", "Debian whole run", 2, " s")):
        a, b = med(km.get(key)), med(kk.get(key))
        row("metal (emul.)", label, f(km.get(key), prec, unit=unit), f"vigil on KVM {f(kk.get(key), prec, unit=unit)}",
            a / b if a and b else None)


def commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(), "host": f"{platform.node()}, {cpu_model()}, {os.cpu_count()} CPUs, "
                                    f"Linux {platform.release()}",
        "loadavg": os.getloadavg()[0]}
print(f"\nvigil benchmark, {meta['date']}, commit {meta['commit']}; {meta['host']}; load {meta['loadavg']:.2f}")
print("median (min-max); ratio = vigil / peer (for times and memory lower is better, for rates higher)")
w = [max([len(r[i]) for r in rows] + [h]) for i, h in enumerate((7, 6, 5, 4, 5))]
w = [min(x, c) for x, c in zip(w, (12, 40, 44, 60, 7))]
hdr = ("section", "metric", "vigil", "peer", "ratio")
print("  ".join(h.ljust(n) for h, n in zip(hdr, w)))
for r in rows:
    print("  ".join(c.ljust(n) for c, n in zip(r, w)).rstrip())
print("\ngoals (issue 10):")
for g, v, det in goals:
    print(f"  {v:<13} {g}: {det}")
out = {"meta": meta, "goals": [{"goal": g, "verdict": v, "detail": det} for g, v, det in goals],
       "table": [dict(zip(hdr, r)) for r in rows],
       "raw": {n: load(n) for n in ("startup.json", "exit_cost.json", "exits.json", "policy.json",
                                    "snapshot.json", "density.json", "lab/boot.json", "lab/boot-trace.json", "lab/disk.json",
                                    "lab/net.json")}}
out["raw"]["metal.json"] = load("metal.json")
os.makedirs(os.path.dirname(os.path.abspath(ARGS.out)), exist_ok=True)
with open(ARGS.out, "w") as fh:
    json.dump(out, fh, indent=1)
print(f"\nresults: {ARGS.out}")
sys.exit(0)
