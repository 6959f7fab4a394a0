#!/usr/bin/python3
"""Lab scenario for KVM's side of snapshots (imported by lab/devices.py):
  kvm-snap   build/tests/kvm_snap_check on L1's real KVM (AMD-V): the
             in-kernel PIC/IOAPIC/PIT/kvmclock and a vCPU's whole state
             saved, restored into a fresh VM over the memory file, the
             tiny-snap guest counting on; the dirty log; hostile sections.
             Here, unlike on this host's kvm_pvm, KVM keeps a TSC offset, so
             the TSC's continuity across the restore is checked too.
"""
import json
import os
import subprocess

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


BOOTS = {
    boot_kvm_snap: ["kvm-snap"],
}

if __name__ == "__main__":
    print(json.dumps({f.__name__: n for f, n in BOOTS.items()}))
