#!/usr/bin/python3
"""Lab device scenarios: vigil's virtio devices seen from both sides.

Run INSIDE L1 (see lab/run.sh), from the repo root, as root:
    lab/devices.py [NAME...]          # no NAME: all device scenarios
    lab/devices.py --all [NAME...]    # also lab/scenarios.py's, one summary
Prints "PASS name" / "FAIL name: reason" / "SKIP name: reason" per scenario,
then "lab: N passed, N failed"; exits 1 if any failed.

Boots (each ~20-40 s in the lab; every one with --stats):
  disk: root on virtio-blk (a copy of build/guest/rootfs.ext4, root=/dev/vda),
        two 64 MiB scratch disks written concurrently, a read-only disk, --rng:
        root-disk, blk-integrity, blk-ro, rng, stats-disk, stats-disk-blk
  net:  --net user with hostfwd, --vsock: net-user, net-hostfwd, vsock-h2g,
        vsock-g2h, vsock-refused (no listener on either side), stats-net
  tap:  --net tap in a network namespace of L1: net-tap, stats-tap
  hvc:  --console-device virtio: virtio-console, stats-hvc
  netpol: --net user under an egress allow-list policy (lab/net_policy_scenarios.py)
  snapshot-*: pause, snapshot, a new vigil restores (lab/snapshot_scenarios.py)
The stats-* scenarios also check that vigil exited 0 after `poweroff -f`.
Network targets are only L1's loopback and the lab's own namespace.
"""
import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenarios as S  # noqa: E402
from driver import DriverError, Guest  # noqa: E402
import api_scenarios  # noqa: E402
import gdb_scenarios  # noqa: E402
import introspect_scenarios  # noqa: E402
import kvm_policy_scenarios  # noqa: E402
import kvm_snap_scenarios  # noqa: E402
import policy_scenarios  # noqa: E402
import net_policy_scenarios  # noqa: E402
import snapshot_scenarios  # noqa: E402

VIGIL, BZIMAGE, INITRD = S.VIGIL, S.BZIMAGE, S.INITRD
ROOTFS = f"{S.GUEST}/rootfs.ext4"
MIB = 1 << 20
DISK_SECTORS = 64 * MIB // 512
NETNS, TAP = "vigil-lab", "vtap0"
GUEST_NET = "ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && ip route add default via 10.0.2.2"


def vigil_argv(devices, mem="512M", cmdline="console=ttyS0 quiet", prefix=()):
    return [*prefix, VIGIL, "run", "--kernel", BZIMAGE, "--initrd", INITRD,
            "--mem", mem, "--cpus", "1", "--cmdline", cmdline, "--stats", *devices]


def parse_devices(text):
    """{name: {requests, bytes, errors, denied}} from vigil's --stats lines."""
    out = {}
    for m in re.finditer(r"^device (\S+) \(\S+\): requests=(\d+) bytes=(\d+) errors=(\d+) denied=(\d+)",
                         text, re.M):
        out[m.group(1)] = dict(zip(("requests", "bytes", "errors", "denied"),
                                   map(int, m.groups()[1:])))
    return out


def pattern(tag):
    """64 MiB, each 512-byte sector different: TAG + the sector number, 0-padded,
    newline. The guest makes the same bytes with awk (pattern_cmd)."""
    return b"".join(b"%s%0510d\n" % (tag.encode(), i) for i in range(DISK_SECTORS))


def pattern_cmd(tag):
    return f"awk 'BEGIN{{for(i=0;i<{DISK_SECTORS};i++)printf \"{tag}%0510d\\n\",i}}'"


