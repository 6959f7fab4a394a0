#!/usr/bin/env python3
"""Snapshots on this host's KVM with the snapcount tiny guest, which counts in
memory, r12 and r13 and prints "c=XXXX ok" each turn: Firecracker's calls as
its docs write them (pause, PUT /snapshot/create, a new process, PUT
/snapshot/load), the count going on from where it stopped, Diff after Full
(merged with `vigil snapshot-editor edit-memory rebase`), 20 clones of one
snapshot, the policy and the counters across a restore, the config file's
snapshot-load, vigil ctl, the Uffd backend with the example page server, and
every kind of bad snapshot input. Usage: tests/snapshot.py BUILD_DIR.
Prints "snapshot: N passed, N failed"."""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_unix import call  # noqa: E402

B = sys.argv[1] if len(sys.argv) > 1 else "build"
V = os.path.abspath(os.path.join(B, "vigil"))
GUEST = os.path.abspath(os.path.join(B, "tests/guests/tiny-snapcount.bin"))
# The page server is a separate program: a sanitizer build of vigil uses
# the plain one when it has none of its own.
PAGESERVER = next((os.path.abspath(os.path.join(d, "vigil-uffd-pageserver")) for d in (B, "build")
                   if os.path.exists(os.path.join(d, "vigil-uffd-pageserver"))),
                  os.path.abspath(os.path.join(B, "vigil-uffd-pageserver")))
T = tempfile.mkdtemp(prefix="vigil-snap-")
LINE = re.compile(r"^c=([0-9a-f]{4}) (ok|BAD)$")
passed = failed = 0
procs = []


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("PASS", name)
    else:
        failed += 1
        print("FAIL %s: %s" % (name, detail))
    return ok


def spawn(name, args=(), env=None):
    """A vigil with an API socket and its console in a file; returns (proc, sock, console)."""
    sock = os.path.join(T, name + ".sock")
    con = os.path.join(T, name + ".con")
    err = open(os.path.join(T, name + ".err"), "w")
    p = subprocess.Popen([V, "run", "--api-sock", sock, "--console", "file:" + con] + list(args),
                         stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env)
    procs.append(p)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.02)
    return p, sock, con


def errtext(name):
    try:
        return open(os.path.join(T, name + ".err")).read()[-600:]
    except OSError:
        return ""


def console(path):
    try:
        return open(path, "rb").read().decode("latin-1")
    except OSError:
        return ""


def counts(text):
    """The numbers of the complete count lines, and whether all said ok."""
    nums, ok = [], True
    for line in text.split("\n")[:-1]:
        m = LINE.match(line)
        if m:
            nums.append(int(m.group(1), 16))
            ok = ok and m.group(2) == "ok"
    return nums, ok


