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
        rc, out, err, took = ctl(path, command, env=kw.get("env"))
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
        if line != want_req[0] or body.decode() != want_req[1]:
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
