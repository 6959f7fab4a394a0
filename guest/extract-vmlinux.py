#!/usr/bin/python3
"""Extract the ELF vmlinux from a bzImage.

Usage: extract-vmlinux.py BZIMAGE OUT

Why: the ELF vmlinux carries the PVH entry note (Xen ELF note 18), so a VMM can
boot it directly (32-bit PVH entry) without the bzImage's decompressor.

We locate the compressed payload exactly from the boot-protocol setup header
(no magic-byte scanning): the protected-mode code starts at (setup_sects+1)*512,
and payload_offset/payload_length (header fields at 0x248/0x24c) are relative
to that. The payload is then piped through the matching command-line tool.
"""
import os
import struct
import subprocess
import sys

# Magic bytes at the start of the payload -> decompressor command (Debian package).
DECOMPRESSORS = [
    (b"\xfd7zXZ\x00", ["xz", "-dc"]),            # xz-utils
    (b"\x1f\x8b", ["gzip", "-dc"]),               # gzip
    (b"\x28\xb5\x2f\xfd", ["zstd", "-dcq"]),      # zstd
    (b"\x02\x21\x4c\x18", ["lz4", "-dc"]),        # lz4 (legacy frame used by Linux)
    (b"BZh", ["bzip2", "-dc"]),                   # bzip2
    (b"\x5d\x00\x00", ["xz", "--format=lzma", "-dc"]),  # lzma
    (b"\x89LZO", ["lzop", "-dc"]),                # lzop
]


def main():
    src, out = sys.argv[1], sys.argv[2]
    img = open(src, "rb").read()
    if img[0x202:0x206] != b"HdrS":
        sys.exit(f"{src}: no Linux boot-protocol header (HdrS)")
    setup_sects = img[0x1F1] or 4  # 0 means 4 (boot protocol)
    payload_offset, payload_length = struct.unpack_from("<II", img, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = img[start:start + payload_length]
    if len(payload) != payload_length:
        sys.exit(f"{src}: payload runs past end of file")
    for magic, cmd in DECOMPRESSORS:
        if payload.startswith(magic):
            break
    else:
        sys.exit(f"{src}: unknown payload magic {payload[:6].hex()}")
    # Kbuild appends the decompressed size (le32) after the compressed stream
    # (size_append); strip it so the tool sees one clean stream, and use it
    # to check the result.
    stream, size = payload[:-4], struct.unpack("<I", payload[-4:])[0]
    res = subprocess.run(cmd, input=stream, stdout=subprocess.PIPE)
    data = res.stdout
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed with exit {res.returncode}")
    if data[:4] != b"\x7fELF":
        sys.exit(f"{' '.join(cmd)}: output is not an ELF")
    if len(data) != size:
        sys.exit(f"decompressed {len(data)} bytes, header says {size}")
    with open(out + ".tmp", "wb") as f:
        f.write(data)
    os.replace(out + ".tmp", out)
    print(f"{out}: ELF, {len(data)} bytes (payload {payload_length} bytes, {cmd[0]})")


if __name__ == "__main__":
    main()
