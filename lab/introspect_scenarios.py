#!/usr/bin/python3
"""Lab scenarios for live introspection and the guest core dump (imported by
lab/devices.py, which runs them in the same L1 boot), with Debian's kernel:
  introspect-regs     GET /vigil/vcpus/0/regs of the running kernel: a
                      kernel-half rip, CR0.PG, EFER.LMA;
  introspect-memory   linux_banner's address from the guest's /proc/kallsyms
                      (KASLR'd), read by gva through vCPU 0's page tables:
                      the bytes of the guest's /proc/version; translate says
                      where it lives and the same bytes come back by gpa;
  dump-gdb            PUT /vigil/dump of the running VM; readelf sees an
                      x86-64 core with a NT_PRSTATUS per vCPU; `gdb
                      build/guest/vmlinux core -ex 'x/s ADDR'` prints the
                      banner (Debian's vmlinux has no symbols: the address is
                      kallsyms'); the guest runs on after the dump.
  pagewalk-kvm        build/tests/kvm_translate_check on L1's real KVM
                      (AMD-V): vigil's walk against KVM_TRANSLATE in every
                      paging mode, PAE and 32-bit included, which this
                      host's kvm_pvm cannot run.
"""
import json
import os
import re
import subprocess

from apiclient import Api  # also puts tests/ on sys.path
from api_unix import UnixHTTPConnection
from driver import DriverError, Guest
import scenarios as S

VIGIL = os.environ.get("VIGIL", "build/vigil")
VMLINUX = os.path.join(S.GUEST, "vmlinux")
NAMES = ["introspect-regs", "introspect-memory", "dump-gdb"]


def boot_introspect(r, work):
    """introspect-regs, introspect-memory, dump-gdb"""
    sock = os.path.join(work, "api.sock")
    core = os.path.join(work, "guest.core")
    os.makedirs(S.LOGDIR, exist_ok=True)
    g = Guest([VIGIL, "run", "--api-sock", sock, "--kernel", S.BZIMAGE, "--initrd", S.INITRD, "--cpus", "2",
               "--mem", "256M", "--cmdline", "console=ttyS0 quiet"],
              os.path.join(S.LOGDIR, "vigil-introspect.log"))
    try:
        g.wait_ready(S.BOOT_TIMEOUT)
        api = Api(sock, timeout=300)
        st, regs = api.get("/vigil/vcpus/0/regs")
        regs = regs if isinstance(regs, dict) else {}
        rip = int(regs.get("rip", "0x0"), 16)
        cr0 = int(regs.get("cr0", "0x0"), 16)
        efer = int(regs.get("efer", "0x0"), 16)
        r.check("introspect-regs", st == 200 and rip >= 0xffff800000000000 and cr0 >> 31 & 1 and efer >> 10 & 1,
                f"GET regs {st} {regs}")

        _, ks = g.run("grep -w linux_banner /proc/kallsyms")
        m = re.search(r"^([0-9a-f]{16}) \S linux_banner$", ks, re.M)
        _, version = g.run("cat /proc/version")
        version = version.strip()
        if not m or not version:
            raise DriverError(f"no linux_banner in kallsyms ({ks!r}) or no /proc/version ({version!r})")
        addr = int(m.group(1), 16)
        st1, data = api_bytes(sock, f"/vigil/memory?gva={addr:#x}&vcpu=0&len=256")
        st2, tr = api.get(f"/vigil/vcpus/0/translate?gva={addr:#x}")
        gpa = int(tr.get("gpa", "0x0"), 16) if isinstance(tr, dict) else 0
        st3, pdata = api_bytes(sock, f"/vigil/memory?gpa={gpa:#x}&len=256")
        banner = data.split(b"\0")[0].decode("latin-1").strip() if st1 == 200 else ""
        r.check("introspect-memory", st1 == 200 and banner == version and st2 == 200 and st3 == 200
                and pdata == data,
                f"banner at {addr:#x}: HTTP {st1} {banner!r} vs /proc/version {version!r}; translate {st2} {tr};"
                f" by gpa {st3} same={pdata == data}")

        st, body = api.put("/vigil/dump", {"path": core})
        _, after = api.get("/")
        _, alive = g.run("echo still-here")
        elf = subprocess.run(["readelf", "-h", "-l", "-n", core], capture_output=True, text=True)
        gdb = subprocess.run(["gdb", "-batch", "-nx", VMLINUX, core, "-ex", "info threads",
                              "-ex", f"x/s {addr:#x}"], capture_output=True, text=True, timeout=300)
        g.note("gdb said:\n" + gdb.stdout + gdb.stderr)
        shown = re.search(r'^0x%x[^:]*:\s+"(.*)"' % addr, gdb.stdout, re.M)
        r.check("dump-gdb", st == 204 and isinstance(after, dict) and after.get("state") == "Running"
                and "still-here" in alive
                and "CORE (Core file)" in elf.stdout and elf.stdout.count("NT_PRSTATUS") == 2
                and shown is not None and shown.group(1).replace("\\n", "").strip() == version
                and "LWP 2" in gdb.stdout,
                f"dump {st} {body}; state {after}; readelf: {elf.stdout[-400:]!r}; gdb: {gdb.stdout[-500:]!r}"
                f" {gdb.stderr[-300:]!r}")
        g.finish("poweroff -f")
    except (DriverError, OSError, ValueError, subprocess.SubprocessError) as e:
        g.note("vigil's threads: " + g.threads())
        r.fail_rest(NAMES, str(e))
    finally:
        g.close()


def api_bytes(sock, url):
    """A GET whose answer is raw bytes: (status, bytes)."""
    c = UnixHTTPConnection(sock, 60)
    try:
        c.request("GET", url)
        resp = c.getresponse()
        return resp.status, resp.read()
    finally:
        c.close()


def boot_pagewalk(r, work):
    """pagewalk-kvm"""
    check = os.path.join(os.path.dirname(VIGIL), "tests", "kvm_translate_check")
    tiny = os.path.join(os.path.dirname(VIGIL), "tests", "guests", "tiny-peek.bin")
    try:
        p = subprocess.run([check, tiny], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        r.check("pagewalk-kvm", False, f"{check}: {e}")
        return
    modes = re.findall(r"^modes: (4-level|5-level|PAE|32-bit PSE), \d+ mappings", p.stdout, re.M)
    r.check("pagewalk-kvm", p.returncode == 0 and {"4-level", "PAE", "32-bit PSE"} <= set(modes),
            f"exit {p.returncode}; compared {modes}; {p.stdout[-600:]!r} {p.stderr[-300:]!r}")
    print("  " + "\n  ".join(l for l in p.stdout.splitlines() if l.startswith("modes") or "compared" in l),
          flush=True)


BOOTS = {
    boot_introspect: NAMES,
    boot_pagewalk: ["pagewalk-kvm"],
}

if __name__ == "__main__":
    print(json.dumps({f.__name__: n for f, n in BOOTS.items()}))
