#!/usr/bin/env python3
"""Snapshot figures on this host's own KVM, vigil beside QEMU in one run, with
the snapcount tiny guest (tests/guests/tiny.S: counts forever, printing
"c=XXXX ok" lines), 1 vCPU:

  1. restore latency, 256 MiB and 2 GiB guests, a new process each time:
     (a) PUT /snapshot/load sent -> its 204 (resume_vm true), client side;
     (b) load received -> vCPU 0's thread about to KVM_RUN (GET /vigil/stats
         snapshot.load_to_first_entry_us, vigil's own clock), and load sent
         -> first console byte seen in the console file (client side);
     (c) the cold path: exec -> API socket accepting -> 204.
     QEMU: the same guest code (a PVH ELF, bench/qemu_pvh.S, as QEMU cannot
     enter the tiny bzImage) saved stopped with QMP `migrate` to
     "exec:cat > FILE" (QEMU 7.2 has no file: URI), restored with -incoming
     defer + migrate-incoming "exec:cat FILE" + cont (a stopped save comes
     back stopped): sent -> RESUME event, exec -> RESUME, first console byte.
     Also the host's floor: KVM_CREATE_VM + one memory slot, no VMM.
  2. snapshot create time and file sizes (apparent, allocated), Full and then
     Diff after ~0.5 s more (booted with track_dirty_pages); QEMU's migrate to
     a file of the same guest.
  3. N (100) clones of one 256 MiB snapshot, each its own vigil, API socket
     and vigil_clone.instance_id, resumed, then paused once it has printed
     (so N spinning guests leave the 2 cores alone): summed VmRSS and PSS,
     and the Rss/Pss of their guest RAM mappings, against N x the memory
     file's allocated bytes; loads per second. Once per run; killed after.

Restores go in rounds (each size, each VMM in turn, the order reversed every
other round) so that a shared host's load falls on all figures alike. Medians of RUNS (default 5) with min-max.
Prints one table and which goals were met, and writes the figures as JSON
(BUILD_DIR/bench/snapshot.json). A benchmark, never a test: it fails only
when it cannot measure.
    bench/snapshot.py [BUILD_DIR] [--runs N] [--clones N] [--json FILE] [--no-qemu]
    make bench-snapshot     (builds vigil, the guest and its PVH twin first)
"""
import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from api_unix import call  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default="build")
ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", "5")))
ap.add_argument("--clones", type=int, default=int(os.environ.get("CLONES", "100")))
ap.add_argument("--json", default=None)
ap.add_argument("--no-qemu", action="store_true")
ARGS = ap.parse_args()
B = ARGS.build
V = os.path.abspath(os.path.join(B, "vigil"))
GUEST = os.path.abspath(os.path.join(B, "tests/guests/tiny-snapcount.bin"))
QGUEST = os.path.abspath(os.path.join(B, "bench/tiny-snapcount-pvh.elf"))
QEMU = shutil.which("qemu-system-x86_64")
# -cpu host without arch-capabilities: on kvm_pvm QEMU cannot set MSR 0x10a.
QEMU_ARGS = ["-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-smp", "1",
             "-display", "none", "-monitor", "none", "-no-reboot", "-kernel", QGUEST]
SIZES = (256, 2048)
SETTLE = 0.3  # s between restores: the last VMM's exit (its memory freed) off the next one's clock
T = tempfile.mkdtemp(prefix="vigil-snapbench-")
procs = []


class Fail(Exception):
    pass


def now():
    return time.perf_counter()


def ms(t):
    return t * 1e3


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt(s, unit="ms", prec=2):
    if not s:
        return "-"
    if s["n"] == 1:
        return f"{s['median']:.{prec}f} {unit}"
    return f"{s['median']:.{prec}f} {unit} ({s['min']:.{prec}f}-{s['max']:.{prec}f})"


def sizes(path):
    st = os.stat(path)
    return st.st_size, st.st_blocks * 512


def mib(n):
    return f"{n / 1048576:.1f} MiB" if n >= 1048576 else f"{n / 1024:.0f} KiB"


