#!/usr/bin/python3
"""Lab scenarios for the policy at the devices (imported by lab/devices.py,
which runs them in the same L1 boot), with Debian's kernel:

  policy boot (--policy FILE, two 64 MiB scratch disks, --vsock):
    policy-disk-deny    sectors 2048-4095 of drive "deny" denied: a direct
                        dd read or write of them fails with an I/O error in
                        the guest, other sectors work, the image is unchanged
                        where the guest tried to write
    policy-disk-cow     drive "cow" redirected to an overlay: the guest reads
                        back what it wrote (partial 4 KiB blocks included),
                        the base image's sha256 is unchanged, the overlay
                        holds the data
    policy-vsock        guest-to-host 6100 denied (the guest's connect
                        fails), 6200 redirected to 6000 (reaches the echo
                        server on UDS_6000); host-to-guest 5100 denied (the
                        host client is closed, no OK), 5200 redirected to the
                        guest's listener on 5000
    policy-denied-stats the devices' denied counters in --stats: as many as
                        the audit log's denials
  policy-clock boot (an rtc redirect to an epoch):
    policy-rtc          the guest's `date +%s` is the epoch plus the time
                        since vigil started (within a minute)
Each boot has --audit: every scenario also checks its audit records (rule,
resource, verdict, what was touched), and policy-denied-stats that the
denied counters of --stats match the audited denials.
"""
import hashlib
import json
import os
import re
import socket
import time



def _devices():
    # Imported when a boot runs: devices.py (the __main__ that imports this
    # file) is loaded again under its own name only after this module is.
    import devices
    return devices

MIB = 1 << 20
DENY_FIRST, DENY_LAST = 2048, 4095
EPOCH, EPOCH_S = "2001-02-03T04:05:06Z", 981173106


def sectors(tag, first, n):
    """n 512-byte sectors, each TAG + its number, 0-padded, newline."""
    return b"".join(b"%s%0*d\n" % (tag.encode(), 511 - len(tag), first + i) for i in range(n))


def sectors_cmd(tag, first, n):
    return (f"awk 'BEGIN{{for(i={first};i<{first + n};i++)"
            f"printf \"{tag}%0{511 - len(tag)}d\\n\",i}}'")


def write_policy(path, rules):
    with open(path, "w") as f:
        json.dump({"mode": "enforce", "rules": rules}, f)


def extents(path):
    """[(start, end)] of the file's data extents."""
    out = []
    fd = os.open(path, os.O_RDONLY)
    try:
        off = 0
        while True:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                return out
            h = os.lseek(fd, d, os.SEEK_HOLE)
            out.append((d, h))
            off = h
    finally:
        os.close(fd)


