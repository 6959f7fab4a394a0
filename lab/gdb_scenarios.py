#!/usr/bin/python3
"""Lab scenarios for the gdb stub (imported by lab/devices.py, which runs
them in the same L1 boot): Debian's kernel under vigil --gdb, Debian's gdb in
L1 attached to the running kernel: gdb-attach (threads, kernel registers and
memory), gdb-stepi (a single step of a busy vCPU), gdb-detach-runs-on (the
guest's clock goes on). Where the host delivers breakpoints to L1's KVM (not
the lab's TCG: see BREAKPOINTS), also: the guest reports a kernel function's
address from /proc/kallsyms (__x64_sys_sync, the sync system call's entry;
ksys_sync itself may be inlined into it), gdb sets a hardware breakpoint
there, the guest runs `sync`, the breakpoint is hit at exactly that address,
gdb detaches and the guest's prompt answers; the same with a software
breakpoint (an INT3 written into the kernel's text, gone after detach); a
hardware watchpoint on jiffies_64.
"""
import os
import re
import subprocess
import threading
import time

from driver import DriverError, Guest
import scenarios as S

VIGIL = os.environ.get("VIGIL", "build/vigil")
GDB = "/usr/bin/gdb"
# The lab's L1 runs on QEMU's TCG emulation of AMD-V, which delivers neither
# kind of breakpoint to L1's KVM: it loads DR7 from the VMCB on VMRUN without
# arming its breakpoints, and checks an INT3 only against the INTn
# intercept, never KVM's #BP exception intercept (so the guest gets its own
# INT3 and oopses). Single steps (TF) do reach KVM. On a host with real
# AMD-V or VT-x, LAB_GDB_BREAKPOINTS=1 runs the breakpoint scenarios.
BREAKPOINTS = os.environ.get("LAB_GDB_BREAKPOINTS") == "1"
NO_BREAKPOINTS = ("QEMU TCG's nested AMD-V (the lab's L1) arms no DR7 breakpoint for L2 and never raises the #BP "
                  "intercept: set LAB_GDB_BREAKPOINTS=1 on real hardware; hbreak is tested natively in tests/gdb.sh")
NAMES = ["gdb-attach", "gdb-hbreak-kernel", "gdb-detach-runs-on", "gdb-swbreak-kernel", "gdb-stepi",
         "gdb-watch-kernel"]


