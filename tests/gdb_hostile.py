#!/usr/bin/env python3
"""Hostile and broken gdb clients against a running vigil --gdb unix:SOCK.

Usage: gdb_hostile.py SOCK CONSOLE_FILE
Prints PASS/FAIL lines and "hostile: N passed, N failed". The guest is the
tiny `spin` guest, whose console grows while it runs: after every broken
client it must run on (never left stopped)."""
import os
import socket
import sys
import time

SOCK, CON = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(name, ok, why=""):
    global passed, failed
    if ok:
        passed += 1
        print("PASS", name)
    else:
        failed += 1
        print("FAIL", name + ":", why)


def frame(data: bytes) -> bytes:
    return b"$" + data + b"#%02x" % (sum(data) & 0xFF)


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    for _ in range(100):
        try:
            s.connect(SOCK)
            return s
        except OSError:
            time.sleep(0.1)
    raise SystemExit("cannot connect to " + SOCK)


def recv_until(s, pred, limit=1 << 20):
    buf = b""
    while not pred(buf) and len(buf) < limit:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        buf += d
    return buf


def packet(s, data: bytes):
    """Sends a packet, returns the reply's payload (acks stripped)."""
    s.sendall(frame(data))
    buf = recv_until(s, lambda b: b"#" in b and len(b) - b.index(b"#") >= 3)
    buf = buf.lstrip(b"+")
    if not buf.startswith(b"$") or b"#" not in buf:
        return None
    return buf[1:buf.index(b"#")]


def runs_on(name):
    """The guest's console keeps growing: it was not left stopped."""
    a = os.path.getsize(CON)
    time.sleep(1.5)
    b = os.path.getsize(CON)
    check(name, b > a, "console stayed at %d bytes" % a)


# Garbage, then a packet with a bad checksum: a nack, and the session lives.
s = connect()
s.sendall(b"hello\x00\xff garbage ###")
s.sendall(b"$g#00")
got = recv_until(s, lambda b: b"-" in b)
check("bad checksum is nacked", b"-" in got, repr(got[:40]))
r = packet(s, b"qAttached")
check("a good packet after garbage is answered", r == b"1", repr(r))

# An oversize packet (beyond PacketSize) is refused, not buffered.
s.sendall(b"$" + b"m" * 100000 + b"#00")
got = recv_until(s, lambda b: b"-" in b)
check("oversize packet refused", b"-" in got, repr(got[:40]))

# Huge lengths in m/M are capped or refused, never trusted.
r = packet(s, b"m100200,ffffffffffffffff")
check("huge m length capped", r is not None and 0 < len(r) <= 2 * 4096 and all(c in b"0123456789abcdef" for c in r),
      repr(r[:40] if r else r))
r = packet(s, b"Mffffffffffff0000,ffffffff:00")
check("huge M length refused", r is not None and r.startswith(b"E"), repr(r))
r = packet(s, b"m123456789abcdef0123,4")
check("overlong address refused", r is not None and r.startswith(b"E"), repr(r))
r = packet(s, b"Z9,0,0")
check("unknown Z type: empty", r == b"", repr(r))
r = packet(s, b"qXfer:features:read:target.xml:0,ffffffffffff")
check("target.xml read bounded", r is not None and r[:1] in (b"m", b"l") and b"i386:x86-64" in r, repr(r[:40] if r else r))
r = packet(s, b"Hg99")
check("bad thread refused", r is not None and r.startswith(b"E"), repr(r))

# A second client while one is attached is refused.
s2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s2.settimeout(5)
s2.connect(SOCK)
got = recv_until(s2, lambda b: b"#" in b and len(b) - b.index(b"#") >= 3)
check("second client refused", got.startswith(b"$E"), repr(got))
s2.close()
r = packet(s, b"qAttached")
check("first client unharmed by the second", r == b"1", repr(r))

# Continue, then interrupt with 0x03: a T02 stop for a thread.
s.sendall(frame(b"c"))
recv_until(s, lambda b: b"+" in b)
time.sleep(0.5)
s.sendall(b"\x03")
got = recv_until(s, lambda b: b"#" in b and len(b) - b.index(b"#") >= 3)
check("Ctrl-C stops with T02", b"$T02thread:" in got, repr(got))

# Vanish in the middle of a packet while the guest is stopped.
s.sendall(b"$m100200,")
s.close()
runs_on("guest runs on after a client vanished mid-packet")

# A client that connects and never speaks is dropped in time, and the
# guest is not held meanwhile beyond that.
s = connect()
s.sendall(b"$qSupported")  # never finished
s.close()
runs_on("guest runs on after a half packet and disconnect")

# A slow client: it connects (the guest stops) and says nothing, or stops
# in the middle of a packet; it is dropped after the client timeout
# (VIGIL_GDB_TIMEOUT_MS, set short by tests/gdb.sh) and the guest runs on.
for what, first in (("a silent client", b""), ("a client stuck mid-packet", b"$qSupp")):
    s = connect()
    s.sendall(first)
    s.settimeout(15)
    t0 = time.monotonic()
    got = recv_until(s, lambda b: False)  # until vigil closes it
    took = time.monotonic() - t0
    check(what + " is dropped after the timeout", took < 14, "still connected after %.1f s" % took)
    s.close()
    runs_on("guest runs on after " + what)

print("hostile: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