def wait_count(con, n, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        nums, _ = counts(console(con))
        if nums and nums[-1] >= n:
            return True
        time.sleep(0.05)
    return False


def settle(con):
    """The console's text once it stops growing (the writer thread caught up)."""
    last = None
    for _ in range(40):
        t = console(con)
        if t == last:
            return t
        last = t
        time.sleep(0.05)
    return last


def consecutive(nums):
    return bool(nums) and all(b == a + 1 for a, b in zip(nums, nums[1:]))


def put(sock, path, body):
    return call(sock, "PUT", path, body)


def boot(name, policy=None, dirty=True):
    p, sock, con = spawn(name)
    put(sock, "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64, "track_dirty_pages": dirty})
    put(sock, "/boot-source", {"kernel_image_path": GUEST})
    # A read-only disk on io_uring: its device state goes through the
    # snapshot, and every clone may open it (a writable one is locked).
    img = os.path.join(T, "ro.img")
    if not os.path.exists(img):
        open(img, "wb").truncate(1 << 20)
    put(sock, "/drives/ro", {"drive_id": "ro", "path_on_host": img, "is_root_device": False, "is_read_only": True,
                             "io_engine": "Async"})
    if policy:
        put(sock, "/policy", policy)
    st, _, b = put(sock, "/actions", {"action_type": "InstanceStart"})
    return p, sock, con, st


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def load(name, state, mem, resume=True, extra=None, backend="File"):
    p, sock, con = spawn(name)
    body = {"snapshot_path": state, "mem_backend": {"backend_type": backend, "backend_path": mem},
            "resume_vm": resume}
    body.update(extra or {})
    st, _, b = put(sock, "/snapshot/load", body)
    return p, sock, con, st, b


def blocks(path):
    return os.stat(path).st_blocks * 512


POLICY = {"mode": "enforce", "rules": [
    {"id": "lsr", "resource": "pio", "ports": "0x3fd", "access": "read", "verdict": "redirect", "value": "0x60"}]}


def policy_hits(sock):
    st, _, s = call(sock, "GET", "/vigil/stats")
    if st != 200 or not isinstance(s, dict):
        return -1
    for r in s.get("policy", {}).get("rules", []):
        if r.get("id") == "lsr":
            return r.get("hits", -1)
    return -1


def exits(sock):
    st, _, s = call(sock, "GET", "/vigil/stats")
    return s.get("totals", {}).get("exits", -1) if st == 200 and isinstance(s, dict) else -1


def sections(raw):
    """The state file's sections as [(header bytes, payload)] and the trailer (core/snap.h)."""
    out, off, end = [], 16, len(raw) - 16
    while off < end:
        start = off
        off += 4
        for _ in range(2):
            n = struct.unpack_from("<H", raw, off)[0]
            off += 2 + n
        plen = struct.unpack_from("<Q", raw, off + 4)[0]
        off += 12
        out.append((raw[start:off], raw[off:off + plen]))
        off += plen + 4
    return out


def rebuild(raw, edit):
    """The file again with edit(id, payload) -> payload applied, every CRC made right."""
    body = bytearray(raw[:16])
    secs = sections(raw)
    for hdr, payload in secs:
        n = struct.unpack_from("<H", hdr, 4)[0]
        sid = hdr[6:6 + n].decode()
        payload = edit(sid, payload)
        hdr = hdr[:-8] + struct.pack("<Q", len(payload))
        sect = hdr + payload
        body += sect + struct.pack("<I", zlib.crc32(sect) & 0xffffffff)
    body += b"VIGILEND" + struct.pack("<I", len(secs))
    return bytes(body + struct.pack("<I", zlib.crc32(bytes(body)) & 0xffffffff))


def huge_guest(sid, payload):
    """The "vigil" section claiming a guest of 1 TiB."""
    if sid != "vigil":
        return payload
    vlen = struct.unpack_from("<I", payload, 4)[0]
    at = 4 + 4 + vlen + 1 + 8 + 4
    return payload[:at] + struct.pack("<Q", 1 << 40) + payload[at + 8:]


def curl(sock, method, path, data, cwd):
    """curl as Firecracker's snapshot docs write it: (status, body)."""
    r = subprocess.run(["curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", "--unix-socket", sock, "-i", "-X",
                        method, "http://localhost" + path, "-H", "Accept: application/json", "-H",
                        "Content-Type: application/json", "-d", data], capture_output=True, text=True, cwd=cwd)
    out = r.stdout.rsplit("\n", 1)
    return (int(out[1]) if len(out) == 2 and out[1].isdigit() else 0), out[0]


def firecracker_docs_sequence():
    """Firecracker's docs/snapshotting/snapshot-support.md calls, relative paths and all, in a
    directory of their own; a TAP device in a network namespace for network_overrides."""
    d = os.path.join(T, "fc")
    os.makedirs(d)
    ns = "vigil-snap-%d" % os.getpid()
    have_ns = subprocess.run(["ip", "netns", "add", ns]).returncode == 0
    for tap in ("tap0", "tap1"):
        have_ns = have_ns and subprocess.run(["ip", "-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"]).returncode == 0
    try:
        wrap = ["ip", "netns", "exec", ns] if have_ns else []
        sock = os.path.join(d, "firecracker.socket")
        err = open(os.path.join(d, "err"), "w")
        a = subprocess.Popen(wrap + [V, "run", "--api-sock", sock, "--console", "file:" + os.path.join(d, "con")],
                             cwd=d, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        procs.append(a)
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.02)
        put(sock, "/boot-source", {"kernel_image_path": GUEST})
        put(sock, "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
        if have_ns:
            put(sock, "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0"})
        put(sock, "/vsock", {"guest_cid": 3, "uds_path": "./v.sock"})
        put(sock, "/actions", {"action_type": "InstanceStart"})
        wait_count(os.path.join(d, "con"), 3)
        st, _ = curl(sock, "PATCH", "/vm", '{"state": "Paused"}', d)
        st2, b = curl(sock, "PUT", "/snapshot/create",
                      '{"snapshot_type": "Full", "snapshot_path": "./snapshot_file", "mem_file_path": "./mem_file"}', d)
        check("Firecracker's docs: pause and snapshot/create with relative paths (curl)",
              st == 204 and st2 == 204 and os.path.exists(os.path.join(d, "snapshot_file")), "%s %s %s" % (st, st2, b))
        st, _ = curl(sock, "PATCH", "/vm", '{"state": "Resumed"}', d)
        check("Firecracker's docs: resume after the snapshot (curl)", st == 204, st)
        # The original keeps tap0 and v.sock: a clone needs its own.
        sock2 = os.path.join(d, "clone.socket")
        b_ = subprocess.Popen(wrap + [V, "run", "--api-sock", sock2, "--console", "file:" + os.path.join(d, "con2")],
                              cwd=d, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        procs.append(b_)
        for _ in range(200):
            if os.path.exists(sock2):
                break
            time.sleep(0.02)
        st, b = curl(sock2, "PUT", "/snapshot/load",
                     '{"snapshot_path": "./snapshot_file", "mem_file_path": "./mem_file", '
                     '"enable_diff_snapshots": false, "resume_vm": true}', d)
        check("a clone of a running VM without overrides cannot take its TAP device or vsock socket",
              st == 400 and ("tap0" in b or "v.sock" in b), "%s %s" % (st, b))
        print("  (refused: %s)" % b.strip().splitlines()[-1][:200])
        overrides = '"network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap1"}], ' if have_ns else ""
        st, b = curl(sock2, "PUT", "/snapshot/load",
                     '{"snapshot_path": "./snapshot_file", "mem_backend": {"backend_type": "File", "backend_path": '
                     '"./mem_file"}, %s"vsock_override": {"uds_path": "./v2.sock"}, "resume_vm": true}' % overrides, d)
        ok = st == 204 and wait_count(os.path.join(d, "con2"), 3)
        check("snapshot/load with network_overrides and vsock_override (curl): the clone runs beside its original",
              ok and os.path.exists(os.path.join(d, "v2.sock")), "%s %s %s" % (st, b, open(os.path.join(d, "err")).read()[-300:]))
        cfgv = call(sock2, "GET", "/vm/config")[2]
        nets = cfgv.get("network-interfaces") or []
        check("GET /vm/config shows the overrides", (not have_ns or nets[0].get("host_dev_name") == "tap1") and
              cfgv.get("vsock", {}).get("uds_path") == "./v2.sock", cfgv)
        for p in (a, b_):
            stop(p)
        if not have_ns:
            check("a network namespace with TAP devices for network_overrides", False, "ip netns add failed")
    finally:
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


def main():
    state, mem = os.path.join(T, "snap.state"), os.path.join(T, "snap.mem")
    # --- A: boot, pause, Full snapshot --------------------------------------
    a, sa, ca, st = boot("a", POLICY)
    check("the snapcount guest boots (InstanceStart 204)", st == 204, errtext("a"))
    check("it counts", wait_count(ca, 8), console(ca)[-200:])
    st, _, b = put(sa, "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": state, "mem_file_path": mem})
    check("snapshot/create while running: 400", st == 400 and "not paused" in str(b), "%s %s" % (st, b))
    st, _, b = call(sa, "PATCH", "/vm", {"state": "Paused"})
    check("PATCH /vm Paused: 204", st == 204, "%s %s" % (st, b))
    before = settle(ca)
    hits_a, exits_a = policy_hits(sa), exits(sa)
    st, _, b = put(sa, "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": state, "mem_file_path": mem})
    check("PUT /snapshot/create Full: 204", st == 204, "%s %s %s" % (st, b, errtext("a")))
    check("the memory file is the guest's size", os.path.exists(mem) and os.stat(mem).st_size == 64 << 20,
          os.stat(mem).st_size if os.path.exists(mem) else "missing")
    check("the memory file is sparse (zero pages are holes)", os.path.exists(mem) and blocks(mem) < (8 << 20),
          blocks(mem) if os.path.exists(mem) else "")
    for bad, want in [({"snapshot_type": "Half", "snapshot_path": state, "mem_file_path": mem}, "snapshot_type"),
                      ({"snapshot_path": state}, "mem_file_path"),
                      ({"snapshot_path": state, "mem_file_path": mem, "x": 1}, "unknown field")]:
        st, _, b = put(sa, "/snapshot/create", bad)
        check("snapshot/create refuses %s" % want, st == 400 and want in str(b), "%s %s" % (st, b))
    st, _, b = put(sa, "/snapshot/load", {"snapshot_path": state, "mem_file_path": mem})
    check("snapshot/load after the start: 400", st == 400 and "after starting" in str(b), "%s %s" % (st, b))
    nums_a, ok_a = counts(before)

    # --- Diff after Full ------------------------------------------------------
    call(sa, "PATCH", "/vm", {"state": "Resumed"})
    wait_count(ca, nums_a[-1] + 10 if nums_a else 20)
    call(sa, "PATCH", "/vm", {"state": "Paused"})
    before_diff = settle(ca)
    dstate, dmem = os.path.join(T, "diff.state"), os.path.join(T, "diff.mem")
    st, _, b = put(sa, "/snapshot/create", {"snapshot_type": "Diff", "snapshot_path": dstate, "mem_file_path": dmem})
    check("PUT /snapshot/create Diff: 204", st == 204, "%s %s" % (st, b))
    check("the Diff holds fewer pages than the Full",
          os.path.exists(dmem) and blocks(dmem) < blocks(mem), "%s vs %s" % (
              blocks(dmem) if os.path.exists(dmem) else "-", blocks(mem)))

    # --- a Diff that fails (its disk full) gives back the pages it took -------
    # The next Diff must hold them: the Full, the first Diff and that one
    # merged then go on from it. Needs a tmpfs (root); skipped otherwise.
    full_dir, d3state, d3mem, before_d3 = os.path.join(T, "full"), os.path.join(T, "d3.state"), \
        os.path.join(T, "d3.mem"), None
    os.makedirs(full_dir)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", full_dir],
                      capture_output=True).returncode == 0:
        with open(os.path.join(full_dir, "filler"), "wb") as f:
            f.write(b"x" * 4096)
        call(sa, "PATCH", "/vm", {"state": "Resumed"})
        nd1, _ = counts(before_diff)
        wait_count(ca, (nd1[-1] if nd1 else 0) + 10)
        call(sa, "PATCH", "/vm", {"state": "Paused"})
        before_d3 = settle(ca)
        st, _, b = put(sa, "/snapshot/create", {"snapshot_type": "Diff", "snapshot_path": os.path.join(T, "d2.state"),
                                                "mem_file_path": os.path.join(full_dir, "d2.mem")})
        check("a Diff onto a full disk: 400, said why", st == 400 and "No space" in str(b), "%s %s" % (st, b))
        st, _, b = put(sa, "/snapshot/create", {"snapshot_type": "Diff", "snapshot_path": d3state,
                                                "mem_file_path": d3mem})
        check("the Diff after it: 204", st == 204, "%s %s" % (st, b))
        subprocess.run(["umount", full_dir], capture_output=True)
    else:
        print("SKIP a Diff onto a full disk (no tmpfs here)")
    stop(a)

    # --- B: a new process goes on from the Full snapshot -----------------------
    bp, sb, cb, st, b = load("b", state, mem, extra={"network_overrides": [], "track_dirty_pages": True})
    check("PUT /snapshot/load in a new process: 204", st == 204, "%s %s %s" % (st, b, errtext("b")))
    ok = wait_count(cb, (nums_a[-1] if nums_a else 0) + 5)
    nums, allok = counts(before + console(cb))
    check("the count goes on from the snapshot (no restart, no gap)",
          ok and consecutive(nums) and allok and nums[0] == 1, "%s ... %s" % (nums[:3], nums[-5:]))
    st, _, inst = call(sb, "GET", "/")
    check("GET / says Running", st == 200 and inst.get("state") == "Running", inst)
    check("the policy in force goes on (GET /policy)",
          call(sb, "GET", "/policy")[2].get("rules", [{}])[0].get("id") == "lsr", call(sb, "GET", "/policy")[2])
    hb = policy_hits(sb)
    check("the policy's hit counts go on from the snapshot's", hits_a > 0 and hb > hits_a, "%s then %s" % (hits_a, hb))
    check("the exit counts go on from the snapshot's", exits_a > 0 and exits(sb) > exits_a,
          "%s then %s" % (exits_a, exits(sb)))
    st, _, b = call(sb, "PATCH", "/vm", {"state": "Paused"})
    s2, m2 = os.path.join(T, "b.state"), os.path.join(T, "b.mem")
    st, _, b = put(sb, "/snapshot/create", {"snapshot_path": s2, "mem_file_path": mem})
    check("a restored VM never truncates the memory file it runs from",
          st == 400 and "loaded from" in str(b), "%s %s" % (st, b))
    st, _, b = put(sb, "/snapshot/create", {"snapshot_path": s2, "mem_file_path": m2})
    check("a restored VM can be snapshotted again", st == 204, "%s %s" % (st, b))
    stop(bp)

    # --- Diff merged onto the Full, then restored ------------------------------
    merged = os.path.join(T, "merged.mem")
    shutil.copyfile(mem, merged)
    r = subprocess.run([V, "snapshot-editor", "edit-memory", "rebase", "--memory-path", merged, "--diff-path", dmem],
                       capture_output=True, text=True)
    check("snapshot-editor edit-memory rebase", r.returncode == 0, r.stderr)
    cp, sc, cc, st, b = load("c", dstate, merged)
    check("the Diff's state loads over the merged memory", st == 204, "%s %s %s" % (st, b, errtext("c")))
    nd, _ = counts(before_diff)
    ok = wait_count(cc, (nd[-1] if nd else 0) + 5)
    nums, allok = counts(before_diff + console(cc))
    check("after Diff, the count goes on from the Diff snapshot",
          ok and consecutive(nums) and allok, "%s ... %s" % (nums[:3], nums[-5:]))
    stop(cp)
    if before_d3 is not None:
        r = subprocess.run([V, "snapshot-editor", "edit-memory", "rebase", "--memory-path", merged, "--diff-path",
                            d3mem], capture_output=True, text=True)
        cp, sc, cc, st, b = load("c3", d3state, merged)
        n3, _ = counts(before_d3)
        ok = r.returncode == 0 and st == 204 and wait_count(cc, (n3[-1] if n3 else 0) + 5)
        nums, allok = counts(before_d3 + console(cc))
        check("after a failed Diff, the next one holds what it took: the count goes on",
              ok and consecutive(nums) and allok, "%s %s %s ... %s" % (r.stderr, st, nums[:3], nums[-5:]))
        stop(cp)

    # --- 20 clones of one snapshot ---------------------------------------------
    clones = []
    for i in range(20):
        p, s, c, st, b = load("clone%d" % i, state, mem,
                              extra={"vigil_clone": {"instance_id": "clone-%d" % i}})
        clones.append((p, s, c, st, b))
    started = sum(1 for c in clones if c[3] == 204)
    check("20 clones load from one snapshot", started == 20,
          [(c[3], c[4]) for c in clones if c[3] != 204][:2])
    goes_on = 0
    for p, s, c, st, b in clones:
        if st == 204 and wait_count(c, (nums_a[-1] if nums_a else 0) + 3, 60):
            nums, allok = counts(before + console(c))
            goes_on += consecutive(nums) and allok
    check("each clone resumes and counts on from the snapshot", goes_on == 20, "%d of 20" % goes_on)
    st, _, inst = call(clones[3][1], "GET", "/")
    check("a clone takes its instance id at load", inst.get("id") == "clone-3", inst)
    for p, *_ in clones:
        stop(p)

    # --- the config file's snapshot-load, and vigil ctl -------------------------
    cfg = os.path.join(T, "restore.json")
    json.dump({"snapshot-load": {"snapshot_path": state, "mem_backend": {"backend_type": "File", "backend_path": mem},
                                 "resume_vm": True}}, open(cfg, "w"))
    fcon = os.path.join(T, "f.con")
    fp = subprocess.Popen([V, "run", "--config-file", cfg, "--console", "file:" + fcon],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    procs.append(fp)
    ok = wait_count(fcon, (nums_a[-1] if nums_a else 0) + 3)
    nums, allok = counts(before + console(fcon))
    check("--config-file with snapshot-load restores and runs", ok and consecutive(nums) and allok,
          nums[-3:] if nums else fp.stderr.read1(400) if fp.poll() is not None else "no output")
    stop(fp)
    bad_cfg = os.path.join(T, "bad.json")
    json.dump({"snapshot-load": {"snapshot_path": state, "mem_file_path": mem},
               "boot-source": {"kernel_image_path": GUEST}}, open(bad_cfg, "w"))
    r = subprocess.run([V, "run", "--config-file", bad_cfg], capture_output=True, text=True, timeout=20)
    check("the config file refuses snapshot-load beside boot-source", r.returncode != 0 and "boot-source" in r.stderr,
          r.stderr)

    gp, sg, cg = spawn("g")
    r = subprocess.run([V, "ctl", "--api-sock", sg, "restore", state, mem, "--resume"], capture_output=True, text=True)
    check("vigil ctl restore", r.returncode == 0 and wait_count(cg, (nums_a[-1] if nums_a else 0) + 2),
          r.stderr + errtext("g"))
    subprocess.run([V, "ctl", "--api-sock", sg, "pause"], capture_output=True)
    r = subprocess.run([V, "ctl", "--api-sock", sg, "snapshot", os.path.join(T, "g.state"), os.path.join(T, "g.mem")],
                       capture_output=True, text=True)
    check("vigil ctl snapshot", r.returncode == 0 and os.path.getsize(os.path.join(T, "g.state")) > 0, r.stderr)
    stop(gp)

    # --- the Uffd backend with the example page server --------------------------
    if os.path.exists(PAGESERVER):
        usock = os.path.join(T, "uffd.sock")
        ps = subprocess.Popen([PAGESERVER, usock, mem], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(ps)
        for _ in range(100):
            if os.path.exists(usock):
                break
            time.sleep(0.02)
        up, su, cu, st, b = load("u", state, usock, backend="Uffd")
        ok = st == 204 and wait_count(cu, (nums_a[-1] if nums_a else 0) + 3)
        nums, allok = counts(before + console(cu))
        check("the Uffd backend: pages come from the page server, the count goes on",
              ok and consecutive(nums) and allok, "%s %s %s" % (st, b, errtext("u")))
        stop(up)
        try:
            ps.wait(5)
        except subprocess.TimeoutExpired:
            ps.kill()
    else:
        check("the example page server is built", False, PAGESERVER + " missing")

    firecracker_docs_sequence()

    # --- bad input ---------------------------------------------------------------
    raw = open(state, "rb").read()

    def bad_load(name, st_bytes, mem_path, want):
        path = os.path.join(T, name + ".state")
        open(path, "wb").write(st_bytes)
        p, s, c, st, b = load(name, path, mem_path)
        ok = check("a %s snapshot: 400 '%s'" % (name, want), st == 400 and want in str(b), "%s %s" % (st, b))
        # nothing half-restored: the same process then loads a good one
        if ok:
            st2, _, b2 = put(s, "/snapshot/load", {"snapshot_path": state, "mem_file_path": mem, "resume_vm": True})
            check("after a refused %s load the process loads a good one" % name, st2 == 204, "%s %s" % (st2, b2))
        stop(p)

    bad_load("truncated", raw[:len(raw) // 2], mem, "truncated")
    flipped = bytearray(raw)
    flipped[len(raw) // 3] ^= 0x10
    bad_load("corrupted", bytes(flipped), mem, "checksum")
    bad_load("foreign", open(GUEST, "rb").read(), mem, "not a vigil snapshot")
    future = bytearray(raw)
    future[8:12] = struct.pack("<I", 99)
    future[-4:] = struct.pack("<I", zlib.crc32(bytes(future[:-4])) & 0xffffffff)
    bad_load("future", bytes(future), mem, "newer than")
    small = os.path.join(T, "small.mem")
    open(small, "wb").truncate(32 << 20)
    bad_load("wrong-memory-size", raw, small, "memory file is")
    huge = os.path.join(T, "huge.state")
    open(huge, "wb").write(rebuild(raw, huge_guest))
    p, s, c, st, b = load("huge", huge, mem)
    check("a snapshot of a guest larger than this host: 400", st == 400 and "more than this host" in str(b),
          "%s %s" % (st, b))
    stop(p)
    same = os.path.join(T, "same.state")
    open(same, "wb").write(rebuild(raw, lambda sid, pl: pl))
    p, s, c, st, b = load("rebuilt", same, mem)
    check("(the test's own re-encoding of a good file loads)", st == 204, "%s %s" % (st, b))
    stop(p)
    p, s, c, st, b = load("missing", os.path.join(T, "nope.state"), mem)
    check("a missing state file: 400", st == 400 and "nope.state" in str(b), "%s %s" % (st, b))
    stop(p)
    p, s, c = spawn("twice")
    put(s, "/boot-source", {"kernel_image_path": GUEST})
    st, _, b = put(s, "/snapshot/load", {"snapshot_path": state, "mem_file_path": mem})
    check("load after boot-specific config: 400", st == 400 and "boot-specific" in str(b), "%s %s" % (st, b))
    st, _, b = put(s, "/snapshot/load", {"snapshot_path": state})
    check("load without a memory backend: 400 (Firecracker's words)", st == 400 and "either `mem_backend`" in str(b),
          "%s %s" % (st, b))
    st, _, b = put(s, "/snapshot/load", {"snapshot_path": state, "mem_file_path": mem,
                                         "mem_backend": {"backend_type": "File", "backend_path": mem}})
    check("load with both backends: 400", st == 400 and "exclusively" in str(b), "%s %s" % (st, b))
    st, _, b = put(s, "/snapshot/load", {"snapshot_path": state, "mem_backend": {"backend_type": "Disk",
                                                                                 "backend_path": mem}})
    check("load with an unknown backend_type: 400", st == 400 and "backend_type" in str(b), "%s %s" % (st, b))
    stop(p)
    check("no vigil crashed", all(pr.returncode is None or pr.returncode >= 0 for pr in procs),
          [pr.returncode for pr in procs])


try:
    main()
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(T, ignore_errors=True)
print("snapshot: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