def read_audit(path):
    """The audit log's records (JSON lines), [] if there is none."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        return [{"unreadable": repr(e)}]


def records(audit, rule):
    return [a for a in audit if a.get("rule") == rule]


def count(recs):
    return sum(a.get("count", 0) for a in recs)


def boot_policy(r, work):
    D = _devices()
    names = BOOTS[boot_policy]
    deny_img, cow_img = os.path.join(work, "deny.img"), os.path.join(work, "cow.img")
    for p in (deny_img, cow_img):
        with open(p, "wb") as f:
            f.write(os.urandom(64 * MIB))
    deny_sha, cow_sha = D.file_hash(deny_img), D.file_hash(cow_img)
    with open(deny_img, "rb") as f:
        f.seek(3000 * 512)
        deny_before = f.read(512)
    overlay = os.path.join(work, "cow.overlay")
    uds = os.path.join(work, "v.sock")
    policy = os.path.join(work, "policy.json")
    audit_log = os.path.join(work, "audit.jsonl")
    write_policy(policy, [
        {"id": "deny-range", "resource": "disk", "drive": "deny", "sectors": f"{DENY_FIRST}-{DENY_LAST}",
         "verdict": "deny"},
        {"id": "cow", "resource": "disk", "drive": "cow", "access": "write", "verdict": "redirect",
         "overlay": overlay},
        {"id": "g2h-deny", "resource": "vsock", "direction": "guest-to-host", "ports": "6100",
         "verdict": "deny"},
        {"id": "g2h-redirect", "resource": "vsock", "direction": "guest-to-host", "ports": "6200",
         "verdict": "redirect", "to_port": 6000},
        {"id": "h2g-deny", "resource": "vsock", "direction": "host-to-guest", "ports": "5100",
         "verdict": "deny"},
        {"id": "h2g-redirect", "resource": "vsock", "direction": "host-to-guest", "ports": "5200",
         "verdict": "redirect", "to_port": 5000},
    ])
    echo = D.EchoServer(f"{uds}_6000")
    token = f"vigil-pol-{os.getpid()}-{int(time.time())}"
    h2g_line = f"{token}-h2g\n".encode()
    seen = {}

    def dd(g, key, args, timeout=60):
        st, out = g.run(f"dd {args} 2>&1; echo dd=$?", timeout)
        seen[key] = out

    def body(g):
        # The drives are vda (deny) and vdb (cow): the order given.
        st, out = g.run("cat /sys/block/vda/size /sys/block/vdb/size")
        seen["sizes"] = out
        # deny: reads and writes of the range fail, the rest work.
        dd(g, "deny_read", f"if=/dev/vda of=/dev/null bs=512 skip={DENY_FIRST + 8} count=8 iflag=direct")
        dd(g, "deny_write", "if=/dev/zero of=/dev/vda bs=512 seek=3000 count=1 oflag=direct")
        dd(g, "deny_edge", f"if=/dev/vda of=/dev/null bs=512 skip={DENY_FIRST - 4} count=8 iflag=direct")
        dd(g, "ok_read", "if=/dev/vda of=/dev/null bs=512 skip=0 count=8 iflag=direct")
        dd(g, "ok_write", "if=/dev/zero of=/dev/vda bs=512 seek=8192 count=8 oflag=direct")
        # cow: sectors 100-102 (part of 4 KiB block 12) and 4096-4223.
        g.run(f"{sectors_cmd('cow', 100, 3)} > /tmp/w1; {sectors_cmd('cow', 4096, 128)} > /tmp/w2")
        dd(g, "cow_w1", "if=/tmp/w1 of=/dev/vdb bs=512 seek=100 oflag=direct")
        dd(g, "cow_w2", "if=/tmp/w2 of=/dev/vdb bs=4096 seek=512 oflag=direct")
        st, out = g.run("echo 3 > /proc/sys/vm/drop_caches;"
                        " dd if=/dev/vdb bs=512 skip=96 count=16 iflag=direct 2>/dev/null | md5sum;"
                        " dd if=/dev/vdb bs=512 skip=4096 count=128 iflag=direct 2>/dev/null | md5sum;"
                        " md5sum /dev/vdb", 120)
        seen["cow_read"] = out
        # vsock, guest to host
        st, out = g.run(f"echo {token} | vsock connect 2 6100", 60)
        seen["g2h_deny"] = (st, out)
        st, out = g.run(f"echo {token} | vsock connect 2 6200", 60)
        seen["g2h_redirect"] = (st, out)
        # vsock, host to guest: the guest listens on 5000 only.
        g.run("vsock listen 5000 2>/tmp/vl.log & sleep 1")
        for key, port in (("h2g_deny", 5100), ("h2g_redirect", 5200)):
            try:
                seen[key] = D.vsock_host_to_guest(uds, port, h2g_line)
            except OSError as e:
                seen[key] = (f"<{e!r}>", b"")

    argv = D.vigil_argv(["--policy", policy, "--audit", audit_log, "--disk", f"path={deny_img},id=deny",
                         "--disk", f"path={cow_img},id=cow", "--vsock", f"cid=3,uds={uds}"])
    try:
        res = D.run_boot(r, "policy", names, argv, body)
    finally:
        echo.close()
    if res is None:
        return
    rc, err, _ = res
    devs = D.parse_devices(err)
    audit = read_audit(audit_log)

    def failed(key):
        out = seen[key]
        return "dd=0" not in out and re.search(r"(I/O|Input/output) error", out) is not None

    def passed(key):
        return "dd=0" in seen[key]

    with open(deny_img, "rb") as f:
        f.seek(3000 * 512)
        deny_after = f.read(512)
    # The guest kernel reads a page, then retries the failed one alone: each
    # failed dd is one or more denied requests, every one audited.
    den = records(audit, "deny-range")
    den_ok = (len(den) >= 1 and count(den) >= 3
              and all(a.get("resource") == "disk" and a.get("verdict") == "deny" and a.get("enforced") is True
                      and a.get("drive") == "deny" and a.get("sector", -1) <= DENY_LAST
                      and a.get("sector", -1) + a.get("bytes", 0) // 512 > DENY_FIRST for a in den))
    r.check("policy-disk-deny",
            failed("deny_read") and failed("deny_write") and failed("deny_edge") and passed("ok_read")
            and passed("ok_write") and deny_after == deny_before and D.file_hash(deny_img) != deny_sha
            and den_ok,
            f"denied read {seen['deny_read']!r}, write {seen['deny_write']!r}, straddling read "
            f"{seen['deny_edge']!r} (want I/O errors); allowed read {seen['ok_read']!r}, write "
            f"{seen['ok_write']!r} (want dd=0); sector 3000 unchanged: {deny_after == deny_before}; "
            f"audit {den}")

    # cow: what the guest read back is the base with its writes; the base is
    # unchanged; the overlay holds the blocks written, and only those.
    with open(cow_img, "rb") as f:
        base = bytearray(f.read())
    want = bytearray(base)
    want[100 * 512:103 * 512] = sectors("cow", 100, 3)
    want[4096 * 512:4224 * 512] = sectors("cow", 4096, 128)
    md5 = lambda b: hashlib.md5(b).hexdigest()  # noqa: E731
    want_md5 = [md5(want[96 * 512:112 * 512]), md5(want[4096 * 512:4224 * 512]), md5(want)]
    got_md5 = re.findall(r"^([0-9a-f]{32})", seen["cow_read"], re.M)
    ovl_ok, ovl_why = False, "no overlay"
    if os.path.exists(overlay):
        ext = extents(overlay)
        with open(overlay, "rb") as f:
            o = f.read()
        ovl_ok = (len(o) == len(base) and o[100 * 512:103 * 512] == sectors("cow", 100, 3)
                  and o[96 * 512:100 * 512] == base[96 * 512:100 * 512]
                  and ext == [(12 * 4096, 13 * 4096), (512 * 4096, 528 * 4096)])
        ovl_why = f"overlay {len(o)} bytes, extents {ext}"
    cow = records(audit, "cow")
    cow_ok = count(cow) >= 2 and all(a.get("verdict") == "redirect" and a.get("drive") == "cow"
                                     and a.get("access") == "write" for a in cow)
    r.check("policy-disk-cow",
            passed("cow_w1") and passed("cow_w2") and got_md5 == want_md5 and D.file_hash(cow_img) == cow_sha
            and ovl_ok and cow_ok,
            f"writes {seen['cow_w1']!r} {seen['cow_w2']!r}; guest md5 {got_md5} want {want_md5}; base "
            f"sha256 unchanged: {D.file_hash(cow_img) == cow_sha}; {ovl_why}; audit {cow[:4]}")

    (dst, dout), (rst, rout) = seen["g2h_deny"], seen["g2h_redirect"]
    (hok, hgot), (rok, rgot) = seen["h2g_deny"], seen["h2g_redirect"]
    want_vs = {"g2h-deny": (6100, "guest-to-host", "deny"), "g2h-redirect": (6200, "guest-to-host", "redirect"),
               "h2g-deny": (5100, "host-to-guest", "deny"), "h2g-redirect": (5200, "host-to-guest", "redirect")}
    vs_got = {rule: [(a.get("port"), a.get("direction"), a.get("verdict"), a.get("resource"))
                     for a in records(audit, rule)] for rule in want_vs}
    vs_ok = all(vs_got[rule] == [(*w, "vsock")] for rule, w in want_vs.items())
    r.check("policy-vsock",
            dst == 1 and "connect:" in dout and rst == 0 and rout == token + "\n"
            and (token + "\n").encode() in echo.got and hok == "" and hgot == b""
            and rok.startswith("OK ") and rgot == h2g_line and vs_ok,
            f"g2h 6100 (deny): exit {dst} {dout!r}; g2h 6200 (to 6000): exit {rst} {rout!r}, echo server "
            f"got {echo.got!r}; h2g 5100 (deny): {hok!r} {hgot!r} (want EOF); h2g 5200 (to 5000): "
            f"{rok!r} {rgot!r}; audit {vs_got}")

    # The denied counters are the audited denials: the disk's, and the two
    # vsock connections.
    r.check("policy-denied-stats",
            rc == 0 and devs.get("deny", {}).get("denied") == count(den) and count(den) >= 3
            and devs.get("cow", {}).get("denied") == 0 and devs.get("vsock", {}).get("denied") == 2,
            f"exit {rc}; device lines {devs}; audited disk denials {count(den)}")
    print(f"  (policy: deny {devs.get('deny')}, cow {devs.get('cow')}, vsock {devs.get('vsock')})",
          flush=True)


def boot_clock(r, work):
    D = _devices()
    names = BOOTS[boot_clock]
    policy = os.path.join(work, "policy.json")
    audit_log = os.path.join(work, "audit.jsonl")
    write_policy(policy, [{"id": "clock", "resource": "rtc", "verdict": "redirect", "epoch": EPOCH}])
    seen = {}
    t0 = time.time()

    def body(g):
        st, out = g.run("date +%s; cat /sys/devices/system/clocksource/clocksource0/current_clocksource;"
                        " dmesg | grep -i -e rtc -e kvm-clock -e tsc -e clocksource | head -12")
        seen["t"] = time.time()
        seen["out"] = out

    argv = D.vigil_argv(["--policy", policy, "--audit", audit_log])
    res = D.run_boot(r, "policy-clock", names, argv, body)
    if res is None:
        return
    lines = seen["out"].split("\n")
    guest = int(lines[0]) if lines[0].strip().isdigit() else 0
    want = EPOCH_S + (seen["t"] - t0)
    rec = records(read_audit(audit_log), "clock")
    rec_ok = len(rec) == 1 and rec[0].get("resource") == "rtc" and rec[0].get("verdict") == "redirect"
    r.check("policy-rtc", res[0] == 0 and abs(guest - want) <= 60 and rec_ok,
            f"guest date {guest}, want {want:.0f} (epoch {EPOCH_S} + {seen['t'] - t0:.0f}s since vigil "
            f"started); exit {res[0]}; guest said {seen['out']!r}; audit {rec}")
    print(f"  (policy-rtc: guest {guest - EPOCH_S}s past the epoch, host {seen['t'] - t0:.0f}s since start;"
          f" {' '.join(lines[1:2])})", flush=True)


BOOTS = {
    boot_policy: ["policy-disk-deny", "policy-disk-cow", "policy-vsock", "policy-denied-stats"],
    boot_clock: ["policy-rtc"],
}
