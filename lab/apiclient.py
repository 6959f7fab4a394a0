#!/usr/bin/python3
"""A Firecracker-API client over a Unix socket (python3 stdlib only), for the
lab scenarios and benchmarks that drive vigil through its API, and a QMP
client for QEMU, so both can be timed side by side.

    api = Api("/tmp/vigil.sock"); api.wait()
    status, body = api.put("/boot-source", {"kernel_image_path": "..."})
"""
import http.client
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from api_unix import UnixHTTPConnection  # noqa: E402


class Api:
    def __init__(self, path, timeout=30):
        self.path, self.timeout = path, timeout
        self.conn = None

    def wait(self, timeout=30):
        """Until the socket accepts a connection (vigil has started)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.get("/")
                return
            except OSError:
                time.sleep(0.05)
        raise OSError(f"no API at {self.path} after {timeout}s")

    def call(self, method, url, body=None):
        """(status, decoded JSON body or text or None); keeps the connection."""
        data = None if body is None else json.dumps(body)
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = UnixHTTPConnection(self.path, self.timeout)
            try:
                headers = {"Content-Type": "application/json"} if data is not None else {}
                self.conn.request(method, url, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read().decode()
                break
            except (http.client.HTTPException, ConnectionError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        if not raw:
            return r.status, None
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw

    def get(self, url):
        return self.call("GET", url)

    def put(self, url, body):
        return self.call("PUT", url, body)

    def patch(self, url, body):
        return self.call("PATCH", url, body)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


class Qmp:
    """QEMU's QMP: greeting, qmp_capabilities, then execute()."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.buf = b""
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("QMP closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def execute(self, cmd, args=None):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "return" in r or "error" in r:  # skip events
                return r


def wait_path(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise OSError(f"{path} did not appear")
        time.sleep(0.05)