class Gdb:
    """gdb in batch mode on a script, its output collected as it comes."""

    def __init__(self, sock, cmds, log):
        script = "\n".join(["set architecture i386:x86-64", "set pagination off", "set confirm off",
                            f"target remote {sock}"] + cmds) + "\n"
        self.path = sock + ".gdb"
        with open(self.path, "w") as f:
            f.write(script)
        self.out = ""
        self.cv = threading.Condition()
        # Its own session: gdb's terminal signals never reach vigil.
        self.proc = subprocess.Popen([GDB, "-batch", "-nx", "-x", self.path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.log = log
        self.t = threading.Thread(target=self._pump, daemon=True)
        self.t.start()

    def _pump(self):
        for line in iter(self.proc.stdout.readline, b""):
            text = line.decode("latin-1")
            with self.cv:
                self.out += text
                self.cv.notify_all()
            self.log(f"gdb: {text.rstrip()}")

    def expect(self, regex, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not re.search(regex, self.out):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.t.is_alive()):
                    raise DriverError(f"gdb: waited {timeout}s for {regex!r}; its output: {self.out[-600:]!r}")
                self.cv.wait(min(left, 0.5))

    def finish(self, timeout):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(10)
        self.t.join(5)
        return rc


def ksym(g, name):
    """The address of kernel symbol `name` from the guest's /proc/kallsyms."""
    _, out = g.run(f"grep -m1 ' {name}$' /proc/kallsyms")
    m = re.search(r"^([0-9a-f]{16}) \w " + re.escape(name) + r"$", out, re.M)
    if not m or int(m.group(1), 16) == 0:
        raise DriverError(f"no address for {name} in /proc/kallsyms: {out!r}")
    return int(m.group(1), 16)


def breakpoint_session(r, g, sock, addr, kind, name, log):
    """gdb sets a breakpoint of `kind` ("hbreak" or "break") at addr, the
    guest runs sync, the stop is at addr, gdb detaches; then the guest answers."""
    gdb = Gdb(sock, [f"{kind} *0x{addr:x}", "echo GDB-CONTINUING\\n", "continue", "info registers rip",
                     "x/8xb $rip", "delete", "detach"], log)
    try:
        # (batch gdb prints no "Continuing.": its own marker instead)
        gdb.expect(r"GDB-CONTINUING", S.BOOT_TIMEOUT)
        time.sleep(5)  # gdb's vCont has reached vigil: the guest runs again
        rc_sync, _ = g.run("sync; echo SYNC-RC=$?", 600)
        # sync returns only after the stop and the detach, or when no
        # breakpoint fired: then gdb is still waiting, and a minute is plenty.
        rc = gdb.finish(60)
        stop = re.search(r"Breakpoint 1, 0x0*%x in" % addr, gdb.out)
        rip = re.search(r"^rip\s+0x0*%x\s" % addr, gdb.out, re.M)
        # A second sync: an INT3 left in the kernel's text would oops it now.
        _, alive = g.run("sync && echo alive-$((6*7))", 300)
        r.check(name, stop is not None and rip is not None and "detached" in gdb.out and rc == 0
                and rc_sync == 0 and "alive-42" in alive,
                f"gdb exit {rc}; stop {bool(stop)}; rip {bool(rip)}; sync rc {rc_sync}; after: {alive!r};"
                f" gdb: {gdb.out[-500:]!r}")
    finally:
        if gdb.proc.poll() is None:
            gdb.proc.kill()


def boot_gdb(r, work):
    """gdb-attach, gdb-hbreak-kernel, gdb-detach-runs-on, gdb-swbreak-kernel, gdb-stepi,
    gdb-watch-kernel"""
    sock = os.path.join(work, "gdb.sock")
    os.makedirs(S.LOGDIR, exist_ok=True)
    if not os.access(GDB, os.X_OK):
        r.fail_rest(NAMES, f"{GDB} missing (scripts/setup installs it)")
        return
    g = Guest([VIGIL, "run", "--kernel", S.BZIMAGE, "--initrd", S.INITRD, "--cmdline", "quiet", "--cpus", "2",
               "--mem", "512M", "--gdb", f"unix:{sock}", "--stats"], os.path.join(S.LOGDIR, "vigil-gdb.log"))
    try:
        g.wait_ready(S.BOOT_TIMEOUT)
        g.run("echo 0 > /proc/sys/kernel/kptr_restrict")
        addr = ksym(g, "__x64_sys_sync")
        jiffies = ksym(g, "jiffies_64")
        g.note(f"__x64_sys_sync at 0x{addr:x}, jiffies_64 at 0x{jiffies:x}")

        # gdb-attach: registers of both vCPUs (threads), kernel memory.
        gdb = Gdb(sock, ["info threads", "info registers rip cr3 efer", "x/4xb $rip", f"x/2xg 0x{addr:x}",
                         "detach"], g.note)
        rc = gdb.finish(300)
        threads = re.findall(r"Thread (\d+)", gdb.out)
        rip = re.search(r"^rip\s+0x(ffff[0-9a-f]{12})\s", gdb.out, re.M)
        mem = re.search(r"^0x%x.*:\s+0x[0-9a-f]{16}\s+0x[0-9a-f]{16}" % addr, gdb.out, re.M)
        r.check("gdb-attach", rc == 0 and len(set(threads)) >= 2 and rip and mem and "detached" in gdb.out,
                f"gdb exit {rc}; threads {sorted(set(threads))}; kernel rip {rip and rip.group(1)}; memory {bool(mem)};"
                f" gdb: {gdb.out[-500:]!r}")

        # gdb-stepi: vCPU 1 kept busy (a shell loop pinned to it: never halted), stepped once.
        g.run("(while :; do :; done) & taskset -p 2 $! >/dev/null; echo $! > /tmp/spin.pid")
        time.sleep(2)
        gdb = Gdb(sock, ["thread 2", "info registers rip", "stepi", "info registers rip", "detach"], g.note)
        rc = gdb.finish(300)
        rips = [int(x, 16) for x in re.findall(r"^rip\s+0x([0-9a-f]+)\s", gdb.out, re.M)]
        g.run("kill $(cat /tmp/spin.pid)")
        r.check("gdb-stepi", rc == 0 and len(rips) == 2 and rips[0] != rips[1] and "detached" in gdb.out,
                f"gdb exit {rc}; vCPU 1's rip before and after stepi: {[hex(x) for x in rips]}; gdb: {gdb.out[-400:]!r}")

        # gdb-detach-runs-on: the guest keeps running, its timers tick.
        _, t1 = g.run("cat /proc/uptime")
        time.sleep(3)
        _, t2 = g.run("cat /proc/uptime")
        up1 = float(t1.split()[0]) if t1.split() else 0
        up2 = float(t2.split()[0]) if t2.split() else 0
        r.check("gdb-detach-runs-on", up2 > up1 and g.proc.poll() is None, f"uptime {up1} then {up2}")

        if not BREAKPOINTS:
            for n in ("gdb-hbreak-kernel", "gdb-swbreak-kernel", "gdb-watch-kernel"):
                r.report(n, "SKIP", NO_BREAKPOINTS)
        else:
            breakpoint_session(r, g, sock, addr, "hbreak", "gdb-hbreak-kernel", g.note)
            gdb = Gdb(sock, [f"watch *(long *)0x{jiffies:x}", "continue", "delete", "detach"], g.note)
            rc = gdb.finish(600)
            hit = re.search(r"Hardware watchpoint 1: \*\(long \*\)0x%x\s+Old value = (-?\d+)\s+New value = (-?\d+)"
                            % jiffies, gdb.out)
            _, alive = g.run("echo alive-$((6*7))", 120)
            r.check("gdb-watch-kernel", rc == 0 and hit is not None and int(hit.group(2)) > int(hit.group(1))
                    and "alive-42" in alive,
                    f"gdb exit {rc}; hit {hit and hit.groups()}; after {alive!r}; gdb: {gdb.out[-500:]!r}")
            # last: where INT3 is not intercepted the guest oopses on it
            breakpoint_session(r, g, sock, addr, "break", "gdb-swbreak-kernel", g.note)
        g.finish("poweroff -f")
    except (DriverError, OSError, ValueError) as e:
        g.note("vigil's threads: " + g.threads())
        r.fail_rest(NAMES, str(e))
    finally:
        g.close()


BOOTS = {
    boot_gdb: NAMES,
}
