#!/usr/bin/python3
"""Lab scenarios for the network policy (imported by lab/devices.py, which
runs them in the same L1 boot): Debian's kernel on user-mode networking
under an egress allow-list, with three HTTP servers on L1's 127.0.0.1
(reached from the guest as 10.0.2.2):

  netpol-allowed     the provided port answers
  netpol-denied      a port with a server behind it, denied: the guest's
                     connect is refused at once (the filter's TCP reset), not
                     after a timeout
  netpol-redirected  a port nobody listens on, redirected to 127.0.0.1:B:
                     the guest gets B's page
  netpol-cap         limits.max_host_connections = 3: three held
                     connections, the fourth is refused; once they close, a
                     new one works
  netpol-host-loopback  PUT /policy live: provide every egress flow; the
                     host (10.0.2.2) is still refused, as no rule names it
  netpol-live        PUT /policy live: a rule naming 10.0.2.2 opens the
                     denied server's port
  netpol-audit       the audit log has the deny (rule "rest"), the redirect
                     (rule "moved"), the cap (rule "limits") and the host
                     refusal (rule "host-loopback") with iface, proto, dst and port
  netpol-stats       vigil exits 0; net0's --stats lines count denied frames,
                     the resets, the redirect and the refusal by the cap
"""
import json
import os
import random
import re
import socket
import subprocess
import sys
import time

from apiclient import Api
from driver import DriverError, Guest
import scenarios as S

