#!/usr/bin/env python3
"""A guest printing without pause to a stdout nobody reads (a pipe shrunk to
one page, held open, never read): SIGTERM must still stop vigil (exit 5)
within a second, because no vCPU waits on the reader.
Usage: console_flood.py VIGIL KERNEL"""
import fcntl
import os
import signal
import subprocess
import sys
import time

F_SETPIPE_SZ = 1031
vigil, kernel = sys.argv[1], sys.argv[2]
r, w = os.pipe()
fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
p = subprocess.Popen([vigil, "run", "--kernel", kernel], stdout=w, stderr=subprocess.DEVNULL)
os.close(w)
time.sleep(2.5)  # one page fills in well under that, even on an emulated KVM
p.send_signal(signal.SIGTERM)
try:
    rc = p.wait(timeout=1)
except subprocess.TimeoutExpired:
    p.kill()
    p.wait()
    sys.exit("still running 1 s after SIGTERM")
if rc != 5:
    sys.exit(f"exit status {rc}, want 5")
print("ok")
