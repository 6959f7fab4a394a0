#!/usr/bin/python3
"""Disk benchmark, vigil (threads and io_uring) beside QEMU, run INSIDE the lab
(`make bench-disk`, bench/run.sh disk).

One disk for every VMM: a loop device over a file in L1's tmpfs (a real block
device, so O_DIRECT works for vigil's io_uring engine and QEMU's cache=none;
the bytes live in L1's RAM, so what is measured is the VMM's path, not a
disk). Each boot runs guest/tools/blkbench in the guest on /dev/vda with
O_DIRECT: sequential 128 KiB and random 4 KiB, reads and writes, at queue
depth 1 and 32 (32 threads with one I/O each), LAB_DISK_SECS seconds each.
The VMMs are booted in turn, LAB_BENCH_RUNS rounds (interleaved); the table
gives medians (MB/s for sequential, IOPS for random) and io_uring's ratio to
QEMU's. Lab figures are emulation figures: compare side by side only. Never a
test: nothing here fails on a slow machine.
"""
import json
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from driver import DriverError, Guest  # noqa: E402

RUNS = int(os.environ.get("LAB_BENCH_RUNS", "3"))
SECS = float(os.environ.get("LAB_DISK_SECS", "3"))
G = os.environ.get("LAB_GUEST", "build/guest")
OUT = os.environ.get("LAB_RESULTS", "/tmp/lab-results")
CMDLINE = "console=ttyS0 quiet"
DISK_MIB = 256

TESTS = [  # label, blkbench mode, block size, queue depth
    ("seq read QD1", "read", 131072, 1),
    ("seq read QD32", "read", 131072, 32),
    ("seq write QD1", "write", 131072, 1),
    ("seq write QD32", "write", 131072, 32),
    ("4k rand read QD1", "randread", 4096, 1),
    ("4k rand read QD32", "randread", 4096, 32),
    ("4k rand write QD1", "randwrite", 4096, 1),
    ("4k rand write QD32", "randwrite", 4096, 32),
]


def vigil(dev, io):
    return ["build/vigil", "run", "--kernel", f"{G}/vmlinuz", "--initrd", f"{G}/initramfs.cpio.gz",
            "--mem", "512M", "--cpus", "2", "--cmdline", CMDLINE, "--disk", f"path={dev},io={io}", "--stats"]


def qemu(dev):
    return ["qemu-system-x86_64", "-M", "pc", "-enable-kvm", "-cpu", "host", "-m", "512", "-smp", "2",
            "-nographic", "-no-reboot", "-kernel", f"{G}/vmlinuz", "-initrd", f"{G}/initramfs.cpio.gz",
            "-append", CMDLINE + " reboot=t",
            "-drive", f"id=d0,file={dev},format=raw,if=none,cache=none,aio=io_uring",
            "-device", "virtio-blk-pci,drive=d0"]


VMMS = [
    ("vigil threads", lambda dev: vigil(dev, "threads")),
    ("vigil uring", lambda dev: vigil(dev, "uring")),
    ("qemu aio=io_uring", qemu),
]


def make_disk():
    """A loop device over a DISK_MIB file in tmpfs; its path."""
    subprocess.run(["modprobe", "loop"], stderr=subprocess.DEVNULL)
    img = "/tmp/bench-disk.img"
    with open(img, "wb") as f:
        f.truncate(DISK_MIB << 20)
    # Filled, so reads are of real data, not holes.
    subprocess.run(["dd", "if=/dev/zero", f"of={img}", "bs=1M", f"count={DISK_MIB}", "conv=notrunc"],
                   check=True, stderr=subprocess.DEVNULL)
    dev = subprocess.run(["losetup", "-f", "--show", img], check=True, capture_output=True,
                         text=True).stdout.strip()
    return dev


# What the guest counts around each test: the disk's interrupts (its
# virtio device's lines in /proc/interrupts), the IPIs that wake a task on
# the other vCPU (CAL, RES), and the block layer's requests and merges
# (/sys/block/vda/stat). Same for every VMM, so they compare side by side.
COUNTERS = ("d=$(basename $(readlink /sys/block/vda/device)); echo \"dev $d\"; "
            "echo \"hwq $(ls /sys/block/vda/mq | wc -l)\"; cat /proc/interrupts; "
            "echo \"stat $(cat /sys/block/vda/stat)\"")


