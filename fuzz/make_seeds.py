#!/usr/bin/env python3
"""Writes the seed inputs for fuzz_virtio_* and fuzz_exit into
fuzz/corpus-<target>/ (their encodings are in the targets' header comments).
Run from the tree's root when an encoding changes."""
import os
import struct

def w(target, name, data):
    d = 'fuzz/corpus-' + target
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(bytes(data))

# ---- fuzz_virtio: ops are op%10: 0 cfg write, 1 cfg read, 2/3 BAR write/read,
# 4 RAM write, 5 run, 6 host event, 7 handshake, 8/9 post chain.
HANDSHAKE = [7, 0, 0, 0, 0]
RUN = [5]
DATA = 0x10000

def desc(kind, gpa, length, head16=None):
    v = (gpa - DATA) // 4
    out = [kind] + list(struct.pack('<HH', v, length))
    if kind & 2:
        out += list((head16 or b'').ljust(16, b'\0')[:16])
    return out

def chain(q, descs):
    return [8, q | (len(descs) - 1) << 3] + sum(descs, [])

def ram(gpa, data):
    return [4] + list(struct.pack('<I', gpa)[:3]) + [len(data)] + list(data)

blk_hdr = lambda t, sector: struct.pack('<IIQ', t, 0, sector)
for t, name in ((0, 'read'), (1, 'write'), (4, 'flush'), (8, 'getid')):
    w('virtio_blk', name, [0x03, 0] + HANDSHAKE + chain(0, [
        desc(2, DATA, 16, blk_hdr(t, 1)), desc(0 if t == 1 else 1, DATA + 0x400, 512),
        desc(1, DATA + 0x800, 1)]) + RUN + [6, 0] + RUN)
w('virtio_blk', 'ioerr', [0x01, 1] + HANDSHAKE + chain(0, [
    desc(2, DATA, 16, blk_hdr(0, 0)), desc(1, DATA + 0x400, 1024), desc(1, DATA + 0x800, 1)]) + RUN + [6, 1] + RUN)

frame = bytes(12) + bytes([0xff] * 6) + bytes([0x52, 0x54, 0, 1, 2, 3]) + b'\x08\x00' + bytes(20)
w('virtio_net', 'rx-tx', [0x01, 1] + HANDSHAKE + chain(0, [desc(1, DATA, 1526)]) +
  chain(1, [desc(2, DATA + 0x1000, len(frame), frame[:16])]) + RUN +
  [6, 0] + list(struct.pack('<H', 60)) + list(frame[:60]) + RUN)
w('virtio_net', 'tx-split', [0x00, 0] + HANDSHAKE +
  chain(1, [desc(2, DATA + 0x1000, 12, bytes(12)), desc(2, DATA + 0x2000, 42, frame[12:28])]) + RUN)

def vsock_hdr(op, src_port, dst_port, length=0, cid=3):
    return struct.pack('<QQIIIHHIII', cid, 2, src_port, dst_port, length, 1, op, 0, 65536, 0)

req = vsock_hdr(1, 1000, 5000)
w('virtio_vsock', 'guest-connect', [0x00, 1] + HANDSHAKE + chain(0, [desc(1, DATA, 4096)]) +
  ram(DATA + 0x1000, req[:31]) + ram(DATA + 0x1000 + 31, req[31:]) +
  chain(1, [desc(0, DATA + 0x1000, len(req))]) + RUN + [6, 0x05] + RUN)
w('virtio_vsock', 'host-connect', [0x00, 0] + HANDSHAKE + chain(0, [desc(1, DATA, 4096)]) +
  [6, 0x80, 4] + RUN + [6, 0x45] + RUN)
w('virtio_vsock', 'host-line', [0x00, 0] + HANDSHAKE + chain(0, [desc(1, DATA, 4096)]) +
  [6, 0x00, 13] + list(b'CONNECT 5000\n') + [6, 0x45] + RUN)

w('virtio_rng', 'fill', [0, 1] + HANDSHAKE + chain(0, [desc(1, DATA, 64), desc(1, DATA + 0x100, 8)]) + RUN)
w('virtio_console', 'rx-tx', [0, 1] + HANDSHAKE + chain(0, [desc(1, DATA, 64)]) +
  chain(1, [desc(2, DATA + 0x100, 5, b'hello')]) + RUN + [6, 5] + list(b'input') + RUN)

# ---- fuzz_exit: op < 0xf0 is an exit (then up to 64 data bytes), else a host event.
def io(out, size_log2, port_sel, port_off, count, data):
    b = (1 if out else 0) | size_log2 << 1 | port_sel << 3
    return [0x00, 0x00, b, port_off, count] + list(data.ljust(64, b'\0'))

w('exit', 'com1', io(True, 0, 0, 0, 1, b'A') + io(False, 0, 0, 5, 1, b''))
w('exit', 'rep-outsb', io(True, 0, 0, 0, 16, b'0123456789abcdef'))
w('exit', 'rtc', io(True, 0, 1, 0, 1, b'\x0a') + io(False, 0, 1, 1, 1, b''))
w('exit', 'i8042', io(True, 0, 3, 0, 1, b'\xd1') + io(True, 0, 2, 0, 1, b'\xdf') + io(False, 0, 3, 0, 1, b''))
w('exit', 'acpi', io(False, 1, 5, 4, 1, b'') + io(True, 1, 5, 4, 1, b'\x00\x34'))
w('exit', 'mmio-msr', [0x02, 0x03, 0x07, 0x10, 0x00] + list(range(8)) + [0x02, 0x05] +
  list(struct.pack('<IQ', 0x10, 0)) + [0xf0, 3] + list(b'abc'))

# ---- fuzz_pci: op&3 0 CONFIG_ADDRESS, 1 data write, 2 data read, 3 MMIO; width 1<<(op>>2&3).
def sel(slot, reg): return [0x00] + list(struct.pack('<I', (reg << 24) | slot))
def w32(v): return [0x09] + list(struct.pack('<I', v))
def w16(v): return [0x05] + list(struct.pack('<I', v))
def r32(): return [0x0a]
def mmio(off, write): return [0x0b | (0x10 if write else 0)] + list(struct.pack('<I', off)[:3]) + [0] * 8

seq = []
for slot in (1, 2, 3):
    seq += sel(slot, 0x04) + w16(0x0006)
seq += sel(1, 0x10) + w32(0xffffffff) + r32() + w32(0xC0010000) + mmio(0x10000, True) + mmio(0x10ff8, False)
seq += sel(2, 0x14) + w32(0xC0010000) + mmio(0x10004, False)     # onto another BAR
seq += sel(3, 0x10) + w32(0xD0000000) + sel(3, 0x04) + w16(0)  # out of the window, decoding off
w('pci', 'bar-moves', seq)
