#!/usr/bin/python3
"""Lab scenarios for snapshots (imported by lab/devices.py, which runs them
in the same L1 boot): Debian's kernel (256 MiB, 1 vCPU) booted by one vigil
with --api-sock, paused (PATCH /vm), saved (PUT /snapshot/create, Full),
that vigil killed (SIGKILL), and a NEW vigil (`vigil run --api-sock S`,
nothing else configured) loading it (PUT /snapshot/load, resume_vm true,
mem_backend File). The guest never reboots: its shell, its background
loops and its files go on.

  snapshot-restore    the guest counts on its console ("CNT n END" every
                      0.2 s) and appends numbered records to a file on an
                      ext4 virtio-blk disk, syncing after each ("REC n OK").
                      The old and the new vigil's console together count
                      1, 2, 3... with no gap, no repeat, no restart (no
                      second banner), and the new one goes past the last
                      number before the snapshot; the records go on too.
                      After `sync; umount` and `poweroff -f` (exit 0), the
                      image is clean for `e2fsck -fn` and its file holds
                      records 1..K in order, K past the snapshot's.
  snapshot-vsock-net  --net user (a policy rule provides one L1 port on
                      10.0.2.2) and --vsock; before the snapshot the guest
                      fetches a page over the user-mode network and a host
                      connection (Firecracker's UDS: "CONNECT 5000\\n",
                      "OK ...") to the guest's one-at-a-time echo listener
                      is echoed and held open. Restored with vsock_override
                      (a new uds_path): the held connection is gone, in the
                      guest too (within 45 s of the load the listener's read
                      fails with the transport reset's ECONNRESET: "echoed
                      -1 bytes"), a NEW host connection is echoed by the same
                      listener (it could not be while the old one lived), a
                      guest-to-host connection reaches an echo server on the
                      new UDS_6000, the guest fetches the page again
                      through 10.0.2.2, and a file in the guest's /tmp from
                      before the snapshot is still there.
  snapshot-policy     a policy denying guest-to-host vsock port 6100 and
                      tcp to 10.0.2.2:PD (an L1 server listens there) and
                      providing 10.0.2.2:PA; the guest tries both denied
                      ones every second ("TRY n vsock=... net=... END").
                      After the restore (the new vigil has --audit on the
                      same file): the tries go on (numbering unbroken) and
                      are still denied, PA still answers, GET /vigil/stats
                      shows each deny rule's hits going on from the
                      snapshot's count (not from 0), and the audit log gets
                      new deny records from the restored VM.
A scenario whose lab prerequisites are missing (e2fsprogs in L1, the
guest's vsock tool) is SKIPped with the reason.
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

from apiclient import Api
from driver import DriverError, Guest
import scenarios as S

VIGIL = os.environ.get("VIGIL", "build/vigil")
MEM = "256M"
MIB = 1 << 20
GUEST_NET = "ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && ip route add default via 10.0.2.2"
API_TIMEOUT = 300  # a 256 MiB memory file written under emulation
CNT = r"CNT (\d+) END"
REC = r"REC (\d+) OK"
TRY = r"TRY (\d+) vsock=(\w+) net=(\w+) END"


def _devices():
    # Imported when a boot runs: devices.py (the __main__ that imports this
    # file) is loaded again under its own name only after this module is.
    import devices
    return devices


def nums(pattern, text):
    return [int(m.group(1)) for m in re.finditer(pattern, text.replace("\r", ""))]


def consecutive_from_1(ns):
    return bool(ns) and ns == list(range(1, len(ns) + 1))


def wait_until(g, pred, timeout, what):
    """Until pred(g.out) holds; DriverError on timeout or if vigil exits."""
    deadline = time.monotonic() + timeout
    with g.cv:
        while not pred(g.out):
            left = deadline - time.monotonic()
            if g.proc.poll() is not None:
                raise DriverError(f"vigil exited ({g.proc.returncode}) while waiting for {what}; "
                                  f"last output {g.out[-300:]!r}; stderr {g.err[-300:]!r}")
            if left <= 0:
                raise DriverError(f"waited {timeout}s for {what}; last output {g.out[-300:]!r}")
            g.cv.wait(min(left, 0.5))


def last(pattern, text):
    ns = nums(pattern, text)
    return ns[-1] if ns else 0


def wait_count(g, pattern, n, timeout, what):
    wait_until(g, lambda out: last(pattern, out) >= n, timeout, f"{what} >= {n}")


def start(name, argv):
    os.makedirs(S.LOGDIR, exist_ok=True)
    return Guest(argv, os.path.join(S.LOGDIR, f"vigil-snap-{name}.log"))


def kill_hard(g):
    """SIGKILL: nothing of the old process may be needed by the restore."""
    if g.proc.poll() is None:
        g.note("SIGKILL (the snapshot is taken; the old vigil goes)")
        g.proc.send_signal(signal.SIGKILL)
        try:
            g.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
    g.close()


def pause(api):
    st, body = api.patch("/vm", {"state": "Paused"})
    if st != 204:
        raise DriverError(f"PATCH /vm Paused: HTTP {st} {body}")
    time.sleep(1.5)  # what the guest wrote before the pause reaches us


def take_snapshot(g, api, work, tag, paused=False):
    """Pause (unless paused), let the console drain, Full snapshot. Returns
    (state, mem, figures); raises DriverError if a call fails (every
    scenario of the boot needs the snapshot)."""
    state, mem = os.path.join(work, f"{tag}.state"), os.path.join(work, f"{tag}.mem")
    if not paused:
        pause(api)
    g.note("paused; PUT /snapshot/create")
    t = time.monotonic()
    st, body = api.put("/snapshot/create", {"snapshot_type": "Full", "snapshot_path": state,
                                            "mem_file_path": mem})
    secs = time.monotonic() - t
    if st != 204:
        raise DriverError(f"PUT /snapshot/create: HTTP {st} {body}")
    info = {"create_s": secs, "state_bytes": os.path.getsize(state),
            "mem_bytes": os.path.getsize(mem), "mem_alloc": os.stat(mem).st_blocks * 512}
    g.note(f"snapshot: {info}")
    return state, mem, info


def restore(name, work, state, mem, extra_args=(), body_extra=None):
    """A new vigil with only an API socket loads the snapshot and resumes.
    Returns (guest, api, info); raises DriverError if the load fails."""
    sock = os.path.join(work, f"{name}.sock")
    g = start(name, [VIGIL, "run", "--api-sock", sock, "--stats", *extra_args])
    try:
        api = Api(sock, timeout=API_TIMEOUT)
        api.wait(60)
        body = {"snapshot_path": state, "mem_backend": {"backend_type": "File", "backend_path": mem},
                "resume_vm": True}
        body.update(body_extra or {})
        g.note(f"PUT /snapshot/load {body}")
        t = time.monotonic()
        st, resp = api.put("/snapshot/load", body)
        secs = time.monotonic() - t
        if st != 204:
            raise DriverError(f"PUT /snapshot/load: HTTP {st} {resp}; stderr {g.err[-400:]!r}")
        _, stats = api.get("/vigil/stats")
        snap = (stats or {}).get("snapshot", {}) if isinstance(stats, dict) else {}
        _, inst = api.get("/")
        info = {"load_s": secs, "load_us": snap.get("last_load_us"),
                "first_entry_us": snap.get("load_to_first_entry_us"),
                "state": inst.get("state") if isinstance(inst, dict) else inst}
        g.note(f"loaded: {info}")
        return g, api, info
    except (DriverError, OSError, ValueError) as e:
        g.note("vigil's threads: " + g.threads())
        g.close()
        raise DriverError(str(e)) from e


def stats_of(api):
    st, s = api.get("/vigil/stats")
    return s if st == 200 and isinstance(s, dict) else {}


def rule_hits(stats, rule):
    for r in stats.get("policy", {}).get("rules", []):
        if r.get("id") == rule:
            return r.get("hits", -1)
    return -1


def guest_has(g, tool):
    st, _ = g.run(f"command -v {tool} >/dev/null")
    return st == 0


def read_audit(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        return [{"unreadable": repr(e)}]


# --- snapshot-restore: a counter and a disk writer across a restore ----------------
def boot_snap_restore(r, work):
    names = BOOTS[boot_snap_restore]
    missing = [t for t in ("mkfs.ext4", "e2fsck", "debugfs") if not shutil.which(t)]
    if missing:
        for n in names:
            r.report(n, "SKIP", f"L1 lacks {missing} (e2fsprogs)")
        return
    img = os.path.join(work, "data.ext4")
    with open(img, "wb") as f:
        f.truncate(64 * MIB)
    p = subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", img],
                       capture_output=True, text=True)
    if p.returncode:
        return r.fail_rest(names, f"mkfs.ext4: {p.stderr.strip()}")
    D = _devices()
    sock = os.path.join(work, "a.sock")
    argv = D.vigil_argv(["--api-sock", sock, "--disk", f"path={img},id=data"], mem=MEM)
    seen = {}
    try:
        g = start("restore-a", argv)
    except DriverError as e:
        return r.fail_rest(names, str(e))
    try:
        g.wait_ready(S.BOOT_TIMEOUT)
        st, out = g.run("mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo mounted", 60)
        if "mounted" not in out:
            raise DriverError(f"cannot mount the ext4 disk in the guest: {out!r}")
        g.run("(i=0; while :; do i=$((i+1)); echo \"CNT $i END\"; sleep 0.2; done) & echo $! > /tmp/cnt.pid;"
              " (j=0; while :; do j=$((j+1)); echo \"rec $j\" >> /mnt/log && sync && echo \"REC $j OK\";"
              " sleep 0.3; done) & echo $! > /tmp/rec.pid", 60)
        wait_count(g, CNT, 30, 300, "the counter")
        wait_count(g, REC, 5, 300, "the disk records")
        api = Api(sock, timeout=API_TIMEOUT)
        state, mem, seen["snap"] = take_snapshot(g, api, work, "restore")
    except (DriverError, OSError, ValueError) as e:
        g.note("vigil's threads: " + g.threads())
        g.close()
        return r.fail_rest(names, str(e))
    kill_hard(g)
    before = g.out
    c_snap, r_snap = last(CNT, before), last(REC, before)

    try:
        g2, api2, seen["load"] = restore("restore-b", work, state, mem)
    except DriverError as e:
        return r.fail_rest(names, f"snapshot taken at CNT {c_snap} REC {r_snap}; {e}")
    try:
        wait_count(g2, CNT, c_snap + 15, 300, "the counter after the restore")
        wait_count(g2, REC, r_snap + 5, 300, "the disk records after the restore")
        # End the writers, then a clean unmount: the image must be whole.
        g2.run("kill $(cat /tmp/rec.pid) $(cat /tmp/cnt.pid); sleep 1", 60)
        # What the guest kernel said of its disk and of the jump in time.
        _, seen["dmesg"] = g2.run("dmesg | grep -iE 'EXT4-fs (error|warning)|I/O error|blk_update_request|"
                                  "soft lockup|rcu.*stall|Call Trace' | tail -8; echo dmesg-done", 60)
        st, out = g2.run("sync; umount /mnt; echo umount=$?", 120)
        seen["umount"] = out
        after = g2.out
        seen["rc"] = g2.finish("poweroff -f", 120)
    except DriverError as e:
        return r.fail_rest(names, f"restored at CNT {c_snap} REC {r_snap} ({seen.get('load')}); {e}")
    finally:
        g2.close()

    cnt = nums(CNT, before + after)
    recs_seen = nums(REC, before + after)
    new_cnt = nums(CNT, after)
    rebooted = "vigil guest: ready" in after
    fsck = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
    dbg = subprocess.run(["debugfs", "-R", "cat /log", img], capture_output=True, text=True)
    lines = dbg.stdout.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    k = len(lines)
    want = [f"rec {i}" for i in range(1, k + 1)]
    # The line the guest was writing at the pause may end in the new
    # vigil's output (its tail still in the guest kernel's serial buffer):
    # the new output's first whole number is then c_snap + 2.
    disk_errors = [l for l in seen["dmesg"].split("\n") if re.search(r"EXT4-fs|I/O error|blk_update", l)]
    ok = (not disk_errors and consecutive_from_1(cnt) and new_cnt and new_cnt[0] <= c_snap + 2 and new_cnt[-1] > c_snap + 10
          and consecutive_from_1(recs_seen) and not rebooted and "umount=0" in seen["umount"]
          and seen["rc"] == 0 and fsck.returncode == 0 and lines == want and k >= last(REC, after) > r_snap)
    gaps = [(a, b) for a, b in zip(cnt, cnt[1:]) if b != a + 1][:5]
    r.check("snapshot-restore", ok,
            f"guest disk errors {disk_errors}; snapshot at CNT {c_snap} REC {r_snap}; console counts {cnt[:2]}..{cnt[-3:]} "
            f"({len(cnt)}, breaks {gaps}); the new vigil's first/last {new_cnt[:1]}/{new_cnt[-1:]}; "
            f"REC seen consecutive {consecutive_from_1(recs_seen)} up to {recs_seen[-1:]}; "
            f"second banner {rebooted}; umount {seen['umount'].strip()[-80:]!r}; exit {seen['rc']}; "
            f"e2fsck -fn {fsck.returncode}: {(fsck.stdout + fsck.stderr).strip()[-300:]!r}; "
            f"file: {k} lines, in order {lines == want}, first {lines[:2]} last {lines[-2:]} "
            f"{dbg.stderr.strip()[-120:]!r}")
    print(f"  (snapshot-restore: at CNT {c_snap}/REC {r_snap}; {seen['snap']}; {seen['load']};"
          f" {k} records on disk; guest kernel warnings since boot {seen['dmesg'].replace('dmesg-done', '').strip()!r})",
          flush=True)


# --- snapshot-vsock-net: vsock reset and reconnect, user-mode net again ------------
def vsock_open(uds, port, timeout=30):
    """A connection through vigil's UDS to guest port: (socket, 'OK ...' line)
    or (None, what came instead)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(uds)
        s.sendall(f"CONNECT {port}\n".encode())
        ok = b""
        while not ok.endswith(b"\n"):
            b = s.recv(1)
            if not b:
                break
            ok += b
    except OSError as e:
        s.close()
        return None, f"<{e!r}>"
    if not ok.startswith(b"OK "):
        s.close()
        return None, ok.decode("latin-1")
    return s, ok.decode("latin-1").strip()


