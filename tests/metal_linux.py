#!/usr/bin/env python3
"""Debian's stock kernel under vigil-metal (tests/metal.sh's Linux scenario).

Boots QEMU's emulated AMD-V machine with vigil-metal, the kernel and the
default guest's busybox initramfs as multiboot modules, waits for the
guest's shell, asks it for its CPU count and memory, then `poweroff -f`,
and checks that vigil-metal said the guest powered off and QEMU exited.
With DISK (a raw image whose first sector starts "vigil-metal-disk"), it is
also a RAM disk module: the guest reads that sector from /dev/vda, writes
another and reads it back, its interrupts arriving as MSI-X.
With POLICY too (a policy module denying writes to sector 7 of drive0,
rule id "no-write-7"), the write must fail and the rule count its hit.
Usage: metal_linux.py IMAGE KERNEL INITRD MEM_MIB [TIMEOUT_S [DISK [POLICY]]]
METAL_OPTS: more vigil-metal options (e.g. --console-device virtio);
METAL_CPUS=N: a machine of N CPUs and --cpus N (one vCPU per host CPU).
(KERNEL: the bzImage, or the ELF vmlinux for the PVH entry.)
Prints one PASS/FAIL line per check; exit status 1 if any failed.
"""
import os
import re
import selectors
import subprocess
import sys
import time


def main():
    image, kernel, initrd, mem = sys.argv[1:5]
    limit = float(sys.argv[5]) if len(sys.argv) > 5 else 300
    disk = sys.argv[6] if len(sys.argv) > 6 else None
    policy = sys.argv[7] if len(sys.argv) > 7 else None
    mods = f"{kernel},{initrd}" + (f",{disk} disk" if disk else "") + (f",{policy} policy" if policy else "")
    cpus = int(os.environ.get("METAL_CPUS", "1"))  # --cpus N on a machine of -smp N
    cmd = ["nice", os.environ.get("QEMU", "qemu-system-x86_64"), "-accel", "tcg", "-cpu", "EPYC,+svm,+npt",
           "-smp", str(cpus),
           "-m", "2G", "-serial", "stdio", "-display", "none", "-monitor", "none", "-no-reboot",
           "-kernel", image, "-append", f"--mem {mem}M --cpus {cpus} --stats --cmdline earlyprintk=ttyS0 {os.environ.get('METAL_OPTS', '')}", "-initrd", mods]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    out = b""
    sent = False
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if not sel.select(timeout=1):
            if p.poll() is not None:
                break
            continue
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        out += chunk
        if not sent and b"guest# " in out:
            line = "echo cpus=$(nproc) tty=$(tty); grep MemTotal /proc/meminfo; "
            if disk:
                line += ("echo disk=$(head -c 16 /dev/vda); echo written-by-the-guest | dd of=/dev/vda bs=512 seek=7 "
                         "conv=sync,fsync 2>/dev/null; echo back=$(dd if=/dev/vda bs=512 skip=7 count=1 2>/dev/null "
                         "| head -c 20); echo msix=$(grep virtio0 /proc/interrupts | grep -c MSI); ")
            p.stdin.write((line + "poweroff -f\n").encode())
            p.stdin.flush()
            sent = True
    took = time.monotonic() - t0
    # Its output closed: QEMU is on its way out (or the time is up).
    try:
        p.wait(timeout=max(1.0, min(15.0, limit - took)))
        timed_out = False
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        timed_out = True
    text = out.decode("utf-8", "replace")
    fails = 0

    def check(ok, what):
        nonlocal fails
        print(("PASS " if ok else "FAIL ") + what)
        if not ok:
            fails += 1

    check(not timed_out, f"Debian's kernel: QEMU exited by itself ({took:.0f} s)")
    check("vigil guest: ready" in text, "Debian's kernel reaches the default guest's init")
    check(re.search(rf"^cpus={cpus} ", text, re.M) is not None, f"the guest counts {cpus} CPU(s)")
    want_tty = "/dev/hvc0" if "--console-device virtio" in os.environ.get("METAL_OPTS", "") else "/dev/ttyS0"
    check(re.search(rf"^cpus={cpus} tty=" + want_tty + r"\r?$", text, re.M) is not None, f"the guest's shell is on {want_tty}")
    m = re.search(r"^MemTotal:\s+(\d+) kB", text, re.M)
    total = int(m.group(1)) if m else 0
    # The kernel keeps its own image and tables out of MemTotal.
    check(int(mem) * 1024 * 0.8 < total <= int(mem) * 1024, f"the guest's MemTotal fits --mem {mem}M ({total} kB)")
    if disk:
        check(re.search(r"^disk=vigil-metal-disk\r?$", text, re.M) is not None, "virtio-blk: the guest reads the RAM disk")
        if policy:
            check(re.search(r"^back=\r?$", text, re.M) is not None,
                  "virtio-blk: the policy denies the write (the sector reads back empty)")
            check(re.search(r"^vigil-metal: policy rule no-write-7 \(disk deny\): hits=[1-9]", text, re.M) is not None,
                  "virtio-blk: the disk rule counts its hits")
        else:
            check(re.search(r"^back=written-by-the-guest\r?$", text, re.M) is not None,
                  "virtio-blk: a write to the RAM disk reads back")
        m = re.search(r"^msix=(\d+)\r?$", text, re.M)
        check(m is not None and int(m.group(1)) > 0, "virtio-blk: its interrupts are MSI-X (/proc/interrupts)")
        check(re.search(r"^vigil-metal: device drive0 \(virtio-blk\): requests=[1-9]", text, re.M) is not None,
              "virtio-blk: --stats counts the disk's requests")
    check(re.search(r"^vigil-metal: guest powered off\r?$", text, re.M) is not None and
          re.search(r"^vigil-metal: exit 0\r?$", text, re.M) is not None, "poweroff -f: 'guest powered off', exit 0")
    if fails:
        # The guest's last words and vigil-metal's, without the per-address counts.
        lines = [l for l in text.splitlines() if not re.match(r"vigil-metal: vcpu0 (mmio|port) ", l)]
        print("    " + "\n    ".join(lines[-40:]))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
