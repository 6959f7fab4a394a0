#!/usr/bin/env python3
"""End-to-end tests of `vigil ctl` against a tiny Unix-socket HTTP server
that records each request and answers a canned response. Prints PASS/FAIL
lines and "N passed, N failed"; exits 1 on a failure.
usage: tests/ctl_test.py [path/to/vigil]   (default build/vigil)"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

VIGIL = sys.argv[1] if len(sys.argv) > 1 else "build/vigil"
if "/" in VIGIL:
    VIGIL = os.path.abspath(VIGIL)  # some cases run from another directory
passed = failed = 0


class Server:
    """Accepts one connection, reads one request, sends `answer` (bytes),
    then closes unless keep_open; answer None = never answer."""

    def __init__(self, path, answer, keep_open=False, close_at_once=False):
        self.path, self.answer, self.keep_open, self.close_at_once = path, answer, keep_open, close_at_once
        self.request = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.sock.accept()
        conn.settimeout(5)
        try:
            if self.close_at_once:
                conn.close()
                return
            while b"\r\n\r\n" not in self.request:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                self.request += chunk
            head, _, body = self.request.partition(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    want = int(line.split(b":")[1])
                    while len(body) < want:
                        body += conn.recv(4096)
            self.request = head + b"\r\n\r\n" + body
            if self.answer is None:
                time.sleep(3)
                return
            conn.sendall(self.answer)
            if self.keep_open:
                time.sleep(3)  # like FC: keep-alive; ctl must not wait for the close
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def resp(status, body=b"", headers=(), chunked=False):
    lines = [b"HTTP/1.1 " + status.encode(), b"Server: Firecracker API", b"Connection: keep-alive"]
    lines += [h.encode() for h in headers]
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
        payload = b""
        for i in range(0, len(body), 7):
            part = body[i:i + 7]
            payload += b"%x\r\n" % len(part) + part + b"\r\n"
        payload += b"0\r\n\r\n"
    else:
        if not status.startswith("204"):
            lines.append(b"Content-Length: %d" % len(body))
        payload = body
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("PASS", name)
    else:
        failed += 1
        print("FAIL", name, detail)


def ctl(sock, *args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run([VIGIL, "ctl", "--api-sock", sock, *args], capture_output=True, timeout=30, env=e)
    return p.returncode, p.stdout.decode(), p.stderr.decode(), time.monotonic() - t0


def case(name, command, answer, want_rc, want_out=None, want_err=None, want_req=None, **kw):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "api.sock")
        srv = Server(path, answer, **{k: v for k, v in kw.items() if k in ("keep_open", "close_at_once")})
        cmd = command if isinstance(command, (list, tuple)) else [command]
        rc, out, err, took = ctl(path, *cmd, env=kw.get("env"))
        srv.thread.join(5)
        srv.close()
    problems = []
    if rc != want_rc:
        problems.append("rc %d != %d" % (rc, want_rc))
    if want_out is not None and out != want_out:
        problems.append("stdout %r != %r" % (out, want_out))
    if want_err is not None and err != want_err:
        problems.append("stderr %r != %r" % (err, want_err))
    if want_req is not None:
        head, _, body = srv.request.partition(b"\r\n\r\n")
        line = head.split(b"\r\n")[0].decode()
        body = body.decode()
        if line != want_req[0] or body != want_req[1]:
            problems.append("request %r %r != %r" % (line, body, want_req))
    if "max_s" in kw and took > kw["max_s"]:
        problems.append("took %.1f s" % took)
    check(name, not problems, "; ".join(problems))


info = b'{"id":"anonymous-instance","state":"Running","vmm_version":"0.1.0","app_name":"vigil"}'
case("status prints GET / body", "status", resp("200 OK", info), 0, info.decode() + "\n", "",
     ("GET / HTTP/1.1", ""))
case("status on keep-alive does not wait for close", "status", resp("200 OK", info), 0, info.decode() + "\n",
     keep_open=True, max_s=2)
case("pause sends PATCH /vm Paused, prints nothing on 204", "pause", resp("204 No Content"), 0, "", "",
     ("PATCH /vm HTTP/1.1", '{"state":"Paused"}'))
case("resume sends PATCH /vm Resumed", "resume", resp("204 No Content"), 0, "", "",
     ("PATCH /vm HTTP/1.1", '{"state":"Resumed"}'))
case("start sends InstanceStart", "start", resp("204 No Content"), 0, "", "",
     ("PUT /actions HTTP/1.1", '{"action_type":"InstanceStart"}'))
case("ctrl-alt-del sends SendCtrlAltDel", "ctrl-alt-del", resp("204 No Content"), 0, "", "",
     ("PUT /actions HTTP/1.1", '{"action_type":"SendCtrlAltDel"}'))
case("flush-metrics sends FlushMetrics", "flush-metrics", resp("204 No Content"), 0, "", "",
     ("PUT /actions HTTP/1.1", '{"action_type":"FlushMetrics"}'))
case("config is GET /vm/config", "config", resp("200 OK", b'{"machine-config":{}}'), 0,
     '{"machine-config":{}}\n', "", ("GET /vm/config HTTP/1.1", ""))
case("stats is GET /vigil/stats", "stats", resp("200 OK", b'{"state":"Running"}'), 0, '{"state":"Running"}\n',
     "", ("GET /vigil/stats HTTP/1.1", ""))
prom = b"# HELP vigil_uptime_seconds x\n# TYPE vigil_uptime_seconds gauge\nvigil_uptime_seconds 1.5\n"
case("metrics decodes a chunked body", "metrics", resp("200 OK", prom, chunked=True), 0, prom.decode(), "",
     ("GET /metrics HTTP/1.1", ""))
fault = b'{"fault_message":"The requested operation is not supported after starting the microVM."}'
case("400 prints fault_message, exit 1", "start", resp("400 Bad Request", fault), 1, "",
     "vigil: The requested operation is not supported after starting the microVM.\n")
case("500 without fault_message names the status", "status", resp("500 Internal Server Error", b"oops"), 1, "",
     "vigil: GET /: HTTP 500 Internal Server Error\n")
case("no answer times out", "status", None, 1, "", None, env={"VIGIL_CTL_TIMEOUT_MS": "500"}, max_s=2.5)
case("closed without answering", "status", b"", 1, "", None, close_at_once=True)
case("garbage answer", "status", b"SSH-2.0-OpenSSH_9.0\r\n\r\n", 1, "", None)

# Introspection: regs, mem (a hex dump, or raw bytes to a file), translate, dump.
regs = b'{"rip":"0x100200","r12":"0x1234abcd"}'
case("regs is vCPU 0's by default", "regs", resp("200 OK", regs), 0, regs.decode() + "\n", "",
     ("GET /vigil/vcpus/0/regs HTTP/1.1", ""))
case("regs N", ["regs", "3"], resp("200 OK", regs), 0, None, "", ("GET /vigil/vcpus/3/regs HTTP/1.1", ""))
mem = bytes(range(0x41, 0x41 + 20))
dump_lines = ("ffffffff80100000  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  |ABCDEFGHIJKLMNOP|\n"
              "ffffffff80100010  51 52 53 54                                       |QRST|\n")
case("mem --gva: a hex dump from the address", ["mem", "--gva", "0xffffffff80100000", "--vcpu", "1", "--len", "20"],
     resp("200 OK", mem, ["Content-Type: application/octet-stream"]), 0, dump_lines, "",
     ("GET /vigil/memory?gva=0xffffffff80100000&vcpu=1&len=20 HTTP/1.1", ""))
case("mem --gpa", ["mem", "--gpa", "4096", "--len", "1"], resp("200 OK", b"\0"), 0,
     "0000000000001000  00" + " " * 46 + "  |.|\n", "", ("GET /vigil/memory?gpa=4096&len=1 HTTP/1.1", ""))
with tempfile.TemporaryDirectory() as d2:
    out_file = os.path.join(d2, "raw")
    raw = bytes(range(256)) * 3
    case("mem --out writes the raw bytes", ["mem", "--gpa", "0x100000", "--len", "768", "--out", out_file],
         resp("200 OK", raw), 0, "", "")
    with open(out_file, "rb") as f:
        check("mem --out: the file holds them", f.read() == raw)
case("mem error: the fault message", ["mem", "--gva", "0x1", "--vcpu", "0", "--len", "1"],
     resp("400 Bad Request", b'{"fault_message":"gva 0x1: not present"}'), 1, "", "vigil: gva 0x1: not present\n")
case("translate N GVA", ["translate", "1", "0xffffffff81000000"], resp("200 OK", b'{"gpa":"0x1000000"}'), 0,
     '{"gpa":"0x1000000"}\n', "", ("GET /vigil/vcpus/1/translate?gva=0xffffffff81000000 HTTP/1.1", ""))
case("dump PATH", ["dump", "/tmp/guest.core"], resp("204 No Content"), 0, "", "",
     ("PUT /vigil/dump HTTP/1.1", '{"path":"/tmp/guest.core"}'))
case("dump: a path with quotes is JSON-escaped", ["dump", '/tmp/a"b'], resp("204 No Content"), 0, "", "",
     ("PUT /vigil/dump HTTP/1.1", '{"path":"/tmp/a\\"b"}'))
with tempfile.TemporaryDirectory() as d3:
    here = os.getcwd()
    os.chdir(d3)
    try:
        case("dump: a relative path is made absolute", ["dump", "rel.core"], resp("204 No Content"), 0, "", "",
             ("PUT /vigil/dump HTTP/1.1", '{"path":"%s/rel.core"}' % os.path.realpath(d3)))
    finally:
        os.chdir(here)
for name, args, msg in [
        ("mem without an address", ["mem", "--len", "1"], "give --gpa ADDR or --gva ADDR --vcpu N"),
        ("mem with both", ["mem", "--gpa", "1", "--gva", "1", "--vcpu", "0", "--len", "1"], "give --gpa"),
        ("mem --gva without --vcpu", ["mem", "--gva", "1", "--len", "1"], "--gva needs --vcpu"),
        ("mem without --len", ["mem", "--gpa", "1"], "missing --len"),
        ("mem: a bad number", ["mem", "--gpa", "12q", "--len", "1"], "gpa '12q' is not a number"),
        ("mem: an unknown argument", ["mem", "--gpa", "1", "--len", "1", "--hex"], "unknown argument '--hex'"),
        ("mem: a value missing", ["mem", "--gpa"], "--gpa needs a value"),
        ("regs: a bad vCPU", ["regs", "x"], "vCPU 'x' is not a number"),
        ("translate: wrong arguments", ["translate", "0"], "usage: translate N GVA"),
        ("dump: no path", ["dump"], "usage: dump PATH"),
        ("status takes no argument", ["status", "now"], "one command at a time"),
]:
    with tempfile.TemporaryDirectory() as d:
        rc, out, err, _ = ctl(os.path.join(d, "none.sock"), *args)
        check("usage: " + name, rc == 1 and err.count("\n") == 1 and msg in err, err)

# Without a server, and usage errors: one line on stderr, exit 1.
with tempfile.TemporaryDirectory() as d:
    rc, out, err, _ = ctl(os.path.join(d, "none.sock"), "status")
    check("missing socket: one line, exit 1", rc == 1 and err.count("\n") == 1 and "No such file" in err, err)
    rc, out, err, _ = ctl(os.path.join(d, "none.sock"), "frobnicate")
    check("unknown command: exit 1", rc == 1 and "unknown command" in err, err)
p = subprocess.run([VIGIL, "ctl", "status"], capture_output=True)
check("missing --api-sock: exit 1", p.returncode == 1 and b"--api-sock" in p.stderr, p.stderr)
p = subprocess.run([VIGIL, "ctl", "--api-sock", "/x"], capture_output=True)
check("missing command: exit 1", p.returncode == 1 and b"missing command" in p.stderr, p.stderr)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