def counters(g):
    rc, out = g.run(COUNTERS, timeout=60)
    dev, c = None, {"irq": 0, "ipi": 0, "hwq": 0, "ios": 0, "merges": 0}
    m = re.search(r"^dev (\S+)", out, re.M)
    dev = m.group(1) if m else "virtio"
    for line in out.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "hwq" and len(f) > 1:
            c["hwq"] = int(f[1])
        elif f[0] == "stat" and len(f) >= 9:
            st = [int(x) for x in f[1:]]
            c["ios"] = st[0] + st[4]
            c["merges"] = st[1] + st[5]
        elif f[0] in ("CAL:", "RES:"):
            c["ipi"] += sum(int(x) for x in f[1:] if x.isdigit())
        elif f[0].rstrip(":").isdigit() and any(w.startswith(dev + "-") and "config" not in w for w in f):
            c["irq"] += sum(int(x) for x in f[1:] if x.isdigit())
    return c


def one_boot(name, argv, rnd):
    """{label: (iops, mb/s, counts)} for one boot of one VMM."""
    g = Guest(argv, f"{OUT}/disk-{name.replace(' ', '-')}-{rnd}.log")
    got = {}
    try:
        g.wait_ready(timeout=600)
        for label, mode, bs, qd in TESTS:
            before = counters(g)
            rc, out = g.run(f"blkbench /dev/vda {mode} {bs} {qd} {SECS}", timeout=120 + 10 * SECS)
            after = counters(g)
            m = re.search(r"blkbench \S+ \d+ \d+: (\d+) iops ([\d.]+) mb/s", out)
            if rc == 0 and m:
                ios = max(after["ios"] - before["ios"], 1)
                cnt = {"hwq": after["hwq"], "requests": ios,
                       "irq_per_req": round((after["irq"] - before["irq"]) / ios, 3),
                       "ipi_per_req": round((after["ipi"] - before["ipi"]) / ios, 3),
                       "merges": after["merges"] - before["merges"]}
                got[label] = (float(m.group(1)), float(m.group(2)), cnt)
            else:
                print(f"  {name} {label}: failed ({out.strip()[-200:]!r})", flush=True)
        g.finish(timeout=120)
        # vigil's own counts for the whole boot (--stats): kicks and
        # interrupts per request as the device saw them.
        for line in g.err.splitlines():
            if line.startswith("blk "):
                print(f"  {name} round {rnd}: {line}", flush=True)
    except DriverError as e:
        print(f"  {name}: {e}", flush=True)
        g.kill()
    finally:
        g.close()
    return got


def main():
    os.makedirs(OUT, exist_ok=True)
    dev = make_disk()
    res = {name: {label: [] for label, *_ in TESTS} for name, _ in VMMS}
    try:
        for rnd in range(RUNS):
            for name, argv in VMMS:
                for label, v in one_boot(name, argv(dev), rnd).items():
                    res[name][label].append(v)
    finally:
        subprocess.run(["losetup", "-d", dev])
        os.unlink("/tmp/bench-disk.img")

    def med(name, label):
        vals = res[name][label]
        if not vals:
            return None
        seq = label.startswith("seq")
        return statistics.median(v[1] if seq else v[0] for v in vals)

    def counts(name, label):
        """The last round's guest-side counts (they vary little)."""
        vals = res[name][label]
        return vals[-1][2] if vals else None

    print(f"disk in the lab guest (O_DIRECT, {SECS:g} s each), median of {RUNS}: "
          "sequential in MB/s (128 KiB), random in IOPS (4 KiB)")
    print(f"{'test':20}" + "".join(f"{n:>20}" for n, _ in VMMS) + f"{'uring/qemu':>12}")
    table = {}
    for label, *_ in TESTS:
        cells = [med(n, label) for n, _ in VMMS]
        ratio = cells[1] / cells[2] if cells[1] and cells[2] else None
        table[label] = dict(zip([n for n, _ in VMMS], cells), ratio=ratio)
        print(f"{label:20}" + "".join(f"{c:20.1f}" if c is not None else f"{'-':>20}" for c in cells) +
              (f"{ratio:11.2f}x" if ratio else f"{'-':>12}"), flush=True)
        table[label]["counts"] = {n: counts(n, label) for n, _ in VMMS}
    print("guest-side counts per request (last round): disk interrupts, IPIs (CAL+RES), "
          "block-layer merges in the test, hardware queues")
    for label, *_ in TESTS:
        cells = []
        for n, _ in VMMS:
            c = table[label]["counts"][n]
            cells.append(f"{c['irq_per_req']:.2f}/{c['ipi_per_req']:.2f}/{c['merges']}/{c['hwq']}" if c else "-")
        print(f"{label:20}" + "".join(f"{x:>20}" for x in cells), flush=True)
    with open(f"{OUT}/disk.json", "w") as f:
        json.dump({"runs": RUNS, "secs": SECS, "table": table, "raw": res}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
