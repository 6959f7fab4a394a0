#!/usr/bin/env python3
"""Ctrl-A x on a terminal: vigil runs with a pty as its console, the test
types Ctrl-A x, and expects exit status 5 and the pty's settings restored
exactly as they were (raw mode must not leak). With `typeahead`, more text
than the guest's receive FIFO holds is typed first, which the guest never
reads: Ctrl-A x behind it must still be seen.
Usage: ctrl_a_x.py VIGIL KERNEL [typeahead]"""
import os
import subprocess
import sys
import termios
import time

vigil, kernel = sys.argv[1], sys.argv[2]
typeahead = len(sys.argv) > 3 and sys.argv[3] == "typeahead"
master, slave = os.openpty()
before = termios.tcgetattr(slave)
p = subprocess.Popen([vigil, "run", "--kernel", kernel], stdin=slave, stdout=slave,
                     stderr=slave, start_new_session=True)
# Wait until vigil has put the terminal in raw mode, then type Ctrl-A x.
deadline = time.time() + 20
while time.time() < deadline and termios.tcgetattr(slave) == before:
    time.sleep(0.05)
if termios.tcgetattr(slave) == before:
    p.kill()
    sys.exit("vigil never put the terminal in raw mode")
if typeahead:
    os.write(master, b"unread " * 40)
    time.sleep(0.3)
os.write(master, b"\x01x")
try:
    rc = p.wait(timeout=10)
except subprocess.TimeoutExpired:
    p.kill()
    sys.exit("vigil did not quit on Ctrl-A x")
after = termios.tcgetattr(slave)
if rc != 5:
    sys.exit(f"exit status {rc}, want 5")
if after != before:
    sys.exit("terminal settings not restored")
print("ok")
