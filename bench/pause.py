#!/usr/bin/python3
"""Pause/resume latency, vigil beside QEMU, run INSIDE the lab (bench/run.sh).

Boots the default guest (Debian's kernel, 4 vCPUs, 512 MiB) once per VMM,
waits for its shell, then times N pause/resume cycles from the client's side
of the control socket: vigil's PATCH /vm {"state": "Paused"|"Resumed"} (the
call Firecracker's tooling makes), QEMU's QMP stop / cont. Prints p50 and
p99 of each. Firecracker publishes no pause/resume figure (its
SPECIFICATION.md has start-up, memory and I/O ones only), so QEMU is the peer
measured here. Lab times are emulation times: read them side by side only.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab"))
from apiclient import Api, Qmp  # noqa: E402
from driver import DriverError, Guest  # noqa: E402

CYCLES = int(os.environ.get("LAB_PAUSE_CYCLES", "100"))
G = os.environ.get("LAB_GUEST", "build/guest")
KERNEL, INITRD = f"{G}/vmlinuz", f"{G}/initramfs.cpio.gz"
CPUS, MEM = 4, 512


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def cycles(pause, resume):
    ps, rs = [], []
    for _ in range(CYCLES):
        ps.append(timed(pause))
        rs.append(timed(resume))
    return ps, rs


def bench_vigil(tmp):
    sock = os.path.join(tmp, "vigil.sock")
    g = Guest(["build/vigil", "run", "--api-sock", sock, "--kernel", KERNEL, "--initrd", INITRD,
               "--cpus", str(CPUS), "--mem", f"{MEM}M", "--cmdline", "quiet"],
              os.path.join(tmp, "vigil.log"))
    try:
        g.wait_ready(180)
        api = Api(sock)
        api.wait()

        def patch(state):
            st, body = api.patch("/vm", {"state": state})
            if st != 204:
                raise DriverError(f"PATCH /vm {state}: {st} {body}")
        res = cycles(lambda: patch("Paused"), lambda: patch("Resumed"))
        g.run("true")  # the guest still answers
        g.finish()
        return res
    finally:
        g.close()


def bench_qemu(tmp):
    qmp_path = os.path.join(tmp, "qmp.sock")
    g = Guest(["qemu-system-x86_64", "-M", "microvm,rtc=on", "-enable-kvm", "-cpu", "host",
               "-m", str(MEM), "-smp", str(CPUS), "-nographic", "-no-reboot",
               "-qmp", f"unix:{qmp_path},server=on,wait=off",
               "-kernel", KERNEL, "-initrd", INITRD, "-append", "console=ttyS0 quiet"],
              os.path.join(tmp, "qemu.log"))
    try:
        g.wait_ready(180)
        q = Qmp(qmp_path)

        def ex(cmd):
            r = q.execute(cmd)
            if "error" in r:
                raise DriverError(f"QMP {cmd}: {r}")
        res = cycles(lambda: ex("stop"), lambda: ex("cont"))
        g.run("true")
        g.finish()
        return res
    finally:
        g.close()


def main():
    print(f"pause/resume latency, {CPUS} vCPUs, {CYCLES} cycles (lab ms, client side)")
    print(f"{'VMM':16}{'pause p50':>12}{'pause p99':>12}{'resume p50':>12}{'resume p99':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("vigil", bench_vigil), ("qemu microvm", bench_qemu)):
            try:
                ps, rs = fn(tmp)
            except (DriverError, OSError) as e:
                print(f"{name:16}failed: {e}")
                continue
            print(f"{name:16}{pct(ps, 50):12.2f}{pct(ps, 99):12.2f}{pct(rs, 50):12.2f}{pct(rs, 99):12.2f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
