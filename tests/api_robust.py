#!/usr/bin/env python3
"""api_robust — hostile-client checks for vigil's API server.

Usage: tests/api_robust.py SOCKET [--kernel FILE]

Run against a fresh server (tests/unit/api_fake_server, or a real
`vigil run --api-sock` that was given nothing else): malformed JSON, wrong
types, missing and unknown fields, bodies over 51,200 bytes (declared and
chunked), a lying Content-Length, bytes that are not HTTP, a client that
connects and says nothing (others are served meanwhile, it is dropped after
the server's timeout), 100 clients at once, ids with bad characters, a
second InstanceStart. After each hostile step the server must still answer
GET /. Prints PASS/FAIL lines and "N passed, N failed"; exit 1 on a failure.
Takes about 12 s (the idle timeout). Standard library only."""
import argparse
import json
import os
import socket
import stat
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_unix import call  # noqa: E402

passed = failed = 0
SOCK = None


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("PASS " + what)
    else:
        failed += 1
        print("FAIL " + what + (": " + str(detail) if detail else ""))


def raw(data, timeout=5, shut=False):
    """Sends bytes, returns everything the server sends back before closing (or the timeout)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(SOCK)
    out = b""
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before reading everything
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    return out


def alive(what):
    try:
        r = call(SOCK, "GET", "/", timeout=5)
        check(r[0] == 200, "server alive after " + what, r[0])
    except OSError as e:
        check(False, "server alive after " + what, e)


def refused(method, path, body, want, what):
    r = call(SOCK, method, path, body)
    msg = r[2].get("fault_message", "") if isinstance(r[2], dict) else ""
    check(r[0] == 400 and want in msg, what, "%d %r" % (r[0], r[2]))


def main():
    global SOCK
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("--kernel")
    a = ap.parse_args()
    SOCK = a.socket
    tmp = tempfile.mkdtemp(prefix="vigil-robust-")
    kernel = a.kernel
    if not kernel:
        kernel = os.path.join(tmp, "vmlinux")
        open(kernel, "wb").write(b"\0" * 4096)

    st = os.stat(SOCK)
    check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, "socket is mode 0600",
          oct(stat.S_IMODE(st.st_mode)))

    # Long-running hostile clients first, checked at the end.
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(SOCK)
    liar = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    liar.connect(SOCK)
    liar.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"vcpu")
    t0 = time.time()

    r = call(SOCK, "GET", "/", timeout=3)
    check(r[0] == 200, "others are served while a client is silent and another lies about Content-Length", r[0])

    refused("PUT", "/machine-config", "{\"vcpu_count\": 2,", "Invalid JSON", "malformed JSON -> 400 Invalid JSON")
    refused("PUT", "/machine-config", "{\"vcpu_count\": 2 \"mem_size_mib\": 3}", "column", "malformed JSON names the position")
    refused("PUT", "/machine-config", "nul\x00l", "Invalid JSON", "NUL in a body -> 400")
    refused("PUT", "/machine-config", "[]", "JSON object", "a JSON array body -> 400")
    refused("PUT", "/machine-config", {"vcpu_count": "2", "mem_size_mib": 128}, "`vcpu_count` must be", "wrong type names the field")
    refused("PUT", "/boot-source", {"kernel_image_path": True}, "`kernel_image_path` must be a string", "wrong type names the expected type")
    refused("PUT", "/machine-config", {"vcpu_count": 1}, "missing field `mem_size_mib`", "missing field is named")
    refused("PUT", "/vsock", {"guest_cid": 3, "uds_path": "/tmp/x", "extra": 1}, "unknown field `extra`", "unknown field is named")
    refused("PUT", "/machine-config", {"vcpu_count": 10**30, "mem_size_mib": 128}, "", "a huge number -> 400")
    refused("PUT", "/machine-config", "[" * 100000, "", "deep nesting -> 400 (too big or bad JSON)")
    alive("bad bodies")

    big = "{\"boot_args\": \"" + "a" * 52000 + "\"}"
    refused("PUT", "/boot-source", big, "larger than the limit", "body over 51,200 bytes (Content-Length) -> 400")
    r = call(SOCK, "PUT", "/boot-source", "{\"x\":\"" + "a" * 51180 + "\"}")
    check(r[0] == 400 and "larger than" not in json.dumps(r[2]), "a body of 51,188 bytes is read (and judged on its JSON)", r[2])
    chunked = b"PUT /boot-source HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
    for _ in range(30):
        chunked += b"800\r\n" + b"a" * 0x800 + b"\r\n"
    chunked += b"0\r\n\r\n"
    out = raw(chunked, timeout=5)
    check(out.startswith(b"HTTP/1.1 400") and b"larger than the limit" in out, "chunked body over 51,200 bytes -> 400",
          out[:120])
    out = raw(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", timeout=5)
    check(out.startswith(b"HTTP/1.1 4"), "absurd Content-Length -> 4xx", out[:80])
    out = raw(b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{\"vcpu_count\":1}", timeout=3)
    check(out.startswith(b"HTTP/1.1 400"), "Content-Length shorter than the body -> 400", out[:80])
    alive("oversized and lying bodies")

    for junk in (b"\x00\x01\x02\xff" * 64, b"HELLO\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(300), b"A" * 70000 + b"\r\n\r\n"):
        out = raw(junk, timeout=5, shut=True)
        check(out == b"" or out.startswith(b"HTTP/1.1 4") or out.startswith(b"HTTP/1.1 505"),
              "not HTTP (%r...) -> closed, 4xx or 505" % junk[:8], out[:80])
    alive("bytes that are not HTTP")

    socks = []
    try:
        for _ in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(SOCK)
            socks.append(s)
        for s in socks:
            s.sendall(b"GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        ok = 0
        for s in socks:
            data = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
            ok += data.startswith(b"HTTP/1.1 200")
        check(ok == 100, "100 clients at once all answered", "%d of 100" % ok)
    except OSError as e:
        check(False, "100 clients at once all answered", e)
    finally:
        for s in socks:
            s.close()

    for bad in ("a-b", "a%20b", "a.b", "%C3%BC", "x" * 65):
        refused("PUT", "/drives/" + bad, {"drive_id": bad, "is_root_device": False, "path_on_host": kernel},
                "Invalid ID", "id %r in the path -> 400 Invalid ID" % bad[:20])
    refused("PUT", "/drives/", {"drive_id": "a"}, "Empty ID", "empty id -> 400")
    refused("PUT", "/drives/a/b", {"drive_id": "a"}, "Invalid request method and/or path", "extra path segment -> 400")

    r = call(SOCK, "PUT", "/boot-source", {"kernel_image_path": kernel})
    check(r[0] == 204, "boot-source accepted", r)
    r = call(SOCK, "PUT", "/actions", {"action_type": "InstanceStart"})
    if r[0] == 204:
        refused("PUT", "/actions", {"action_type": "InstanceStart"},
                "The requested operation is not supported after starting the microVM.", "second InstanceStart -> 400")
    elif a.kernel:
        check(False, "InstanceStart with --kernel -> 204", r)
    else:
        # A real VMM cannot boot the dummy kernel: the start fails, cleanly.
        check(r[0] == 400 and isinstance(r[2], dict) and "fault_message" in r[2], "InstanceStart of a dummy kernel -> 400", r)
        print("SKIP second InstanceStart: no bootable kernel (give --kernel)")

    # The idle clients: dropped once the server's timeout (10 s) has passed.
    def closed(s):
        s.settimeout(max(1.0, 16 - (time.time() - t0)))
        try:
            data = s.recv(4096)
            while data and not data.endswith(b"}") and b"\r\n\r\n" in data and False:
                pass
            # A timed-out liar may get nothing; either way the server must close it.
            while data:
                data = s.recv(4096)
            return True
        except socket.timeout:
            return False
        except OSError:
            return True

    check(closed(silent), "a silent client is dropped by the server's timeout", "%.1f s" % (time.time() - t0))
    check(closed(liar), "a client that sends less than its Content-Length is dropped", "%.1f s" % (time.time() - t0))
    silent.close()
    liar.close()
    alive("idle clients")
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
