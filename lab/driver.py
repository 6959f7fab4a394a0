#!/usr/bin/python3
"""Console driver for lab scenarios (python3 stdlib only).

Starts a VMM command line with its stdin/stdout/stderr on pipes (stdin is not a
tty), waits for the guest's "vigil guest: ready" banner and shell prompt, runs
shell commands one at a time (each followed by an echo of a unique marker, so
exactly that command's output and exit status are collected), and finally
sends a command that ends the VM (poweroff -f, reboot -f, a panic...) and waits
for the VMM to exit, returning its exit status. Every wait has a timeout; on
timeout the VMM is killed and DriverError says what was awaited. The full
console transcript (plus the driver's own notes) goes to a log file.

Used as a library by lab/scenarios.py; also usable by hand:
    lab/driver.py --log /tmp/t.log -c 'uname -a' -- build/vigil run --kernel ...
"""
import argparse
import os
import re
import subprocess
import sys
import threading
import time

BANNER = "vigil guest: ready"
PROMPT = "guest# "


class DriverError(Exception):
    pass


class Guest:
    def __init__(self, argv, log_path):
        self.argv = argv
        self.log = open(log_path, "w", encoding="latin-1")
        self.log_path = log_path
        self.note("exec: " + " ".join(argv))
        self.out = ""     # console output so far (latin-1: one char per byte)
        self.err = ""     # VMM stderr so far (e.g. --stats)
        self.pos = 0      # where the next expect() starts looking
        self.cv = threading.Condition()
        self.start = time.monotonic()
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
        except OSError as e:
            self.note(f"cannot start: {e}")
            self.log.close()
            raise DriverError(f"cannot start {argv[0]}: {e}")
        self.readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, "out"), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, "err"), daemon=True),
        ]
        for t in self.readers:
            t.start()
        self.marker = 0

    # --- plumbing ---------------------------------------------------------
    def _pump(self, pipe, which):
        """Copy one VMM pipe into our buffer and the log until EOF."""
        while True:
            data = pipe.read1(4096)
            if not data:
                return
            text = data.decode("latin-1")
            with self.cv:
                if which == "out":
                    self.out += text
                    self.log.write(text)
                else:
                    self.err += text
                    self.log.write("".join("\n[stderr] " + l for l in text.splitlines()) + "\n")
                self.log.flush()
                self.cv.notify_all()

    def note(self, msg):
        """A driver note in the transcript, on its own line."""
        self.log.write(f"\n[driver] {msg}\n")
        self.log.flush()

    def fail(self, msg):
        self.note("FAIL: " + msg)
        self.kill()
        tail = self.out[-300:].replace("\r", "")
        err = self.err[-300:]
        raise DriverError(f"{msg} (log: {self.log_path}; last output: {tail!r}"
                          + (f"; stderr: {err!r})" if err else ")"))

    def expect(self, regex, timeout, what):
        """Wait until regex matches output after self.pos; return the match
        and move self.pos past it. Fails on timeout or if the VMM exits."""
        pat = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                m = pat.search(self.out, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                if self.proc.poll() is not None and not any(t.is_alive() for t in self.readers[:1]):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cv.wait(min(left, 0.5))
        if self.proc.poll() is not None:
            self.fail(f"VMM exited with status {self.proc.returncode} while waiting for {what}")
        self.fail(f"timeout after {timeout}s waiting for {what}")

    def send(self, line):
        self.note(f"send: {line!r}")
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            self.fail(f"cannot write to VMM stdin: {e}")

    # --- API ----------------------------------------------------------------
    def wait_ready(self, timeout=120):
        """Wait for the banner, then the first prompt; return boot seconds."""
        self.expect(re.escape(BANNER), timeout, "the guest banner")
        self.expect(re.escape(PROMPT), 30, "the first shell prompt")
        secs = time.monotonic() - self.start
        self.note(f"ready after {secs:.1f}s")
        # Wide terminal: keeps ash's line editor from wrapping long commands.
        self.run("stty cols 1000")
        return secs

    def run(self, cmd, timeout=30):
        """Run one shell command at the prompt; return (status, output).
        The marker's $? is expanded only in the output, never in the echo of
        the typed line, so the regex cannot match the echo."""
        self.marker += 1
        tag = f"@@M{self.marker}:"
        self.send(f"{cmd}; echo {tag}$?@@")
        m = self.expect(re.escape(tag) + r"(\d+)@@", timeout, f"the end of {cmd!r}")
        begin = self.out.rfind(tag + "$?@@", 0, m.start())  # the echoed line
        begin = self.out.find("\n", begin) + 1 if begin >= 0 else m.start()
        output = self.out[begin:m.start()].replace("\r", "")
        self.expect(re.escape(PROMPT), timeout, f"the prompt after {cmd!r}")
        return int(m.group(1)), output

    def finish(self, cmd="poweroff -f", timeout=60):
        """Send a VM-ending command; wait for the VMM to exit; return its status."""
        self.send(cmd)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"timeout after {timeout}s waiting for the VMM to exit after {cmd!r}")
        for t in self.readers:
            t.join(5)
        self.note(f"VMM exited with status {rc} after {time.monotonic() - self.start:.1f}s")
        return rc

    def kill(self):
        """Kill the VMM if still running; collect what it wrote."""
        if self.proc.poll() is None:
            # SIGTERM first: the VMM may then print its diagnostics (--stats).
            self.note("stopping the VMM (SIGTERM, then SIGKILL after 5 s)")
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.note("no exit after SIGTERM; its threads: " + self.threads())
                self.proc.kill()
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    # Stuck in the kernel (D state): say where, and go on.
                    self.note("no exit after SIGKILL; its threads: " + self.threads())
        for t in self.readers:
            t.join(5)

    def threads(self):
        """Each thread of the VMM: name, state, kernel wait channel, stack."""
        out = []
        base = f"/proc/{self.proc.pid}/task"
        try:
            tids = os.listdir(base)
        except OSError as e:
            return f"({e})"
        for tid in tids:
            info = []
            for f in ("comm", "wchan", "syscall", "stack"):
                try:
                    with open(f"{base}/{tid}/{f}") as fh:
                        info.append(f"{f}={fh.read().strip()!r}")
                except OSError:
                    pass
            try:
                with open(f"{base}/{tid}/status") as fh:
                    info += [l.strip() for l in fh if l.startswith("State:")]
            except OSError:
                pass
            out.append(f"[{tid}] " + " ".join(info))
        return "\n".join(out)

    def close(self):
        self.kill()
        self.log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", default="driver.log")
    ap.add_argument("-c", dest="cmds", action="append", default=[],
                    help="shell command to run in the guest (repeatable)")
    ap.add_argument("--end", default="poweroff -f", help="VM-ending command")
    ap.add_argument("--timeout", type=float, default=120, help="boot timeout (s)")
    ap.add_argument("argv", nargs="+", help="VMM command line (after --)")
    a = ap.parse_args()
    g = Guest(a.argv, a.log)
    try:
        print(f"ready after {g.wait_ready(a.timeout):.1f}s")
        for c in a.cmds:
            st, out = g.run(c)
            print(f"$ {c}  [exit {st}]\n{out}", end="")
        rc = g.finish(a.end)
        print(f"VMM exit status {rc}")
        return rc
    except DriverError as e:
        print(f"driver: {e}", file=sys.stderr)
        return 125
    finally:
        g.close()


if __name__ == "__main__":
    sys.exit(main())
