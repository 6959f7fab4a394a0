#!/usr/bin/python3
"""Network benchmark, vigil beside QEMU's userspace virtio-net (no vhost), run
INSIDE the lab (bench/run.sh --lab, section net).

TAP: a network namespace this bench makes, with a TAP device (192.168.78.1/24)
the VMM runs on; the guest is 192.168.78.2. User: each VMM's user-mode
network (vigil --net user, QEMU -netdev user), the guest 10.0.2.15 reaching
L1's loopback through 10.0.2.2. The other end is build/bench/netbench serve
(guest/tools/netbench.c, built for L1 too), in the namespace or on L1. In the
guest, netbench sends for LAB_NET_SECS (guest -> host) and receives (host ->
guest), TCP, 128 KiB writes, counted on the guest's side. Both VMMs: 2 vCPUs,
512 MiB, the default guest. Boots go in rounds (LAB_NET_RUNS, default 2), every
VMM and mode once per round; medians. Lab figures are emulation figures:
compare side by side only. Writes $LAB_RESULTS/net.json. Never a test.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from driver import DriverError, Guest  # noqa: E402

RUNS = int(os.environ.get("LAB_NET_RUNS", "2"))
SECS = float(os.environ.get("LAB_NET_SECS", "5"))
G = os.environ.get("LAB_GUEST", "build/guest")
OUT = os.environ.get("LAB_RESULTS", "/tmp/lab-results")
NETBENCH = "build/bench/netbench"
NS, TAP = "vigil-bench", "vbtap0"
NSX = ["ip", "netns", "exec", NS]
CMDLINE = "console=ttyS0 quiet"
PORT_TAP, PORT_USER = 5201, 5202
MODES = {"tap": ("192.168.78.2/24", None, "192.168.78.1", PORT_TAP),
         "user": ("10.0.2.15/24", "10.0.2.2", "10.0.2.2", PORT_USER)}
DEVSTATS_RE = re.compile(r"net \S+: tx_frames=.*")
RATE_RE = re.compile(r"netbench (send|recv): \d+ bytes in [\d.]+ s, ([\d.]+) Mbit/s")
# What the guest saw, around each transfer: its interface's packet and byte
# counts and the interrupts of the virtio-net queues (vectors named
# virtioN-input.0 / -output.0 under both VMMs), so frames per interrupt and
# interrupts per MB compare side by side without either VMM's own counters.
COUNTERS = ("cd /sys/class/net/eth0/statistics && echo pk $(cat rx_packets tx_packets rx_bytes tx_bytes); "
            "grep -E 'virtio[0-9]+-(input|output)' /proc/interrupts")


def counters(g):
    rc, out = g.run(COUNTERS, timeout=30)
    c = {"rx_pk": 0, "tx_pk": 0, "rx_b": 0, "tx_b": 0, "irq_in": 0, "irq_out": 0}
    for line in out.splitlines():
        f = line.split()
        if f[:1] == ["pk"] and len(f) == 5:
            c["rx_pk"], c["tx_pk"], c["rx_b"], c["tx_b"] = (int(x) for x in f[1:])
        elif len(f) > 2 and f[0].endswith(":"):
            n = sum(int(x) for x in f[1:] if x.isdigit())
            c["irq_in" if "-input" in line else "irq_out"] += n
    return c


def batching(before, after, d):
    """Frames per interrupt and interrupts per MB on the queue that carried
    the data (receive for recv, transmit for send)."""
    dx = {k: after[k] - before[k] for k in after}
    pk, b, irq = (dx["rx_pk"], dx["rx_b"], dx["irq_in"]) if d == "recv" else (dx["tx_pk"], dx["tx_b"], dx["irq_out"])
    return {"packets": pk, "bytes": b, "irqs": irq, "pk_per_irq": pk / irq if irq else None,
            "irq_per_mb": irq / (b / 1e6) if b else None, "avg_frame": b / pk if pk else None}


def vigil(mode):
    net = f"tap={TAP},mac=52:54:00:12:34:78" if mode == "tap" else "user"
    # vigil's user-mode network reaches the host's loopback only where a
    # policy rule names it (src/devices/net_filter.h); QEMU's reaches it all.
    pol = []
    if mode == "user":
        path = f"{OUT}/net-user-policy.json"
        with open(path, "w") as f:
            json.dump({"rules": [{"id": "netbench", "resource": "net", "direction": "egress", "proto": "tcp",
                                  "dst": "10.0.2.2", "ports": [PORT_USER], "verdict": "provide"}]}, f)
        pol = ["--policy", path]
    return ((NSX if mode == "tap" else []) +
            ["build/vigil", "run", "--kernel", f"{G}/vmlinuz", "--initrd", f"{G}/initramfs.cpio.gz",
             "--mem", "512M", "--cpus", "2", "--cmdline", CMDLINE, "--net", net, "--stats"] + pol)


def qemu(mode):
    nd = (f"tap,id=n0,ifname={TAP},script=no,downscript=no,vhost=off" if mode == "tap" else "user,id=n0")
    return ((NSX if mode == "tap" else []) +
            ["qemu-system-x86_64", "-M", "pc", "-enable-kvm", "-cpu", "host", "-m", "512", "-smp", "2",
             "-nographic", "-no-reboot", "-kernel", f"{G}/vmlinuz", "-initrd", f"{G}/initramfs.cpio.gz",
             "-append", CMDLINE + " reboot=t", "-netdev", nd,
             "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:78"])


VMMS = [("vigil", vigil), ("qemu virtio-net", qemu)]


def sh(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def setup():
    sh("ip", "netns", "del", NS)
    for c in (["ip", "netns", "add", NS], NSX + ["ip", "link", "set", "lo", "up"],
              NSX + ["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
              NSX + ["ip", "addr", "add", "192.168.78.1/24", "dev", TAP],
              NSX + ["ip", "link", "set", TAP, "up"]):
        p = sh(*c)
        if p.returncode:
            raise RuntimeError(f"{' '.join(c)}: {p.stderr.strip()}")
    servers = [subprocess.Popen(NSX + [NETBENCH, "serve", str(PORT_TAP)], stdout=subprocess.DEVNULL),
               subprocess.Popen([NETBENCH, "serve", str(PORT_USER)], stdout=subprocess.DEVNULL)]
    time.sleep(0.5)
    return servers


def one_boot(name, mode, argv, rnd):
    """{'send': Mbit/s, 'recv': Mbit/s} for one boot."""
    addr, gw, peer, port = MODES[mode]
    g = Guest(argv, f"{OUT}/net-{name.replace(' ', '-')}-{mode}-{rnd}.log")
    got = {}
    try:
        g.wait_ready(timeout=600)
        cfg = f"ip addr add {addr} dev eth0 && ip link set eth0 up" + (f" && ip route add default via {gw}" if gw else "")
        rc, out = g.run(cfg + " && sleep 1", timeout=60)
        if rc != 0:
            print(f"  {name} {mode}: network set-up failed: {out.strip()[-200:]!r}", flush=True)
        for d in ("send", "recv"):
            c0 = counters(g)
            rc, out = g.run(f"netbench {d} {peer} {port} {SECS}", timeout=120 + 4 * SECS)
            m = RATE_RE.search(out)
            if rc == 0 and m:
                got[d] = float(m.group(2))
                bt = batching(c0, counters(g), d)
                got[d + "_batch"] = bt
                print(f"  {name} {mode} {d}: {bt['packets']} frames, {bt['irqs']} queue interrupts"
                      + (f", {bt['pk_per_irq']:.1f} frames/interrupt, {bt['irq_per_mb']:.1f} interrupts/MB"
                         if bt["irqs"] and bt["bytes"] else "")
                      + (f", {bt['avg_frame']:.0f} B/frame" if bt["packets"] else ""), flush=True)
            else:
                print(f"  {name} {mode} {d}: failed ({out.strip()[-200:]!r})", flush=True)
        g.finish(timeout=120)
        # vigil's --stats: the device's own counts over the boot (both
        # directions: the ACKs of recv are transmit frames too)
        m = DEVSTATS_RE.search(g.err)
        if m:
            v = {k: int(x) for k, x in re.findall(r"(\w+)=(\d+)", m.group(0))}
            if v.get("tx_runs") and v.get("tx_frames"):
                print(f"  {name} {mode} device: {v['tx_frames']} frames sent in {v['tx_runs']} runs "
                      f"({v['tx_frames'] / v['tx_runs']:.1f} frames/kick), {v['tx_irqs']} TX interrupts, "
                      f"{v['tx_bytes'] / v['tx_frames']:.0f} B/frame", flush=True)
    except DriverError as e:
        print(f"  {name} {mode}: {e}", flush=True)
        g.kill()
    finally:
        g.close()
    return got


def main():
    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(NETBENCH):
        print(f"net: {NETBENCH} missing (make {NETBENCH})")
        return 1
    servers = setup()
    res = {n: {m: {"send": [], "recv": []} for m in MODES} for n, _ in VMMS}
    batch = {n: {m: {"send": [], "recv": []} for m in MODES} for n, _ in VMMS}
    try:
        for rnd in range(RUNS):
            order = [(n, mk, m) for n, mk in VMMS for m in MODES]
            for name, mk, mode in (order if rnd % 2 == 0 else order[::-1]):
                for d, v in one_boot(name, mode, mk(mode), rnd).items():
                    if d.endswith("_batch"):
                        batch[name][mode][d[:-6]].append(v)
                        continue
                    res[name][mode][d].append(v)
                    print(f"  round {rnd + 1} {name} {mode} {d}: {v:.1f} Mbit/s", flush=True)
    finally:
        for s in servers:
            s.kill()
        sh(*NSX, "ip", "link", "del", TAP)
        sh("ip", "netns", "del", NS)

    def st(xs):
        return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)} if xs else None

    table, ratios = {}, {}
    print(f"network in the lab guest (TCP, {SECS:g} s each way), median of {RUNS}, Mbit/s")
    print(f"{'case':22}" + "".join(f"{n:>24}" for n, _ in VMMS) + f"{'vigil/qemu':>12}")
    for mode in MODES:
        for d, label in (("send", "guest->host"), ("recv", "host->guest")):
            cells = [st(res[n][mode][d]) for n, _ in VMMS]
            r = cells[0]["median"] / cells[1]["median"] if cells[0] and cells[1] else None
            key = f"{mode} {label}"
            table[key] = {"vigil": cells[0], "qemu": cells[1], "ratio": r}
            ratios[key] = r
            print(f"{key:22}" + "".join(
                f"{c['median']:10.1f} ({c['min']:.0f}-{c['max']:.0f})".rjust(24) if c else f"{'-':>24}" for c in cells)
                + (f"{r:11.2f}x" if r else f"{'-':>12}"), flush=True)
    print("frames per queue interrupt in the guest (median; interrupts per MB)")
    for mode in MODES:
        for d, label in (("send", "guest->host"), ("recv", "host->guest")):
            cells = []
            for n, _ in VMMS:
                xs = [b for b in batch[n][mode][d] if b["pk_per_irq"] is not None]
                cells.append(f"{statistics.median(b['pk_per_irq'] for b in xs):8.1f} "
                             f"({statistics.median(b['irq_per_mb'] for b in xs):.1f}/MB)" if xs else "-")
            print(f"{mode + ' ' + label:22}" + "".join(f"{c:>24}" for c in cells), flush=True)
    missing = [k for k, r in ratios.items() if r is None]
    tap_ok = all((ratios[k] or 0) >= 1.0 for k in ratios if k.startswith("tap"))
    user_ok = all((ratios[k] or 0) >= 0.9 for k in ratios if k.startswith("user"))
    verdict = "NOT MEASURED" if len(missing) == len(ratios) else (
        "MET" if tap_ok and user_ok and not missing else "NOT MET")
    detail = ", ".join(f"{k} {r:.2f}x" if r else f"{k} -" for k, r in ratios.items()) + \
        " (goal: TAP >= 1.0x both ways, user level: >= 0.9x)"
    with open(f"{OUT}/net.json", "w") as f:
        json.dump({"runs": RUNS, "secs": SECS, "table": table, "raw": res, "batching": batch, "verdict": verdict,
                   "detail": detail}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