def file_hash(path, algo="sha256"):
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_boot(r, name, names, argv, body):
    """One VM: start, wait for the prompt, body(g) (checks in the guest),
    poweroff -f, wait for the exit. Returns (exit status, stderr, console
    output), or None after failing the boot's unreported scenarios."""
    os.makedirs(S.LOGDIR, exist_ok=True)
    try:
        g = Guest(argv, os.path.join(S.LOGDIR, f"vigil-dev-{name}.log"))
    except DriverError as e:
        r.fail_rest(names, str(e))
        return None
    try:
        g.wait_ready(S.BOOT_TIMEOUT)
        body(g)
        rc = g.finish("poweroff -f")
        return rc, g.err, g.out
    except DriverError as e:
        r.fail_rest(names, str(e))
        return None
    finally:
        g.close()


def check_stats(r, name, res, want):
    """name: vigil exited 0 and each device in want has requests > 0."""
    rc, err, _ = res
    devs = parse_devices(err)
    bad = [d for d in want if devs.get(d, {}).get("requests", 0) <= 0]
    r.check(name, rc == 0 and not bad,
            f"exit status {rc} (want 0); no requests from {bad}; device lines: {devs}")
    return devs


# --- boot 1: disks + rng ------------------------------------------------------
def boot_disk(r, work):
    names = BOOTS[boot_disk]
    root = os.path.join(work, "root.ext4")
    shutil.copyfile(ROOTFS, root)
    disks = {}
    for tag in ("b", "c"):
        disks[tag] = os.path.join(work, f"{tag}.img")
        with open(disks[tag], "wb") as f:
            f.truncate(64 * MIB)
    ro = os.path.join(work, "ro.img")
    with open(ro, "wb") as f:
        f.write(random.randbytes(4 * MIB))
    ro_sha = file_hash(ro)
    token = f"vigil-root-{random.randrange(10**12)}"
    seen = {}

    def body(g):
        # 1. root on /dev/vda: banner, then a file written through ext4.
        seen["banner"] = "vigil guest: root on /dev/vda" in g.out
        st, out = g.run("cat /etc/vigil-rootfs && grep ' / ' /proc/mounts")
        seen["mounts"] = out
        st, out = g.run(f"echo {token} > /root/lab.txt && sync && cat /root/lab.txt")
        seen["write"] = (st, out)
        # 3. read-only disk (vdd): flagged ro, readable, writes refused.
        st, out = g.run("cat /sys/block/vdd/ro; sha256sum /dev/vdd")
        seen["ro_state"] = out
        st, out = g.run("dd if=/dev/zero of=/dev/vdd bs=4096 count=1 conv=fsync; echo dd=$?", 60)
        seen["ro_dd"] = out
        # 2. integrity: both scratch disks written concurrently, then read
        #    back past the page cache.
        cmd = " & ".join(f"({pattern_cmd(t)} | dd of=/dev/vd{t} bs=64k conv=fsync 2>/tmp/{t}.err;"
                         f" echo $? > /tmp/{t}.rc)" for t in disks)
        t0 = time.monotonic()
        st, out = g.run(f"{cmd} & wait; sync; cat /tmp/b.rc /tmp/c.rc /tmp/b.err /tmp/c.err", 900)
        seen["write_secs"] = time.monotonic() - t0
        seen["dd"] = out
        st, out = g.run("echo 3 > /proc/sys/vm/drop_caches; md5sum /dev/vdb /dev/vdc", 600)
        seen["md5"] = out
        # 7. rng
        st, out = g.run("cat /sys/class/misc/hw_random/rng_current;"
                        " dd if=/dev/hwrng bs=4096 count=256 2>/dev/null | wc -c", 300)
        seen["rng"] = out

    argv = vigil_argv(["--disk", f"path={root},id=root",
                       "--disk", f"path={disks['b']}", "--disk", f"path={disks['c']}",
                       "--disk", f"path={ro},ro", "--rng"],
                      cmdline="console=ttyS0 quiet root=/dev/vda")
    res = run_boot(r, "disk", names, argv, body)
    if res is None:
        return
    rc, err, _ = res
    devs = parse_devices(err)

    # root-disk: the banner, the mount, and the file's bytes in the image.
    dbg = subprocess.run(["debugfs", "-R", "cat /root/lab.txt", root],
                         capture_output=True, text=True)
    r.check("root-disk", seen["banner"] and "/dev/vda / ext4 rw" in seen["mounts"]
            and dbg.stdout == token + "\n",
            f"banner {seen['banner']}, mounts {seen['mounts']!r}, guest write {seen['write']!r}, "
            f"debugfs gave {dbg.stdout!r} {dbg.stderr[-200:]!r}")

    # blk-integrity: the images' contents are exactly the pattern, and the
    # guest read the same back.
    want = {t: pattern(t) for t in disks}
    want_sha = {t: hashlib.sha256(d).hexdigest() for t, d in want.items()}
    want_md5 = {t: hashlib.md5(d).hexdigest() for t, d in want.items()}
    del want
    got_sha = {t: file_hash(p) for t, p in disks.items()}
    guest_md5 = dict((m.group(2), m.group(1)) for m in re.finditer(r"([0-9a-f]{32})\s+/dev/vd(\w)", seen["md5"]))
    sizes = {t: os.path.getsize(p) for t, p in disks.items()}
    r.check("blk-integrity", got_sha == want_sha and guest_md5 == want_md5
            and seen["dd"].startswith("0\n0\n"),
            f"image sha256 {got_sha} want {want_sha} (sizes {sizes}); guest md5 {guest_md5} "
            f"want {want_md5}; dd said {seen['dd'][-300:]!r}")
    print(f"  (blk-integrity: 2 x 64 MiB written in {seen['write_secs']:.1f}s)", flush=True)

    # blk-ro: flagged ro in the guest, write refused, readable, image unchanged.
    ro_dev = devs.get("drive3", {})
    lines = seen["ro_state"].split("\n")
    ok = (lines[0] == "1" and ro_sha in seen["ro_state"] and "dd=0" not in seen["ro_dd"]
          and re.search(r"dd=\d+", seen["ro_dd"]) and file_hash(ro) == ro_sha)
    r.check("blk-ro", ok, f"sysfs ro + guest sha256 {seen['ro_state']!r} (want 1, {ro_sha}); "
            f"dd: {seen['ro_dd']!r}; image sha256 now {file_hash(ro)}; stats {ro_dev}")
    print(f"  (blk-ro: guest dd said {seen['ro_dd'].strip()!r}; drive3 stats {ro_dev})", flush=True)

    # rng: 1 MiB out of /dev/hwrng, counted by the device.
    rng = devs.get("entropy", {})
    r.check("rng", seen["rng"].split()[-1:] == ["1048576"] and "virtio_rng" in seen["rng"]
            and rng.get("bytes", 0) >= MIB,
            f"guest said {seen['rng']!r}; stats {rng}")

    check_stats(r, "stats-disk", res, ["root", "drive1", "drive2",
                                       "drive3", "entropy"])
    # --stats' blk line: the root disk's own counts, every request completed,
    # kicked and interrupted at least once, the ratios the counts make.
    m = re.search(r"^blk root: requests=(\d+) completions=(\d+) kicks=(\d+) interrupts=(\d+) "
                  r"batches=\d+ merged=\d+ retried=\d+ looks=\d+ kicks/req=([\d.]+) interrupts/req=([\d.]+)$",
                  res[1], re.M)
    n = [int(x) for x in m.groups()[:4]] if m else []
    r.check("stats-disk-blk", bool(m) and n[0] > 0 and n[1] == n[0] and n[2] > 0 and n[3] > 0
            and abs(float(m.group(5)) - n[2] / n[0]) < 0.001 and abs(float(m.group(6)) - n[3] / n[0]) < 0.001,
            f"no consistent 'blk root:' line in --stats: {[l for l in res[1].splitlines() if l.startswith('blk')]}")


