#!/usr/bin/python3
"""Lab scenario for KVM's side of snapshots (imported by lab/devices.py):
  kvm-snap   build/tests/kvm_snap_check on L1's real KVM (AMD-V): the
             in-kernel PIC/IOAPIC/PIT/kvmclock and a vCPU's whole state
             saved, restored into a fresh VM over the memory file, the
             tiny-snap guest counting on; the dirty log; hostile sections.
             Here, unlike on this host's kvm_pvm, KVM keeps a TSC offset, so
             the TSC's continuity across the restore is checked too.
  kvm-snap-linux  Debian's kernel (2 vCPUs) with a shell loop ticking every
             0.1 s: paused, PUT /snapshot/create, that vigil killed, a new
             one given PUT /snapshot/load: the same shell answers, its loop
             ticks on (timer interrupts after the restore), and the guest's
             uptime goes on from the snapshot's, not from 0.
"""
import json
import os
import re
import subprocess

from apiclient import Api  # also puts tests/ on sys.path
from driver import DriverError, Guest
import scenarios as S

VIGIL = os.environ.get("VIGIL", "build/vigil")


def boot_kvm_snap(r, work):
    """kvm-snap"""
    check = os.path.join(os.path.dirname(VIGIL), "tests", "kvm_snap_check")
    tiny = os.path.join(os.path.dirname(VIGIL), "tests", "guests", "tiny-snap.bin")
    try:
        p = subprocess.run([check, tiny], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        r.check("kvm-snap", False, f"{check}: {e}")
        return
    tsc = "PASS the TSC goes on from the saved value" in p.stdout
    r.check("kvm-snap", p.returncode == 0 and tsc,
            f"exit {p.returncode}; TSC checked: {tsc}; {p.stdout[-800:]!r} {p.stderr[-300:]!r}")
    print("  " + "\n  ".join(l for l in p.stdout.splitlines() if l.startswith(("snapshot:", "restored:", "kvm_snap"))),
          flush=True)


def boot_kvm_snap_linux(r, work):
    """kvm-snap-linux"""
    name = "kvm-snap-linux"
    state, mem = os.path.join(work, "linux.state"), os.path.join(work, "linux.mem")
    s1, s2 = os.path.join(work, "snap1.sock"), os.path.join(work, "snap2.sock")
    os.makedirs(S.LOGDIR, exist_ok=True)
    g1 = g2 = None
    try:
        g1 = Guest([VIGIL, "run", "--api-sock", s1, "--kernel", S.BZIMAGE, "--initrd", S.INITRD, "--cpus", "2",
                    "--mem", "256M", "--cmdline", "console=ttyS0 quiet"], os.path.join(S.LOGDIR, "vigil-snap-a.log"))
        g1.wait_ready(S.BOOT_TIMEOUT)
        g1.run("(i=0; while :; do i=$((i+1)); echo $i > /tmp/tick; sleep 0.1; done) >/dev/null 2>&1 & true")
        _, before = g1.run("sleep 1; cat /proc/uptime /tmp/tick")
        api1 = Api(s1, 300)
        st_p, b_p = api1.patch("/vm", {"state": "Paused"})
        st_c, b_c = api1.put("/snapshot/create", {"snapshot_type": "Full", "snapshot_path": state,
                                                  "mem_file_path": mem})
        api1.close()
        g1.close()
        if st_p != 204 or st_c != 204:
            raise DriverError(f"pause {st_p} {b_p}, snapshot/create {st_c} {b_c}")
        g2 = Guest([VIGIL, "run", "--api-sock", s2], os.path.join(S.LOGDIR, "vigil-snap-b.log"))
        api2 = Api(s2, 300)
        api2.wait()
        st_l, b_l = api2.put("/snapshot/load", {"snapshot_path": state, "resume_vm": True,
                                                "mem_backend": {"backend_type": "File", "backend_path": mem}})
        api2.close()
        if st_l != 204:
            raise DriverError(f"snapshot/load {st_l} {b_l}")
        g2.send("")
        _, after = g2.run("cat /proc/uptime /tmp/tick; sleep 2; cat /tmp/tick", 180)
        up0 = re.findall(r"^(\d+\.\d+) ", before, re.M)
        up1 = re.findall(r"^(\d+\.\d+) ", after, re.M)
        ticks0 = [int(x) for x in re.findall(r"^(\d+)\s*$", before, re.M)]
        ticks1 = [int(x) for x in re.findall(r"^(\d+)\s*$", after, re.M)]
        ok = (len(up0) == 1 and len(up1) == 1 and float(up1[0]) >= float(up0[0])
              and len(ticks0) == 1 and len(ticks1) == 2 and ticks1[0] >= ticks0[0] and ticks1[1] > ticks1[0] + 3)
        r.check(name, ok, f"before {before!r}, after {after!r}")
        print(f"  uptime {up0} -> {up1}, ticks {ticks0} -> {ticks1}", flush=True)
        g2.finish("poweroff -f")
    except (DriverError, OSError, ValueError) as e:
        r.check(name, False, str(e))
    finally:
        for g in (g1, g2):
            if g:
                g.close()


BOOTS = {
    boot_kvm_snap: ["kvm-snap"],
    boot_kvm_snap_linux: ["kvm-snap-linux"],
}

if __name__ == "__main__":
    print(json.dumps({f.__name__: n for f, n in BOOTS.items()}))
