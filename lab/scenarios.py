#!/usr/bin/python3
"""Lab scenarios: boot the test guest under a VMM and check what it reports.

Run INSIDE L1 (see lab/run.sh), from the repo root:
    lab/scenarios.py [NAME...]        # no NAME: all scenarios
Env: VMM=vigil (default; build/vigil) or VMM=qemu (reference run),
     LAB_BOOT_TIMEOUT (s, default 180), LAB_RESULTS (log dir parent).
Prints "PASS name" / "FAIL name: reason" / "SKIP name: reason" per scenario,
then "lab: N passed, N failed"; exits 1 if any failed.

Several scenarios share one boot (each boot costs ~20-40 s in the lab).
"""
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from driver import DriverError, Guest  # noqa: E402

VMM = os.environ.get("VMM", "vigil")
VIGIL = os.environ.get("VIGIL", "build/vigil")
GUEST = os.environ.get("LAB_GUEST", "build/guest")
BZIMAGE, VMLINUX = f"{GUEST}/vmlinuz", f"{GUEST}/vmlinux"
INITRD = f"{GUEST}/initramfs.cpio.gz"
BOOT_TIMEOUT = float(os.environ.get("LAB_BOOT_TIMEOUT", "180"))
LOGDIR = os.path.join(os.environ.get("LAB_RESULTS", "build/lab"), "logs")
BASE_CMDLINE = "console=ttyS0 quiet"

# VMM exit status expected for each way a VM ends. vigil's are its documented
# codes; QEMU's are what QEMU does with -no-reboot -action panic=exit-failure
# (recorded, so that VMM=qemu validates the lab itself).
EXPECT = {
    "vigil": {"poweroff": 0, "reboot": 2, "panic": 4},
    "qemu": {"poweroff": 0, "reboot": 0, "panic": 1},
}[VMM]


def vmm_argv(kernel, mem, cpus, cmdline, stats=False):
    """The VMM command line for one boot."""
    if VMM == "vigil":
        argv = [VIGIL, "run", "--kernel", kernel, "--initrd", INITRD,
                "--mem", mem, "--cpus", str(cpus), "--cmdline", cmdline]
        return argv + (["--stats"] if stats else [])
    # microvm with an RTC (else rtc_cmos polls ~3 s); pvpanic (ISA, found via
    # ACPI QEMU0001) makes a guest panic end QEMU with status 1. reboot=t: in
    # the lab, microvm's ACPI reset is asynchronous, the kernel falls through
    # to its real-mode BIOS reboot, nested KVM fails to emulate it and QEMU
    # hangs paused ("KVM internal error"); a triple fault ends QEMU reliably.
    return ["qemu-system-x86_64", "-M", "microvm,rtc=on", "-enable-kvm",
            "-cpu", "host", "-m", mem, "-smp", str(cpus), "-nographic",
            "-no-reboot", "-kernel", kernel, "-initrd", INITRD,
            "-append", cmdline + " reboot=t", "-device", "pvpanic",
            "-action", "panic=exit-failure"]


def parse_stats(text):
    """From vigil's --stats output (stderr), return (COM1 count, denied count),
    None where not found. Format (src/core/monitor.c), one block per vCPU:
        vcpu0 port 0x3f8 com1: 1234 [denied=N]
        vcpu0 denied: 5 of 6789 accesses
        total denied: 5
    COM1 is summed over vCPUs; denied is the total (else summed per vCPU)."""
    com1 = [int(n) for n in re.findall(r"\b0x0*3f8\b[^:\n]*:\s*(\d+)", text, re.I)]
    total = re.search(r"total denied:\s*(\d+)", text)
    per_cpu = [int(n) for n in re.findall(r"^\S+ denied:\s*(\d+)", text, re.M)]
    denied = int(total.group(1)) if total else (sum(per_cpu) if per_cpu else None)
    return (sum(com1) if com1 else None), denied


class Results:
    """Collects and prints one line per scenario, only for the wanted ones."""

    def __init__(self, wanted):
        self.wanted, self.done = wanted, {}

    def report(self, name, verdict, reason=""):
        if name in self.done or (self.wanted and name not in self.wanted):
            return
        self.done[name] = verdict
        print(f"{verdict} {name}" + (f": {reason}" if reason else ""), flush=True)

    def check(self, name, ok, reason):
        self.report(name, "PASS" if ok else "FAIL", "" if ok else reason)

    def fail_rest(self, names, reason):
        """Fail the not yet reported scenarios of a failed boot: the first
        gets the full reason, the others point to it."""
        first = None
        for n in names:
            if n not in self.done and (not self.wanted or n in self.wanted):
                self.report(n, "FAIL", reason if first is None else f"its boot failed, see {first}")
                first = first or n

    def summary(self):
        v = list(self.done.values())
        s = f"lab: {v.count('PASS')} passed, {v.count('FAIL')} failed"
        if v.count("SKIP"):
            s += f", {v.count('SKIP')} skipped"
        print(s, flush=True)
        return 1 if "FAIL" in v else 0