# --- boot 2: user-mode networking + vsock ----------------------------------------
class EchoServer:
    """Unix-socket echo server (the host end of guest->host vsock)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.got = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(30)
                data = b""
                try:
                    while True:
                        b = c.recv(4096)
                        if not b:
                            break
                        data += b
                        c.sendall(b)
                except OSError as e:
                    data += f"<{e}>".encode()
                self.got.append(data)

    def close(self):
        self.sock.close()


def vsock_host_to_guest(uds, port, line):
    """Connect through vigil's UDS to guest port: returns (OK line, echo)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(20)
        s.connect(uds)
        s.sendall(f"CONNECT {port}\n".encode())
        ok = b""
        while not ok.endswith(b"\n"):
            b = s.recv(1)
            if not b:
                break
            ok += b
        if not ok.startswith(b"OK "):
            return ok.decode("latin-1"), b""
        s.sendall(line)
        echo = b""
        while len(echo) < len(line):
            b = s.recv(4096)
            if not b:
                break
            echo += b
        return ok.decode("latin-1"), echo


def boot_net(r, work):
    names = BOOTS[boot_net]
    www = os.path.join(work, "www")
    os.makedirs(www, exist_ok=True)
    token = f"vigil-net-{random.randrange(10**12)}"
    body_bytes = "".join(f"{token} line {i}\n" for i in range(3000)).encode()  # ~100 KB
    with open(os.path.join(www, "file"), "wb") as f:
        f.write(body_bytes)
    port, hport = free_port(), free_port()
    http = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                             "--directory", www, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uds = os.path.join(work, "v.sock")
    echo = EchoServer(f"{uds}_6000")
    fwd_token = f"vigil-fwd-{random.randrange(10**12)}"
    h2g_line = f"vigil-h2g-{random.randrange(10**12)}\n".encode()
    g2h_token = f"vigil-g2h-{random.randrange(10**12)}"
    seen = {}

    def body(g):
        st, out = g.run(GUEST_NET)
        seen["ipconf"] = (st, out)
        # net-user: the guest fetches from L1's loopback through slirp.
        st, out = g.run(f"wget -q -O /tmp/f http://10.0.2.2:{port}/file; echo rc=$?;"
                        " md5sum /tmp/f; wc -c < /tmp/f", 120)
        seen["wget"] = out
        # net-hostfwd: L1 fetches from the guest's httpd.
        st, out = g.run(f"mkdir -p /tmp/www && echo {fwd_token} > /tmp/www/file && httpd -p 8080 -h /tmp/www")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{hport}/file", timeout=30) as u:
                seen["fwd"] = u.read().decode("latin-1")
        except Exception as e:  # noqa: BLE001 - any failure is the answer
            seen["fwd"] = f"<{e!r}>"
        # vsock-h2g: the guest echoes on port 5000; L1 connects via the UDS.
        g.run("vsock listen 5000 2>/tmp/vl.log & sleep 1")
        try:
            seen["h2g"] = vsock_host_to_guest(uds, 5000, h2g_line)
        except OSError as e:
            seen["h2g"] = (f"<{e!r}>", b"")
        st, out = g.run("cat /tmp/vl.log")
        seen["h2g_log"] = out
        # vsock-g2h: the guest connects to CID 2 port 6000 = L1's UDS_6000.
        st, out = g.run(f"echo {g2h_token} | vsock connect 2 6000", 60)
        seen["g2h"] = (st, out)
        # vsock-refused: nobody on guest port 5999 / host UDS_6999.
        try:
            seen["ref_h2g"] = vsock_host_to_guest(uds, 5999, b"x\n")
        except OSError as e:
            seen["ref_h2g"] = (f"<{e!r}>", b"")
        st, out = g.run("echo x | vsock connect 2 6999", 60)
        seen["ref_g2h"] = (st, out)

    # The host's loopback is reached only where a rule names it (vigil's
    # default on user-mode networking, policy or not): this one does.
    pol = os.path.join(work, "net-user-policy.json")
    with open(pol, "w") as f:
        json.dump({"rules": [{"id": "l1-web", "resource": "net", "direction": "egress", "proto": "tcp",
                              "dst": "10.0.2.2", "ports": [port], "verdict": "provide"}]}, f)
    argv = vigil_argv(["--net", f"user,hostfwd=tcp:127.0.0.1:{hport}-:8080",
                       "--vsock", f"cid=3,uds={uds}", "--policy", pol])
    try:
        res = run_boot(r, "net", names, argv, body)
    finally:
        http.terminate()
        http.wait()
        echo.close()
    if res is None:
        return
    want_md5 = hashlib.md5(body_bytes).hexdigest()
    r.check("net-user", seen["ipconf"][0] == 0 and "rc=0" in seen["wget"] and want_md5 in seen["wget"],
            f"ip config {seen['ipconf']!r}; wget/md5sum said {seen['wget']!r}, want md5 {want_md5}")
    r.check("net-hostfwd", seen["fwd"] == fwd_token + "\n",
            f"http://127.0.0.1:{hport}/file gave {seen['fwd'][:200]!r}, want {fwd_token!r}")
    ok, got = seen["h2g"]
    r.check("vsock-h2g", ok.startswith("OK ") and got == h2g_line,
            f"handshake {ok!r}, echo {got!r}, want {h2g_line!r}; guest log {seen['h2g_log']!r}")
    st, out = seen["g2h"]
    r.check("vsock-g2h", st == 0 and out == g2h_token + "\n" and echo.got[-1:] == [(g2h_token + "\n").encode()],
            f"guest client exit {st}, printed {out!r}; host server got {echo.got!r}")
    ok, got = seen["ref_h2g"]
    st, out = seen["ref_g2h"]
    r.check("vsock-refused", ok == "" and got == b"" and st == 1 and "connect:" in out,
            f"host CONNECT 5999 got {ok!r} then {got!r} (want EOF, no OK); guest connect to "
            f"2:6999 exit {st}: {out!r} (want exit 1, a connect error)")
    check_stats(r, "stats-net", res, ["net0", "vsock"])