def vsock_echo(s, line):
    """What comes back for line (short on EOF, an error or a timeout)."""
    got = b""
    try:
        s.sendall(line)
        while len(got) < len(line):
            b = s.recv(4096)
            if not b:
                break
            got += b
    except OSError:
        pass
    return got


def gone(s, timeout=20):
    """What a held connection gives now: 'EOF' or the error; 'open' if
    nothing comes within timeout."""
    s.settimeout(timeout)
    try:
        b = s.recv(4096)
        return "EOF" if not b else f"data {b!r}"
    except socket.timeout:
        return "open"
    except OSError as e:
        return f"{type(e).__name__}"


def boot_snap_vsock_net(r, work):
    D = _devices()
    names = BOOTS[boot_snap_vsock_net]
    www = os.path.join(work, "www")
    os.makedirs(www, exist_ok=True)
    token = f"vigil-snapnet-{random.randrange(10**12)}"
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write(token + "\n")
    port = D.free_port()
    http = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", www,
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pol = os.path.join(work, "policy.json")
    with open(pol, "w") as f:
        json.dump({"rules": [{"id": "l1-web", "resource": "net", "direction": "egress", "proto": "tcp",
                              "dst": "10.0.2.2", "ports": [port], "verdict": "provide"}]}, f)
    uds1, uds2 = os.path.join(work, "v1.sock"), os.path.join(work, "v2.sock")
    echo = D.EchoServer(f"{uds2}_6000")
    sock = os.path.join(work, "a.sock")
    argv = D.vigil_argv(["--api-sock", sock, "--net", "user", "--vsock", f"cid=3,uds={uds1}", "--policy", pol],
                        mem=MEM)
    mark = f"vigil-mark-{random.randrange(10**12)}"
    get = f"timeout 60 wget -q -O- http://10.0.2.2:{port}/ 2>&1; echo rc=$?"
    seen = {}
    held = None
    try:
        try:
            g = start("vsock-net-a", argv)
        except DriverError as e:
            return r.fail_rest(names, str(e))
        try:
            g.wait_ready(S.BOOT_TIMEOUT)
            if not guest_has(g, "vsock"):
                g.close()
                for n in names:
                    r.report(n, "SKIP", "the guest initramfs has no vsock tool (guest/tools/vsock.c)")
                return
            seen["ipconf"] = g.run(GUEST_NET)
            seen["wget_before"] = g.run(get, 120)[1]
            g.run(f"echo {mark} > /tmp/mark;"
                  " (while :; do vsock listen 5000; sleep 1; done) 2>/tmp/vl.log & sleep 2", 60)
            held, ok = vsock_open(uds1, 5000)
            seen["held_ok"] = ok
            line = f"vigil-before-{random.randrange(10**12)}\n".encode()
            seen["held_echo"] = (vsock_echo(held, line) == line) if held else False
            seen["log_before"] = g.run("cat /tmp/vl.log")[1]
            api = Api(sock, timeout=API_TIMEOUT)
            state, mem, seen["snap"] = take_snapshot(g, api, work, "vsock-net")
        except (DriverError, OSError, ValueError) as e:
            g.note("vigil's threads: " + g.threads())
            g.close()
            return r.fail_rest(names, str(e))
        kill_hard(g)
        # The held connection once its vigil is gone.
        seen["held_after_kill"] = gone(held, 10) if held else "never opened"
        try:
            g2, api2, seen["load"] = restore("vsock-net-b", work, state, mem,
                                             body_extra={"vsock_override": {"uds_path": uds2},
                                                         "network_overrides": []})
        except DriverError as e:
            return r.fail_rest(names, str(e))
        try:
            seen["mark"] = g2.run("cat /tmp/mark", 120)[1].strip()
            # The guest side of the held connection ends with the transport
            # reset: the listener logs it and goes back to accept().
            deadline = time.monotonic() + 45
            while True:
                _, log = g2.run("cat /tmp/vl.log", 60)
                if "echoed" in log or time.monotonic() > deadline:
                    break
                time.sleep(2)
            seen["log_reset"] = log
            new, ok = None, ""
            line = f"vigil-after-{random.randrange(10**12)}\n".encode()
            for _ in range(10):  # the listener may be restarting
                new, ok = vsock_open(uds2, 5000)
                if new:
                    break
                time.sleep(3)
            seen["new_ok"] = ok
            seen["new_echo"] = vsock_echo(new, line) == line if new else False
            if new:
                new.close()
            g2_tok = f"vigil-g2h-{random.randrange(10**12)}"
            seen["g2h"] = g2.run(f"echo {g2_tok} | vsock connect 2 6000", 60) + (g2_tok,)
            seen["wget_after"] = g2.run(get, 120)[1]
            seen["log_after"] = g2.run("cat /tmp/vl.log")[1]
            seen["rc"] = g2.finish("poweroff -f", 120)
        except DriverError as e:
            return r.fail_rest(names, f"after the restore ({seen.get('load')}): {e}")
        finally:
            g2.close()
    finally:
        if held:
            held.close()
        http.terminate()
        http.wait()
        echo.close()

    rebooted = "vigil guest: ready" in g2.out
    vs_ok = (seen["held_ok"].startswith("OK ") and seen["held_echo"] and "echoed" not in seen["log_before"]
             and seen["held_after_kill"] != "open" and "echoed -1 bytes" in seen["log_reset"]
             and seen["new_ok"].startswith("OK ") and seen["new_echo"])
    gst, gout, gtok = seen["g2h"]
    g2h_ok = gst == 0 and gout.strip().endswith(gtok) and (gtok + "\n").encode() in echo.got
    net_ok = ("rc=0" in seen["wget_before"] and token in seen["wget_before"]
              and "rc=0" in seen["wget_after"] and token in seen["wget_after"])
    r.check("snapshot-vsock-net", vs_ok and g2h_ok and net_ok and seen["mark"] == mark and not rebooted
            and seen["rc"] == 0,
            f"held connection: {seen['held_ok']!r}, echoed {seen['held_echo']}, after the kill "
            f"{seen['held_after_kill']}; guest listener log before {seen['log_before'].strip()!r}, after "
            f"the restore {seen['log_reset'].strip()!r} (want 'echoed -1 bytes': the transport reset's ECONNRESET ended it); new "
            f"connection {seen['new_ok']!r}, echoed {seen['new_echo']}; guest-to-host 6000: exit {gst} "
            f"{gout.strip()[-120:]!r}, server got {echo.got!r}; wget before {seen['wget_before'].strip()[-120:]!r},"
            f" after {seen['wget_after'].strip()[-120:]!r}; /tmp/mark {seen['mark']!r} (want {mark!r}); "
            f"second banner {rebooted}; exit {seen['rc']}")
    print(f"  (snapshot-vsock-net: {seen['snap']}; {seen['load']}; guest log after "
          f"{seen['log_after'].strip()!r})", flush=True)