VIGIL = os.environ.get("VIGIL", "build/vigil")
GUEST_NET = "ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && ip route add default via 10.0.2.2"
NAMES = ["netpol-allowed", "netpol-denied", "netpol-redirected", "netpol-cap", "netpol-host-loopback", "netpol-live",
         "netpol-audit", "netpol-stats"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_server(work, name, port, token):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "index.html"), "w") as f:
        f.write(token + "\n")
    return subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", d,
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_listening(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def boot_netpol(r, work):
    """netpol-*: one boot under an egress allow-list."""
    pa, pb, pd, pr = (free_port() for _ in range(4))
    tok = {k: f"vigil-netpol-{k}-{random.randrange(10**12)}" for k in ("a", "b", "d")}
    servers = [http_server(work, "a", pa, tok["a"]), http_server(work, "b", pb, tok["b"]),
               http_server(work, "d", pd, tok["d"])]
    policy = {
        "mode": "enforce",
        "limits": {"max_host_connections": 3},
        "rules": [
            {"id": "web", "resource": "net", "direction": "egress", "proto": "tcp", "dst": "10.0.2.2",
             "ports": [pa], "verdict": "provide"},
            {"id": "moved", "resource": "net", "direction": "egress", "proto": "tcp", "dst": "10.0.2.2",
             "ports": [pr], "verdict": "redirect", "to": f"127.0.0.1:{pb}"},
            {"id": "rest", "resource": "net", "direction": "egress", "proto": "any", "verdict": "deny"},
        ],
    }
    pfile, audit = os.path.join(work, "policy.json"), os.path.join(work, "audit.jsonl")
    sock = os.path.join(work, "api.sock")
    with open(pfile, "w") as f:
        json.dump(policy, f)
    seen = {}
    os.makedirs(S.LOGDIR, exist_ok=True)
    argv = [VIGIL, "run", "--kernel", S.BZIMAGE, "--initrd", S.INITRD, "--mem", "512M", "--cpus", "1",
            "--cmdline", "console=ttyS0 quiet", "--stats", "--net", "user", "--policy", pfile, "--audit", audit,
            "--api-sock", sock]

    def timed(g, cmd, timeout=120):
        t = time.monotonic()
        st, out = g.run(cmd, timeout)
        return st, out, time.monotonic() - t

    try:
        if not all(wait_listening(p) for p in (pa, pb, pd)):
            return r.fail_rest(NAMES, "the L1 http servers did not start")
        try:
            g = Guest(argv, os.path.join(S.LOGDIR, "vigil-dev-netpol.log"))
        except DriverError as e:
            return r.fail_rest(NAMES, str(e))
        try:
            g.wait_ready(S.BOOT_TIMEOUT)
            seen["ipconf"] = g.run(GUEST_NET)
            get = "timeout 60 wget -q -O- http://10.0.2.2:{}/ 2>&1; echo rc=$?"
            seen["allowed"] = timed(g, get.format(pa))
            seen["denied"] = timed(g, get.format(pd))
            seen["redirected"] = timed(g, get.format(pr))
            # three connections held open (http.server waits for a request line)
            g.run(f"for i in 1 2 3; do (sleep 900 | nc 10.0.2.2 {pa} >/dev/null 2>&1 &); done; sleep 3", 60)
            seen["cap_full"] = timed(g, get.format(pa))
            g.run("killall nc; sleep 5", 60)  # FIN both ways: no longer held
            seen["cap_freed"] = timed(g, get.format(pa))
            api = Api(sock)
            anywhere = {"rules": [{"id": "anywhere", "resource": "net", "direction": "egress",
                                   "verdict": "provide"}]}
            seen["put_any"] = api.put("/policy", anywhere)
            seen["any_host"] = timed(g, get.format(pd))
            host = {"rules": [{"id": "host", "resource": "net", "direction": "egress", "dst": "10.0.2.2",
                               "verdict": "provide"}]}
            seen["put_host"] = api.put("/policy", host)
            seen["named_host"] = timed(g, get.format(pd))
            rc = g.finish("poweroff -f")
            seen["rc"], seen["err"] = rc, g.err
        except DriverError as e:
            return r.fail_rest(NAMES, str(e))
        finally:
            g.close()
    finally:
        for s in servers:
            s.terminate()
            s.wait()

    def said(key):
        st, out, secs = seen[key]
        return f"{key}: {out.strip()[-300:]!r} in {secs:.1f}s"

    ok_ip = seen["ipconf"][0] == 0
    st, out, _ = seen["allowed"]
    r.check("netpol-allowed", ok_ip and tok["a"] in out and "rc=0" in out,
            f"ip config {seen['ipconf']!r}; {said('allowed')}, want {tok['a']!r}")
    st, out, secs = seen["denied"]
    # refused by the reset, well before wget's 60 s timeout or TCP's SYN retries
    r.check("netpol-denied", tok["d"] not in out and "rc=0" not in out and "refused" in out and secs < 20,
            f"{said('denied')}, want 'Connection refused' in under 20 s and not {tok['d']!r}")
    print(f"  (netpol-denied: wget ended after {secs:.1f}s)", flush=True)
    st, out, _ = seen["redirected"]
    r.check("netpol-redirected", tok["b"] in out and "rc=0" in out,
            f"{said('redirected')}, want {tok['b']!r} (the server on 127.0.0.1:{pb})")
    full, freed = seen["cap_full"][1], seen["cap_freed"][1]
    r.check("netpol-cap", "refused" in full and "rc=0" not in full and tok["a"] in freed and "rc=0" in freed,
            f"with 3 held: {said('cap_full')} (want refused); after closing: {said('cap_freed')}")

    st, out, _ = seen["any_host"]
    r.check("netpol-host-loopback", seen["put_any"][0] == 204 and "refused" in out and tok["d"] not in out,
            f"PUT /policy {seen['put_any']!r}; {said('any_host')} (want refused: no rule names the host)")
    st, out, _ = seen["named_host"]
    r.check("netpol-live", seen["put_host"][0] == 204 and tok["d"] in out and "rc=0" in out,
            f"PUT /policy {seen['put_host']!r}; {said('named_host')} (want {tok['d']!r})")

    try:
        with open(audit) as f:
            recs = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        recs = [{"error": repr(e)}]

    def has(rule, verdict, port):
        return any(x.get("rule") == rule and x.get("verdict") == verdict and x.get("port") == port
                   and x.get("resource") == "net" and x.get("iface") == "net0" and x.get("proto") == "tcp"
                   and x.get("dst") == "10.0.2.2" and x.get("direction") == "egress" and x.get("enforced") is True
                   for x in recs)
    r.check("netpol-audit", has("rest", "deny", pd) and has("moved", "redirect", pr) and has("limits", "deny", pa)
            and has("host-loopback", "deny", pd) and not any(x.get("rule") in ("web", "host") for x in recs),
            f"audit records {recs[:12]!r} (want rest/deny port {pd}, moved/redirect port {pr}, "
            f"limits/deny port {pa}, host-loopback/deny port {pd}, nothing for the provide rules)")

    m = re.search(r"^device net0 \(\S+\): requests=(\d+) bytes=\d+ errors=\d+ denied=(\d+)", seen["err"], re.M)
    n = re.search(r"^net net0: flows=(\d+) denied=(\d+) resets=(\d+) redirected=(\d+) limited=(\d+)",
                  seen["err"], re.M)
    nums = dict(zip(("flows", "denied", "resets", "redirected", "limited"), map(int, n.groups()))) if n else {}
    r.check("netpol-stats", seen["rc"] == 0 and m and int(m.group(2)) > 0 and nums.get("resets", 0) >= 3
            and nums.get("redirected") == 1 and nums.get("limited", 0) >= 1,
            f"exit status {seen['rc']} (want 0); net0 line {m.group(0) if m else None!r} (want denied > 0); "
            f"filter line {n.group(0) if n else None!r} (want resets >= 3, redirected 1, limited >= 1)")


BOOTS = {
    boot_netpol: NAMES,
}
