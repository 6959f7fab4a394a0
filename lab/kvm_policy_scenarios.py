#!/usr/bin/python3
"""Lab scenarios for the KVM side of the policy and of the monitor (imported
by lab/devices.py, which runs them in the same L1 boot), with Debian's kernel
under a real kvm_amd:
  cpuid-no-hypervisor  a --policy cpuid rule on leaf 1 clears ECX bit 31: the
                       guest's /proc/cpuinfo has no `hypervisor` flag;
  msr-redirect         an msr rule redirects reads of an MSR the guest
                       kernel does not use (IA32_PLATFORM_ID, 0x17) to a
                       value the guest reads back with rdmsr (/dev/cpu/0/msr);
  *-audit              each decision in --audit: the cpuid rule once (CPUID
                       is applied when the vCPUs are made), the MSR reads;
  kvm-stats            --stats shows KVM's own per-vCPU counts beside vigil's:
                       KVM counted more exits than reached vigil.
"""
import json
import os
import re

from driver import DriverError, Guest
import scenarios as S

VIGIL = os.environ.get("VIGIL", "build/vigil")
PLATFORM_ID = 0x17
REDIRECTED = 0x5649474C00000017


def kvm_lines(err):
    """{vcpu: {name: value}} from the 'vcpuN kvm: a=1 b=2' lines of --stats."""
    out = {}
    for m in re.finditer(r"^vcpu(\d+) kvm:(.*)$", err, re.M):
        out[int(m.group(1))] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


def rdmsr_cmd(msr):
    """A shell line that prints MSR `msr` of CPU 0 as 8 bytes, from /dev/cpu/0/msr
    (guest/build.sh puts the msr module in the guest)."""
    return (f"[ -e /dev/cpu/0/msr ] || modprobe msr 2>/dev/null; "
            f"dd if=/dev/cpu/0/msr bs=8 count=1 skip={msr} iflag=skip_bytes 2>/dev/null | od -An -tx1")


def le64(text):
    """The little-endian 64-bit value of od -tx1's bytes, or None."""
    b = text.split()
    return int("".join(reversed(b)), 16) if len(b) == 8 else None


def boot_kvm_policy(r, work):
    """cpuid-no-hypervisor, msr-redirect (each with its audit record), kvm-stats"""
    names = ["cpuid-no-hypervisor", "msr-redirect", "cpuid-no-hypervisor-audit", "msr-redirect-audit", "kvm-stats"]
    pol = os.path.join(work, "policy.json")
    audit = os.path.join(work, "audit.jsonl")
    with open(pol, "w") as f:
        json.dump({"mode": "enforce", "rules": [
            {"id": "no-hypervisor-bit", "resource": "cpuid", "leaf": 1, "verdict": "redirect",
             "registers": {"ecx": "0b0" + "x" * 31}},
            {"id": "platform-id", "resource": "msr", "msrs": hex(PLATFORM_ID), "access": "read",
             "verdict": "redirect", "value": hex(REDIRECTED)},
        ]}, f)
    os.makedirs(S.LOGDIR, exist_ok=True)
    argv = [VIGIL, "run", "--kernel", S.BZIMAGE, "--initrd", S.INITRD, "--mem", "512M", "--cpus", "1",
            "--cmdline", "console=ttyS0 quiet", "--stats", "--policy", pol, "--audit", audit]
    g = Guest(argv, os.path.join(S.LOGDIR, "vigil-kvm-policy.log"))
    try:
        g.wait_ready(S.BOOT_TIMEOUT)
        st, flags = g.run("grep -m1 '^flags' /proc/cpuinfo")
        words = flags.split()
        r.check("cpuid-no-hypervisor", st == 0 and "fpu" in words and "hypervisor" not in words,
                f"flags line (status {st}): {flags.strip()[:300]!r}")
        st, msr = g.run(rdmsr_cmd(PLATFORM_ID), 60)
        got = le64(msr)
        r.check("msr-redirect", st == 0 and got == REDIRECTED,
                f"rdmsr 0x{PLATFORM_ID:x} read {msr.strip()!r} (status {st}), want 0x{REDIRECTED:x}")
        rc = g.finish("poweroff -f")
        recs = [json.loads(l) for l in open(audit)] if os.path.exists(audit) else []
        cpu = [x for x in recs if x.get("rule") == "no-hypervisor-bit"]
        msr = [x for x in recs if x.get("rule") == "platform-id"]
        r.check("cpuid-no-hypervisor-audit", len(cpu) == 1 and cpu[0]["resource"] == "cpuid"
                and cpu[0]["leaf"] == "0x1" and cpu[0]["verdict"] == "redirect" and cpu[0]["enforced"] is True,
                f"cpuid audit records: {cpu[:2]}")
        r.check("msr-redirect-audit", len(msr) >= 1 and msr[0]["resource"] == "msr"
                and msr[0]["msr"] == hex(PLATFORM_ID) and msr[0]["verdict"] == "redirect"
                and sum(x["count"] for x in msr) >= 1, f"msr audit records: {msr[:2]}")
        kvm = kvm_lines(g.err)
        total = re.search(r"^total exits: (\d+)", g.err, re.M)
        vigil_exits = int(total.group(1)) if total else None
        kexits = kvm.get(0, {}).get("exits")
        r.check("kvm-stats", rc == 0 and kexits is not None and vigil_exits is not None and kexits > vigil_exits
                and re.search(r"^total kvm exits: \d+", g.err, re.M) is not None
                and re.search(r"^vm kvm: ", g.err, re.M) is not None,
                f"exit {rc}; KVM counted exits={kexits} (halt_exits={kvm.get(0, {}).get('halt_exits')}),"
                f" vigil total exits={vigil_exits}; kvm lines: {[l for l in g.err.splitlines() if 'kvm' in l][:4]}")
        g.note(f"kvm-stats: KVM exits {kexits} vs vigil's {vigil_exits}; "
               f"{ {k: v for k, v in kvm.get(0, {}).items() if k.endswith('exits')} }")
    except (DriverError, OSError, ValueError) as e:
        r.fail_rest(names, str(e))
    finally:
        g.close()


BOOTS = {
    boot_kvm_policy: ["cpuid-no-hypervisor", "msr-redirect", "cpuid-no-hypervisor-audit", "msr-redirect-audit",
                      "kvm-stats"],
}
