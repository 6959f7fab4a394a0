"""api_unix — HTTP over a Unix socket with the standard library only: a
small HTTPConnection subclass, and call(), which tests/api_openapi.py and
tests/api_robust.py use to talk to vigil's API socket."""
import http.client
import json
import socket


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client.HTTPConnection whose transport is a Unix stream socket."""

    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def call(sock_path, method, path, body=None, timeout=10, headers=None):
    """One request on a fresh connection: (status, headers dict, decoded JSON or text or None)."""
    c = UnixHTTPConnection(sock_path, timeout)
    try:
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        try:
            c.request(method, path, body=data, headers=headers or {})
            r = c.getresponse()
        except (BrokenPipeError, ConnectionResetError):
            # The server may answer (e.g. 400, body too big) and close before
            # it has read the whole body: read that answer anyway.
            r = http.client.HTTPResponse(c.sock, method=method)
            r.begin()
        raw = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
        return r.status, hdrs, parsed
    finally:
        c.close()