# --- boot 3: TAP in a network namespace ------------------------------------------
def sh(*cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def boot_tap(r, work):
    names = BOOTS[boot_tap]
    ns = ("ip", "netns", "exec", NETNS)
    sh("ip", "netns", "del", NETNS, check=False)
    try:
        sh("ip", "netns", "add", NETNS)
        sh(*ns, "ip", "link", "set", "lo", "up")
        sh(*ns, "ip", "tuntap", "add", "dev", TAP, "mode", "tap")
        sh(*ns, "ip", "addr", "add", "192.168.77.1/24", "dev", TAP)
        sh(*ns, "ip", "link", "set", TAP, "up")
    except (RuntimeError, OSError) as e:
        sh("ip", "netns", "del", NETNS, check=False)
        return r.fail_rest(names, f"cannot set up the namespace: {e}")
    seen = {}

    def body(g):
        st, out = g.run("ip addr add 192.168.77.2/24 dev eth0 && ip link set eth0 up"
                        " && ping -c 3 -W 5 192.168.77.1", 60)
        seen["guest"] = (st, out)
        # busybox's ping: the host may have no iputils-ping.
        p = sh(*ns, "busybox", "ping", "-c", "3", "-W", "5", "192.168.77.2", check=False)
        seen["host"] = (p.returncode, p.stdout + p.stderr)
        # While the VM runs: the TAP loses its carrier (and neighbours) after.
        p = sh(*ns, "ip", "neigh", "show", "192.168.77.2", check=False)
        seen["neigh"] = p.stdout.strip()

    mac = "52:54:00:12:34:77"
    argv = vigil_argv(["--net", f"tap={TAP},mac={mac}"], prefix=ns)
    try:
        res = run_boot(r, "tap", names, argv, body)
    finally:
        sh(*ns, "ip", "link", "del", TAP, check=False)
        sh("ip", "netns", "del", NETNS, check=False)
    if res is None:
        return
    (gst, gout), (hst, hout) = seen["guest"], seen["host"]
    r.check("net-tap", gst == 0 and hst == 0 and mac in seen["neigh"],
            f"guest ping exit {gst}: {gout[-300:]!r}; host ping exit {hst}: {hout[-300:]!r}; "
            f"neighbour {seen['neigh']!r} (want MAC {mac})")
    check_stats(r, "stats-tap", res, ["net0"])


# --- boot 4: virtio-console ------------------------------------------------------
def boot_hvc(r, work):
    names = BOOTS[boot_hvc]
    token = f"vigil-hvc-{random.randrange(10**12)}"
    seen = {}

    def body(g):
        st, out = g.run(f"echo {token}; readlink /proc/self/fd/0; cat /proc/cmdline")
        seen["out"] = (st, out)

    # No console=ttyS0: vigil's default command line then says console=hvc0.
    argv = vigil_argv(["--console-device", "virtio"], cmdline="quiet")
    res = run_boot(r, "hvc", names, argv, body)
    if res is None:
        return
    st, out = seen["out"]
    lines = out.split("\n")
    r.check("virtio-console", st == 0 and lines[:2] == [token, "/dev/hvc0"] and "console=hvc0" in out,
            f"output {out!r}, want {token!r}, /dev/hvc0, a cmdline with console=hvc0")
    check_stats(r, "stats-hvc", res, ["console"])


BOOTS = {
    **api_scenarios.BOOTS,
    **gdb_scenarios.BOOTS,
    **introspect_scenarios.BOOTS,
    **kvm_policy_scenarios.BOOTS,
    **kvm_snap_scenarios.BOOTS,
    **policy_scenarios.BOOTS,
    **net_policy_scenarios.BOOTS,
    **snapshot_scenarios.BOOTS,
    boot_disk: ["root-disk", "blk-integrity", "blk-ro", "rng", "stats-disk", "stats-disk-blk"],
    boot_net: ["net-user", "net-hostfwd", "vsock-h2g", "vsock-g2h", "vsock-refused", "stats-net"],
    boot_tap: ["net-tap", "stats-tap"],
    boot_hvc: ["virtio-console", "stats-hvc"],
}


def main():
    args = sys.argv[1:]
    with_base = bool(args) and args[0] == "--all"
    wanted = set(args[1:] if with_base else args)
    base = S.BOOTS if with_base else {}
    known = {n for b in (base, BOOTS) for names in b.values() for n in names}
    if wanted - known:
        sys.exit(f"unknown scenario(s) {sorted(wanted - known)}; known: {sorted(known)}")
    r = S.Results(wanted)
    if S.VMM == "vigil" and not os.access(VIGIL, os.X_OK):
        for b in (base, BOOTS):
            for names in b.values():
                r.fail_rest(names, f"{VIGIL} not built")
        return r.summary()
    host = os.environ.get("LAB_RESULTS_HOST")
    shown = os.path.join(host, "logs") if host else S.LOGDIR
    print(f"lab: VMM={S.VMM} guest={S.GUEST} logs in {shown}", flush=True)
    for fn, names in base.items():
        if not wanted or wanted & set(names):
            t = time.monotonic()
            fn(r)
            print(f"  ({fn.__name__}: {time.monotonic() - t:.1f}s)", flush=True)
    for fn, names in BOOTS.items():
        if wanted and not wanted & set(names):
            continue
        if S.VMM != "vigil":
            for n in names:
                r.report(n, "SKIP", "device scenarios need vigil's options and --stats")
            continue
        t = time.monotonic()
        work = tempfile.mkdtemp(prefix=f"vigil-{fn.__name__}-")
        try:
            fn(r, work)
        except Exception as e:  # noqa: BLE001 - a lab bug must not hide the rest
            r.fail_rest(names, f"lab error: {e!r}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"  ({fn.__name__}: {time.monotonic() - t:.1f}s)", flush=True)
    return r.summary()


if __name__ == "__main__":
    sys.exit(main())