# --- snapshot-policy: a denial holds across the restore ----------------------------
def boot_snap_policy(r, work):
    D = _devices()
    names = BOOTS[boot_snap_policy]
    pa, pd = D.free_port(), D.free_port()
    tok = {k: f"vigil-snappol-{k}-{random.randrange(10**12)}" for k in ("a", "d")}
    servers = []
    for k, p in (("a", pa), ("d", pd)):
        d = os.path.join(work, k)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write(tok[k] + "\n")
        servers.append(subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                         "--directory", d, str(p)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    pol, audit = os.path.join(work, "policy.json"), os.path.join(work, "audit.jsonl")
    with open(pol, "w") as f:
        json.dump({"mode": "enforce", "rules": [
            {"id": "web", "resource": "net", "direction": "egress", "proto": "tcp", "dst": "10.0.2.2",
             "ports": [pa], "verdict": "provide"},
            {"id": "deny-net", "resource": "net", "direction": "egress", "proto": "tcp", "dst": "10.0.2.2",
             "ports": [pd], "verdict": "deny"},
            {"id": "deny-vsock", "resource": "vsock", "direction": "guest-to-host", "ports": "6100",
             "verdict": "deny"},
        ]}, f)
    uds1, uds2 = os.path.join(work, "v1.sock"), os.path.join(work, "v2.sock")
    # Someone listens behind the denied vsock port on both sides: a refusal
    # is the policy's, not an absent server's.
    echoes = [D.EchoServer(f"{u}_6100") for u in (uds1, uds2)]
    sock = os.path.join(work, "a.sock")
    argv = D.vigil_argv(["--api-sock", sock, "--net", "user", "--vsock", f"cid=3,uds={uds1}", "--policy", pol,
                         "--audit", audit], mem=MEM)
    get = "timeout 60 wget -q -O- http://10.0.2.2:{}/ 2>&1; echo rc=$?"
    seen = {}
    try:
        try:
            g = start("policy-a", argv)
        except DriverError as e:
            return r.fail_rest(names, str(e))
        try:
            g.wait_ready(S.BOOT_TIMEOUT)
            if not guest_has(g, "vsock"):
                g.close()
                for n in names:
                    r.report(n, "SKIP", "the guest initramfs has no vsock tool (guest/tools/vsock.c)")
                return
            seen["ipconf"] = g.run(GUEST_NET)
            seen["web_before"] = g.run(get.format(pa), 120)[1]
            g.run("(n=0; while :; do n=$((n+1));"
                  " if echo x | vsock connect 2 6100 >/dev/null 2>&1; then v=open; else v=denied; fi;"
                  f" if timeout 20 wget -q -O- http://10.0.2.2:{pd}/ >/dev/null 2>&1; then w=open; else w=denied; fi;"
                  " echo \"TRY $n vsock=$v net=$w END\"; sleep 1; done) & true", 60)
            wait_count(g, TRY, 4, 300, "the guest's tries")
            api = Api(sock, timeout=API_TIMEOUT)
            # Paused first: these counts are the snapshot's.
            pause(api)
            s1 = stats_of(api)
            seen["hits_snap"] = {k: rule_hits(s1, k) for k in ("deny-vsock", "deny-net")}
            state, mem, seen["snap"] = take_snapshot(g, api, work, "policy", paused=True)
        except (DriverError, OSError, ValueError) as e:
            g.note("vigil's threads: " + g.threads())
            g.close()
            return r.fail_rest(names, str(e))
        kill_hard(g)
        # The old vigil can append no more: what follows is the restored VM's.
        seen["audit_snap"] = len(read_audit(audit))
        before = g.out
        t_snap = last(TRY, before)
        try:
            g2, api2, seen["load"] = restore("policy-b", work, state, mem, extra_args=("--audit", audit),
                                             body_extra={"vsock_override": {"uds_path": uds2}})
        except DriverError as e:
            return r.fail_rest(names, f"snapshot at TRY {t_snap}; {e}")
        try:
            s_first = stats_of(api2)
            seen["hits_load"] = {k: rule_hits(s_first, k) for k in ("deny-vsock", "deny-net")}
            wait_count(g2, TRY, t_snap + 4, 300, "the guest's tries after the restore")
            s2 = stats_of(api2)
            seen["hits_after"] = {k: rule_hits(s2, k) for k in ("deny-vsock", "deny-net")}
            seen["rules_after"] = [x.get("id") for x in s2.get("policy", {}).get("rules", [])]
            seen["web_after"] = g2.run(get.format(pa), 120)[1]
            after = g2.out
            seen["rc"] = g2.finish("poweroff -f", 120)
        except DriverError as e:
            return r.fail_rest(names, f"after the restore at TRY {t_snap} ({seen.get('load')}): {e}")
        finally:
            g2.close()
    finally:
        for s in servers:
            s.terminate()
            s.wait()
        for e in echoes:
            e.close()

    tries = [(int(m.group(1)), m.group(2), m.group(3))
             for m in re.finditer(TRY, (before + after).replace("\r", ""))]
    new = [t for t in tries if t[0] > t_snap]
    numbers = [t[0] for t in tries]
    all_denied = all(v == "denied" and w == "denied" for _, v, w in tries)
    hs, hl, ha = seen["hits_snap"], seen["hits_load"], seen["hits_after"]
    hits_ok = all(hs[k] > 0 and hl[k] >= hs[k] and ha[k] >= hs[k] + 2 for k in hs)
    recs = read_audit(audit)
    new_recs = recs[seen["audit_snap"]:]
    new_deny = {k: sum(x.get("count", 1) for x in new_recs if x.get("rule") == k and x.get("verdict") == "deny")
                for k in hs}
    audit_ok = all(new_deny[k] >= 2 for k in hs)
    rebooted = "vigil guest: ready" in after
    web_ok = tok["a"] in seen["web_before"] and tok["a"] in seen["web_after"] and "rc=0" in seen["web_after"]
    r.check("snapshot-policy",
            consecutive_from_1(numbers) and len(new) >= 3 and all_denied and hits_ok and audit_ok and web_ok
            and not any(e.got for e in echoes) and not rebooted and seen["rc"] == 0,
            f"snapshot at TRY {t_snap}; tries {numbers[:2]}..{numbers[-3:]} consecutive "
            f"{consecutive_from_1(numbers)}, {len(new)} after the restore, all denied {all_denied} "
            f"(last {tries[-2:]}); hits at the snapshot {hs}, right after the load {hl}, later {ha} "
            f"(want the snapshot's count carried on, then growing); rules after {seen['rules_after']}; "
            f"new audit deny records {new_deny} ({len(new_recs)} records, e.g. {new_recs[:2]}); "
            f"provided port before {seen['web_before'].strip()[-80:]!r} after {seen['web_after'].strip()[-80:]!r}; "
            f"vsock 6100 servers got {[e.got for e in echoes]}; second banner {rebooted}; exit {seen['rc']}")
    print(f"  (snapshot-policy: hits {hs} -> {hl} -> {ha}; {seen['snap']}; {seen['load']})", flush=True)


BOOTS = {
    boot_snap_restore: ["snapshot-restore"],
    boot_snap_vsock_net: ["snapshot-vsock-net"],
    boot_snap_policy: ["snapshot-policy"],
}