def kill(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_connect(path, timeout=10):
    """Polls until a Unix socket accepts a connection; returns the time it did."""
    end = now() + timeout
    while now() < end:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return now()
        except OSError:
            time.sleep(0.0002)
        finally:
            s.close()
    raise Fail(f"{path}: never accepted a connection")


class FirstByte(threading.Thread):
    """Watches a console file from before a request until it holds a byte."""

    def __init__(self, path, timeout=10):
        super().__init__(daemon=True)
        self.path, self.timeout, self.at = path, timeout, None
        self.start()

    def run(self):
        end = now() + self.timeout
        while now() < end:
            try:
                if os.stat(self.path).st_size > 0:
                    self.at = now()
                    return
            except OSError:
                pass
            time.sleep(0.0001)

    def result(self):
        self.join()
        return self.at


def console_has(path, text, timeout=20):
    end = now() + timeout
    while now() < end:
        try:
            if text in open(path, "rb").read().decode("latin-1"):
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


# ---- vigil -------------------------------------------------------------------

def vigil_spawn(name):
    sock, con = os.path.join(T, name + ".sock"), os.path.join(T, name + ".con")
    for f in (sock, con):
        if os.path.exists(f):
            os.unlink(f)
    err = open(os.path.join(T, name + ".err"), "w")
    t0 = now()
    p = subprocess.Popen([V, "run", "--api-sock", sock, "--console", "file:" + con],
                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    procs.append(p)
    return p, sock, con, t0


def errtext(name):
    try:
        return open(os.path.join(T, name + ".err")).read()[-400:].strip()
    except OSError:
        return ""


def must(res, what, name=None):
    st, _, body = res
    if st not in (200, 204):
        raise Fail(f"{what}: {st} {body} {errtext(name) if name else ''}")
    return body


def vigil_snapshots(mem_mib):
    """Boots the guest, pauses it, writes a Full snapshot, runs ~0.5 s more,
    writes a Diff. Returns the figures and the Full snapshot's files."""
    name = f"v{mem_mib}"
    p, sock, con, _ = vigil_spawn(name)
    wait_connect(sock)
    must(call(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": mem_mib, "track_dirty_pages": True}),
         "machine-config", name)
    must(call(sock, "PUT", "/boot-source", {"kernel_image_path": GUEST}), "boot-source", name)
    must(call(sock, "PUT", "/actions", {"action_type": "InstanceStart"}), "InstanceStart", name)
    if not console_has(con, "c=0008 ok"):
        raise Fail(f"vigil {mem_mib} MiB: the guest does not count: {errtext(name)}")
    must(call(sock, "PATCH", "/vm", {"state": "Paused"}), "pause", name)
    out = {}
    files = {}
    for kind in ("Full", "Diff"):
        if kind == "Diff":
            must(call(sock, "PATCH", "/vm", {"state": "Resumed"}), "resume", name)
            time.sleep(0.5)
            must(call(sock, "PATCH", "/vm", {"state": "Paused"}), "pause", name)
        state, mem = os.path.join(T, f"{name}-{kind}.state"), os.path.join(T, f"{name}-{kind}.mem")
        t0 = now()
        must(call(sock, "PUT", "/snapshot/create", {"snapshot_type": kind, "snapshot_path": state,
                                                   "mem_file_path": mem}, timeout=120), f"create {kind}", name)
        dt = ms(now() - t0)
        server = call(sock, "GET", "/vigil/stats")[2].get("snapshot", {}).get("last_create_us")
        ma, mb = sizes(mem)
        sa, sb = sizes(state)
        out[kind] = {"create_ms": dt, "server_create_ms": server / 1e3 if server else None,
                     "mem_apparent": ma, "mem_allocated": mb, "state_apparent": sa, "state_allocated": sb}
        files[kind] = (state, mem)
    kill(p)
    return out, files["Full"]


def vigil_restore(state, mem, name, extra=None, first_byte=True):
    """One restore in a new process: exec, socket ready, PUT load, 204."""
    p, sock, con, t_exec = vigil_spawn(name)
    t_ready = wait_connect(sock)
    watch = FirstByte(con) if first_byte else None
    body = {"snapshot_path": state, "mem_backend": {"backend_type": "File", "backend_path": mem}, "resume_vm": True}
    body.update(extra or {})
    t_send = now()
    res = call(sock, "PUT", "/snapshot/load", body, timeout=60)
    t_done = now()
    must(res, "snapshot/load", name)
    r = {"p": p, "sock": sock, "con": con, "exec_to_ready_ms": ms(t_ready - t_exec),
         "load_ms": ms(t_done - t_send), "exec_to_204_ms": ms(t_done - t_exec)}
    if watch:
        at = watch.result()
        r["load_to_console_ms"] = ms(at - t_send) if at else None
        snap = call(sock, "GET", "/vigil/stats")[2].get("snapshot", {})
        r["server_load_ms"] = snap["last_load_us"] / 1e3 if snap.get("last_load_us") else None
        fe = snap.get("load_to_first_entry_us")
        r["load_to_first_entry_ms"] = fe / 1e3 if fe else None
    return r


VIGIL_KEYS = ("load_ms", "load_to_first_entry_ms", "load_to_console_ms", "exec_to_ready_ms", "exec_to_204_ms",
              "server_load_ms", "rss_kib", "pss_kib")


def vigil_restore_once(state, mem, mem_mib, i):
    r = vigil_restore(state, mem, f"r{mem_mib}-{i}")
    try:
        if not console_has(r["con"], " ok\n", 10):
            raise Fail(f"vigil restore {mem_mib} MiB: the restored guest does not count")
        r["rss_kib"], r["pss_kib"] = rss_pss(r["p"].pid)
    finally:
        kill(r["p"])
    return {k: r.get(k) for k in VIGIL_KEYS}


def rss_pss(pid):
    rss = pss = None
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def mapping_rss_pss(pid, path):
    """Rss and Pss (KiB) of a process's mappings of one file (its guest RAM
    when that is the memory file): the pages it shares with the clones."""
    rss = pss = 0
    inside = False
    try:
        for line in open(f"/proc/{pid}/smaps"):
            f = line.split()
            if not f:
                continue
            if "-" in f[0] and not f[0].endswith(":"):
                inside = len(f) >= 6 and f[5] == path
            elif inside and f[0] == "Rss:":
                rss += int(f[1])
            elif inside and f[0] == "Pss:":
                pss += int(f[1])
    except OSError:
        return None, None
    return rss, pss


def kvm_floor(mib_, mem):
    """What this host's KVM takes for the least a restore must do: a VM and
    one memory slot over the memory file mapped MAP_PRIVATE, as vigil maps
    it (ms), without any VMM."""
    import ctypes
    import fcntl
    import mmap
    import struct
    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    fd = os.open(mem, os.O_RDONLY | os.O_CLOEXEC)
    try:
        t0 = now()
        vm = fcntl.ioctl(kvm, 0xAE01, 0)  # KVM_CREATE_VM
        m = mmap.mmap(fd, mib_ << 20, flags=mmap.MAP_PRIVATE | 0x4000,  # MAP_NORESERVE
                      prot=mmap.PROT_READ | mmap.PROT_WRITE)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
        fcntl.ioctl(vm, 0x4020AE46, struct.pack("=IIQQQ", 0, 0, 0, mib_ << 20, addr))  # KVM_SET_USER_MEMORY_REGION
        dt = ms(now() - t0)
        os.close(vm)
        return dt
    finally:
        os.close(fd)
        os.close(kvm)


def vigil_clones(state, mem, n):
    """n clones of one snapshot, each resumed, then paused once it has printed
    (so n spinning guests do not take the machine's 2 cores)."""
    clones, loads = [], []
    t0 = now()
    try:
        for i in range(n):
            r = vigil_restore(state, mem, f"clone{i}", {"vigil_clone": {"instance_id": f"clone-{i}"}},
                              first_byte=False)
            loads.append(r["exec_to_204_ms"])
            clones.append(r)
            console_has(r["con"], "c=", 5)
            must(call(r["sock"], "PATCH", "/vm", {"state": "Paused"}), "pause clone")
        wall = now() - t0
        ran = sum(1 for r in clones if os.path.exists(r["con"]) and os.stat(r["con"]).st_size > 0)
        ids = call(clones[-1]["sock"], "GET", "/")[2].get("id")
        rss = pss = grss = gpss = 0
        have_pss = True
        real = os.path.realpath(mem)
        for r in clones:
            a, b = rss_pss(r["p"].pid)
            rss += a or 0
            if b is None:
                have_pss = False
            pss += b or 0
            a, b = mapping_rss_pss(r["p"].pid, real)
            grss += a or 0
            gpss += b or 0
    finally:
        for r in clones:
            kill(r["p"])
    touched = sizes(mem)[1]
    return {"n": n, "wall_s": wall, "rate_per_s": n / wall, "exec_to_204_ms": stats(loads), "ran": ran,
            "last_id": ids, "rss_kib": rss, "pss_kib": pss if have_pss else None,
            "guest_ram_rss_kib": grss, "guest_ram_pss_kib": gpss,
            "touched_bytes": touched, "n_times_touched_kib": n * touched // 1024}


# ---- QEMU --------------------------------------------------------------------

class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        self.events = []
        self.read()  # greeting
        self.cmd("qmp_capabilities")

    def read(self):
        line = self.f.readline()
        if not line:
            raise Fail("QMP: connection closed")
        m = json.loads(line)
        if "event" in m:
            self.events.append((now(), m))
        return m

    def send(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")

    def cmd(self, name, **args):
        self.send(name, **args)
        while True:
            m = self.read()
            if "return" in m:
                return m["return"]
            if "error" in m:
                raise Fail(f"QMP {name}: {m['error']}")

    def wait_event(self, ev, timeout=60):
        end = now() + timeout
        for at, m in self.events:
            if m["event"] == ev:
                return at
        self.s.settimeout(timeout)
        while now() < end:
            m = self.read()
            if m.get("event") == ev:
                return self.events[-1][0]
        raise Fail(f"QMP: no {ev} event")

    def wait_migration(self, timeout=60):
        """The time of the MIGRATION event that says completed."""
        end = now() + timeout
        seen = 0
        while now() < end:
            for at, m in self.events[seen:]:
                st = m.get("data", {}).get("status") if m["event"] == "MIGRATION" else None
                if st == "completed":
                    return at
                if st in ("failed", "cancelled"):
                    raise Fail(f"QMP: migration {st}")
            seen = len(self.events)
            self.s.settimeout(timeout)
            self.read()
        raise Fail("QMP: the migration never completed")

    def close(self):
        self.s.close()


def qemu_spawn(name, mem_mib, incoming=False):
    qmp, con = os.path.join(T, name + ".qmp"), os.path.join(T, name + ".con")
    for f in (qmp, con):
        if os.path.exists(f):
            os.unlink(f)
    err = open(os.path.join(T, name + ".err"), "w")
    argv = [QEMU] + QEMU_ARGS + ["-m", str(mem_mib), "-serial", "file:" + con,
                                 "-qmp", f"unix:{qmp},server=on,wait=off"]
    if incoming:
        argv += ["-incoming", "defer"]
    t0 = now()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    procs.append(p)
    return p, qmp, con, t0


def qemu_save(mem_mib):
    name = f"q{mem_mib}"
    p, qmp, con, _ = qemu_spawn(name, mem_mib)
    try:
        wait_connect(qmp)
        q = Qmp(qmp)
        if not console_has(con, "c=0008 ok"):
            raise Fail(f"QEMU {mem_mib} MiB: the guest does not count: {errtext(name)}")
        q.cmd("stop")
        path = os.path.join(T, f"{name}.mig")
        t0 = now()
        q.cmd("migrate", uri=f"exec:cat > {path}")
        while True:
            info = q.cmd("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.0005)
        dt = ms(now() - t0)
        if info["status"] != "completed":
            raise Fail(f"QEMU migrate: {info}")
        a, b = sizes(path)
        q.close()
        return {"create_ms": dt, "server_create_ms": info.get("total-time"), "mem_apparent": a,
                "mem_allocated": b}, path
    finally:
        kill(p)


QEMU_KEYS = ("load_ms", "incoming_ms", "load_to_console_ms", "exec_to_ready_ms", "exec_to_204_ms", "rss_kib",
             "pss_kib")


def qemu_restore_once(path, mem_mib, i):
    name = f"qr{mem_mib}-{i}"
    p, qmp, con, t_exec = qemu_spawn(name, mem_mib, incoming=True)
    try:
        t_ready = wait_connect(qmp)
        q = Qmp(qmp)
        q.cmd("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])
        watch = FirstByte(con)
        t_send = now()
        q.cmd("migrate-incoming", uri=f"exec:cat {path}")
        # The guest was saved stopped, so QEMU restores it stopped (as
        # vigil with resume_vm false): cont at once, as resume_vm true.
        t_in = q.wait_migration()
        q.cmd("cont")
        t_run = q.wait_event("RESUME")
        at = watch.result()
        if not console_has(con, " ok\n", 10):
            raise Fail(f"QEMU restore {mem_mib} MiB: the restored guest does not count")
        rss, pss = rss_pss(p.pid)
        q.close()
        return {"exec_to_ready_ms": ms(t_ready - t_exec), "load_ms": ms(t_run - t_send),
                "incoming_ms": ms(t_in - t_send), "exec_to_204_ms": ms(t_run - t_exec),
                "load_to_console_ms": ms(at - t_send) if at else None, "rss_kib": rss, "pss_kib": pss}
    finally:
        kill(p)


def qemu_usable():
    if ARGS.no_qemu:
        return "skipped (--no-qemu)"
    if not QEMU:
        return "qemu-system-x86_64 not installed"
    if not os.path.exists(QGUEST):
        return f"{QGUEST} missing (make bench-snapshot builds it)"
    return None


# ---- the table ---------------------------------------------------------------

def host():
    kvm = "kvm_pvm" if os.path.exists("/sys/module/kvm_pvm") else (
        "kvm_intel" if os.path.exists("/sys/module/kvm_intel") else (
            "kvm_amd" if os.path.exists("/sys/module/kvm_amd") else "?"))
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}, {os.cpu_count()} CPUs ({cpu}), {kvm}, Linux {platform.release()}"


def row(label, v, q, note=""):
    print(f"  {label:46}{v:>28}  {q:>30}  {note}")


def main():
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "host": host(), "runs": ARGS.runs,
           "loadavg_before": os.getloadavg()[0], "vigil": {}, "qemu": {}, "goals": []}
    for f in (V, GUEST):
        if not os.path.exists(f):
            raise Fail(f"{f} missing: make all guests")
    qwhy = qemu_usable()
    vwhy = None
    snaps = {}
    qsnaps = {}
    for mib_ in SIZES:
        print(f"vigil {mib_} MiB: boot, Full and Diff snapshots ...", file=sys.stderr, flush=True)
        try:
            cr, snaps[mib_] = vigil_snapshots(mib_)
            res["vigil"][f"{mib_}"] = {"create": cr}
        except (Fail, OSError) as e:
            vwhy = vwhy or f"failed: {e}"
        if not qwhy:
            print(f"QEMU {mib_} MiB: boot, migrate to a file ...", file=sys.stderr, flush=True)
            try:
                qc, qsnaps[mib_] = qemu_save(mib_)
                res["qemu"][f"{mib_}"] = {"create": qc}
            except (Fail, OSError) as e:
                qwhy = f"failed: {e}"
    # Each round restores every size with each VMM in turn, so that what
    # else this shared host does falls on all the figures alike.
    vrows = {m: [] for m in SIZES}
    qrows = {m: [] for m in SIZES}
    floor = {m: [] for m in SIZES}
    for i in range(ARGS.runs):
        print(f"restores, round {i + 1} of {ARGS.runs} ...", file=sys.stderr, flush=True)
        order = [(vmm, m) for m in SIZES for vmm in ("vigil", "qemu")]
        if i % 2:
            order.reverse()  # no VMM or size always right after another
        for vmm, mib_ in order:
            time.sleep(SETTLE)
            if vmm == "vigil" and mib_ in snaps and not vwhy:
                try:
                    vrows[mib_].append(vigil_restore_once(*snaps[mib_], mib_, i))
                    floor[mib_].append(kvm_floor(mib_, snaps[mib_][1]))
                except (Fail, OSError) as e:
                    vwhy = f"failed: {e}"
            if vmm == "qemu" and mib_ in qsnaps and not qwhy:
                try:
                    qrows[mib_].append(qemu_restore_once(qsnaps[mib_], mib_, i))
                except (Fail, OSError) as e:
                    qwhy = f"failed: {e}"
    for mib_ in SIZES:
        if vrows[mib_]:
            res["vigil"][f"{mib_}"]["restore"] = {k: stats([r[k] for r in vrows[mib_]]) for k in VIGIL_KEYS}
            res["vigil"][f"{mib_}"]["kvm_floor_ms"] = stats(floor[mib_])
        if qrows[mib_]:
            res["qemu"][f"{mib_}"]["restore"] = {k: stats([r[k] for r in qrows[mib_]]) for k in QEMU_KEYS}
    if ARGS.clones and 256 in snaps and not vwhy:
        print(f"vigil: {ARGS.clones} clones of the 256 MiB snapshot ...", file=sys.stderr, flush=True)
        res["vigil"]["clones"] = vigil_clones(*snaps[256], ARGS.clones)
    res["loadavg_after"] = os.getloadavg()[0]
    res["qemu_status"] = qwhy or "ran"
    res["vigil_status"] = vwhy or "ran"
    if vwhy and qwhy:
        raise Fail(f"vigil {vwhy}; QEMU {qwhy}")

    print("\nsnapshots, vigil beside QEMU")
    if vwhy:
        print(f"vigil: {vwhy}")
    if qwhy:
        print(f"QEMU: {qwhy}")
    print(f"host: {res['host']}; {res['date']}; load average {res['loadavg_before']:.2f} before, "
          f"{res['loadavg_after']:.2f} after (other jobs on the host slow every figure)")
    print(f"snapcount tiny guest, 1 vCPU; medians of {ARGS.runs} (min-max), each restore a new process")
    print("vigil: PUT /snapshot/load, File backend (memory file mapped MAP_PRIVATE), resume_vm true.")
    print("QEMU %s: microvm, the same guest code as a PVH ELF; saved stopped with migrate to"
          % (subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
             .replace("QEMU emulator version ", "") if QEMU else "-"))
    print("  'exec:cat > FILE' (this QEMU has no file: URI), restored with -incoming defer, migrate-incoming")
    print("  'exec:cat FILE', then cont (a stopped save restores stopped): its (a) ends at the RESUME event.")
    row("", "vigil", "QEMU", "comparable?")
    for mib_ in SIZES:
        v = res["vigil"].get(f"{mib_}", {})
        q = res["qemu"].get(f"{mib_}", {})
        vr, qr = v.get("restore", {}), q.get("restore", {})
        print(f" restore, {mib_} MiB guest")
        row("(a) load sent -> answered/running", fmt(vr.get("load_ms")), fmt(qr.get("load_ms")),
            "yes: 204 (vCPUs running) vs RESUME")
        row("    QEMU: migrate-incoming sent -> completed", "-", fmt(qr.get("incoming_ms")), "QEMU only (before cont)")
        row("(b) load received -> vCPU 0 at KVM_RUN", fmt(vr.get("load_to_first_entry_ms")), "-",
            "vigil only (its clock)")
        row("(b) load sent -> first console byte", fmt(vr.get("load_to_console_ms")), fmt(qr.get("load_to_console_ms")),
            "yes, roughly: hangs on where the guest stopped")
        row("    exec -> API/QMP socket accepting", fmt(vr.get("exec_to_ready_ms")), fmt(qr.get("exec_to_ready_ms")),
            "yes")
        row("(c) exec -> restored and running", fmt(vr.get("exec_to_204_ms")), fmt(qr.get("exec_to_204_ms")), "yes")
        row("    host floor: KVM_CREATE_VM + a memory slot", fmt(v.get("kvm_floor_ms")), "",
            "no VMM: KVM alone, the file mapped as vigil does")
        row("    RSS of a restored VMM", fmt(vr.get("rss_kib"), "KiB", 0), fmt(qr.get("rss_kib"), "KiB", 0),
            "yes (QEMU reads RAM into its own)")
        print(f" snapshot, {mib_} MiB guest (paused)")
        for kind in ("Full", "Diff"):
            c = v.get("create", {}).get(kind)
            qc = q.get("create") if kind == "Full" else None
            if not c and not qc:
                continue
            c = c or {"create_ms": None, "mem_apparent": None, "mem_allocated": None, "state_apparent": None}
            row(f"{kind}: create time (client)", f"{c['create_ms']:.2f} ms" if c["create_ms"] is not None else "-",
                f"{qc['create_ms']:.2f} ms" if qc else "-", "migrate to exec:cat" if qc else
                ("Diff after 0.5 s more" if kind == "Diff" else ""))
            row(f"{kind}: memory file apparent / allocated",
                f"{mib(c['mem_apparent'])} / {mib(c['mem_allocated'])}" if c["mem_apparent"] is not None else "-",
                f"{mib(qc['mem_apparent'])} / {mib(qc['mem_allocated'])}" if qc else "-",
                "QEMU: one stream, zero pages as flags" if qc else "")
            if c["state_apparent"] is not None:
                row(f"{kind}: state file apparent", mib(c["state_apparent"]), "-", "")
    c = res["vigil"].get("clones")
    if c:
        print(f" {c['n']} clones of the 256 MiB snapshot (vigil; each resumed, then paused once it printed)")
        row("summed VmRSS", mib(c["rss_kib"] * 1024), "", "")
        row("summed PSS (shared pages split)", mib(c["pss_kib"] * 1024) if c["pss_kib"] is not None else "-", "", "")
        row(f"{c['n']} x touched memory (file's allocated)", mib(c["n_times_touched_kib"] * 1024), "", "")
        row("guest RAM mappings: summed Rss / Pss", f"{mib(c['guest_ram_rss_kib'] * 1024)} / "
            f"{mib(c['guest_ram_pss_kib'] * 1024)}", "", "the memory file's pages, shared")
        row("load rate (one after another, wall)", f"{c['rate_per_s']:.1f} clones/s", "",
            "each: exec, load, print, pause")
        row("exec -> 204 per clone", fmt(c["exec_to_204_ms"]), "", "")
        row("clones that printed after the restore", f"{c['ran']} of {c['n']}", "", "")

    v256s = res["vigil"].get("256", {}).get("restore", {}).get("load_ms")
    v256 = v256s["median"] if v256s else None
    if v256 is None:
        res["goals"].append("restore 256 MiB (a) <= 5 ms: not measured")
    else:
        res["goals"].append(f"restore 256 MiB (a): {v256:.2f} ms <= 5 ms: {'met' if v256 <= 5 else 'NOT met'}")
    q256 = res["qemu"].get("256", {}).get("restore", {}).get("load_ms")
    if q256 and v256 is not None:
        res["goals"].append(f"restore 256 MiB faster than QEMU's migrate-incoming: {v256:.2f} vs "
                            f"{q256['median']:.2f} ms: {'met' if v256 < q256['median'] else 'NOT met'}")
    if c:
        g, t = c["guest_ram_pss_kib"], c["n_times_touched_kib"]
        res["goals"].append(f"{c['n']} clones share the memory file's pages: their guest RAM's summed PSS "
                            f"{mib(g * 1024)} < {c['n']} x touched {mib(t * 1024)}: {'met' if g < t else 'NOT met'}")
        res["goals"].append(f"{c['n']} clones' whole processes: summed VmRSS {mib(c['rss_kib'] * 1024)}, PSS "
                            f"{mib((c['pss_kib'] or 0) * 1024)} (the VMM's own pages; the tiny guest touches "
                            f"{mib(c['touched_bytes'])})")
    print("goals:")
    for g in res["goals"]:
        print("  " + g)
    out = ARGS.json or os.path.join(B, "bench", "snapshot.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"(figures as JSON: {out})")


if __name__ == "__main__":
    rc = 0
    try:
        main()
    except Fail as e:
        print(f"bench/snapshot: cannot measure: {e}", file=sys.stderr)
        rc = 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(T, ignore_errors=True)
    sys.exit(rc)