def boot(r, name, scenarios, kernel, mem, cpus, body, extra="", stats=False):
    """One VM run: start, wait for the prompt, run body(guest) (which checks
    and returns the end command and scenario name for the exit status check).
    A driver error fails every scenario of this boot not yet reported."""
    argv = vmm_argv(kernel, mem, cpus, f"{BASE_CMDLINE} {extra}".strip(), stats)
    os.makedirs(LOGDIR, exist_ok=True)
    try:
        g = Guest(argv, os.path.join(LOGDIR, f"{VMM}-{name}.log"))
    except DriverError as e:
        return r.fail_rest(scenarios, str(e))
    try:
        g.wait_ready(BOOT_TIMEOUT)
        end, how, exit_name = body(g)
        rc = g.finish(end)
        r.check(exit_name, rc == EXPECT[how], f"VMM exit status {rc}, want {EXPECT[how]} ({how})")
        return g.err
    except DriverError as e:
        r.fail_rest(scenarios, str(e))
    finally:
        g.close()


def check_mem(r, name, g, mem_mib):
    st, out = g.run("grep MemTotal /proc/meminfo")
    m = re.search(r"MemTotal:\s+(\d+) kB", out)
    kb, want = (int(m.group(1)) if m else 0), mem_mib * 1024
    r.check(name, 0.9 * want <= kb <= want, f"MemTotal {kb} kB, want {0.9 * want:.0f}..{want} kB")


def check_cpus(r, name, g, n):
    st, out = g.run("nproc; cat /sys/devices/system/cpu/online")
    want = f"{n}\n" + ("0" if n == 1 else f"0-{n - 1}") + "\n"
    r.check(name, out == want, f"nproc/online said {out!r}, want {want!r}")


def boot_main(r):
    """2 cpus, 1G, cmdline token, stdin echo, clock, poweroff."""
    token = f"token{random.randrange(10**6)}"
    hello = f"hello-{random.randrange(10**9)}"

    def body(g):
        check_cpus(r, "cpus-2", g, 2)
        check_mem(r, "mem-1G", g, 1024)
        st, out = g.run("cat /proc/cmdline")
        r.check("cmdline", f"vigil.test={token}" in out.split(), f"/proc/cmdline is {out.strip()!r}")
        st, out = g.run(f"echo {hello}")
        r.check("stdin-echo", out == hello + "\n", f"got {out!r}")
        st, out = g.run("date +%s")
        host = time.time()
        guest = int(out) if out.strip().isdigit() else 0
        r.check("clock", abs(guest - host) <= 60, f"guest {guest} vs host {host:.0f}")
        return "poweroff -f", "poweroff", "exit-poweroff"

    names = ["cpus-2", "mem-1G", "cmdline", "stdin-echo", "clock", "exit-poweroff"]
    boot(r, "main", names, BZIMAGE, "1G", 2, body, extra=f"vigil.test={token}")


def boot_stats(r):
    """1 cpu, 2G, --stats, reboot."""
    def body(g):
        check_cpus(r, "cpus-1", g, 1)
        check_mem(r, "mem-2G", g, 2048)
        return "reboot -f", "reboot", "exit-reboot"

    if VMM != "vigil":
        r.report("stats", "SKIP", f"{VMM} has no --stats")
    names = ["cpus-1", "mem-2G", "exit-reboot", "stats"]
    err = boot(r, "stats", names, BZIMAGE, "2G", 1, body, stats=VMM == "vigil")
    if err is not None and VMM == "vigil":
        com1, denied = parse_stats(err)
        r.check("stats", bool(com1) and bool(denied),
                f"0x3f8 count {com1}, denied count {denied} in {err[-300:]!r}")


def boot_pvh(r):
    """The ELF vmlinux (PVH entry) reaches the prompt."""
    def body(g):
        st, out = g.run("uname -r")
        r.check("pvh-boot", st == 0 and out.strip() != "", f"uname -r gave {out!r}")
        return "poweroff -f", "poweroff", "pvh-poweroff"

    boot(r, "pvh", ["pvh-boot", "pvh-poweroff"], VMLINUX, "512M", 1, body)


def boot_panic(r):
    """16 vCPUs come up; then a guest panic is reported through pvpanic."""
    def body(g):
        check_cpus(r, "cpus-16", g, 16)
        return "echo c > /proc/sysrq-trigger", "panic", "exit-panic"

    boot(r, "panic", ["cpus-16", "exit-panic"], BZIMAGE, "1G", 16, body)


BOOTS = {  # boot -> scenarios it reports
    boot_main: ["cpus-2", "mem-1G", "cmdline", "stdin-echo", "clock", "exit-poweroff"],
    boot_stats: ["cpus-1", "mem-2G", "exit-reboot", "stats"],
    boot_pvh: ["pvh-boot", "pvh-poweroff"],
    boot_panic: ["cpus-16", "exit-panic"],
}


def main():
    wanted = set(sys.argv[1:])
    known = {n for names in BOOTS.values() for n in names}
    if wanted - known:
        sys.exit(f"unknown scenario(s) {sorted(wanted - known)}; known: {sorted(known)}")
    r = Results(wanted)
    if VMM == "vigil" and not os.access(VIGIL, os.X_OK):
        for names in BOOTS.values():
            r.fail_rest(names, f"{VIGIL} not built")
        return r.summary()
    host = os.environ.get("LAB_RESULTS_HOST")  # the host's view of LAB_RESULTS
    shown = os.path.join(host, "logs") if host else LOGDIR
    print(f"lab: VMM={VMM} guest={GUEST} logs in {shown}", flush=True)
    for fn, names in BOOTS.items():
        if not wanted or wanted & set(names):
            t = time.monotonic()
            fn(r)
            print(f"  ({fn.__name__}: {time.monotonic() - t:.1f}s)", flush=True)
    return r.summary()


if __name__ == "__main__":
    sys.exit(main())
