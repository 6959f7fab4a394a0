#!/usr/bin/python3
"""Lab scenarios for the control plane (imported by lab/devices.py, which
runs them in the same L1 boot): Debian's kernel configured and started only
through Firecracker's API; pause/resume of a Linux guest that is writing to a
disk and to its console at the time, with nothing lost; SendCtrlAltDel.
"""
import hashlib
import os
import re
import time

from apiclient import Api
from driver import DriverError, Guest
import scenarios as S

VIGIL = os.environ.get("VIGIL", "build/vigil")
MIB = 1 << 20
DATA_MIB = 32
TICKS = 600
PAUSES = 8
DONE = r"TICKS-DONE(?!\))"


def sha256_prefix(path, nbytes):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(nbytes))
    return h.hexdigest()


def wait_all(g, patterns, timeout):
    deadline = time.monotonic() + timeout
    with g.cv:
        while not all(re.search(p, g.out) for p in patterns):
            left = deadline - time.monotonic()
            if left <= 0 or g.proc.poll() is not None:
                missing = [p for p in patterns if not re.search(p, g.out)]
                raise DriverError(f"waited {timeout}s for {missing}")
            g.cv.wait(min(left, 0.5))


def boot_api(r, work):
    """api-boot, api-pause-nothing-lost, api-stats"""
    sock = os.path.join(work, "api.sock")
    scratch = os.path.join(work, "scratch.img")
    with open(scratch, "wb") as f:
        f.truncate(64 * MIB)
    names = ["api-boot", "api-pause-nothing-lost", "api-stats"]
    os.makedirs(S.LOGDIR, exist_ok=True)
    g = Guest([VIGIL, "run", "--api-sock", sock], os.path.join(S.LOGDIR, "vigil-api.log"))
    try:
        api = Api(sock)
        api.wait()
        calls = [
            ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 512}),
            ("PUT", "/boot-source", {"kernel_image_path": os.path.abspath(S.BZIMAGE),
                                     "initrd_path": os.path.abspath(S.INITRD),
                                     "boot_args": "console=ttyS0 quiet"}),
            ("PUT", "/drives/scratch", {"drive_id": "scratch", "path_on_host": scratch,
                                        "is_root_device": False, "is_read_only": False}),
            ("PUT", "/actions", {"action_type": "InstanceStart"}),
        ]
        for method, url, body in calls:
            st, resp = api.call(method, url, body)
            if st != 204:
                raise DriverError(f"{method} {url}: HTTP {st} {resp}")
        g.wait_ready(S.BOOT_TIMEOUT)
        _, cmdline = g.run("cat /proc/cmdline")
        st, info = api.get("/")
        r.check("api-boot", "console=ttyS0 quiet" in cmdline and "panic=-1" not in cmdline
                and st == 200 and info.get("state") == "Running",
                f"guest cmdline {cmdline!r}; GET / {st} {info}")

        # A guest writing to its disk and its console while the host
        # pauses and resumes it: every console line arrives, in order, and
        # the disk holds exactly what the guest wrote. The ticks come ten at
        # a time, 0.2 s apart: slow enough for any console reader (a guest
        # printing faster than its reader drains has output dropped, by
        # design), long enough that most pauses land while both write.
        _, out = g.run(f"dd if=/dev/urandom of=/tmp/d bs=1M count={DATA_MIB} 2>/dev/null; sha256sum /tmp/d", 120)
        want = out.split()[0] if out.split() else ""
        g.run("(dd if=/tmp/d of=/dev/vda bs=64k conv=fsync 2>/dev/null; echo DDRC=$?) &"
              f" (i=1; while [ $i -le {TICKS} ]; do echo tick-$i; [ $((i % 10)) = 0 ] && sleep 0.2; i=$((i+1)); done;"
              " echo TICKS-DONE) & :")
        still = []
        for _ in range(PAUSES):
            time.sleep(0.15)
            # The writers are still at it (the typed command's echo has the
            # word too, followed by its ")").
            busy = re.search(DONE, g.out) is None
            st1, _ = api.patch("/vm", {"state": "Paused"})
            time.sleep(0.1)  # what was written before the pause drains
            n0 = len(g.out)
            time.sleep(0.5)
            n1 = len(g.out)
            st2, _ = api.patch("/vm", {"state": "Resumed"})
            g.note(f"pause {len(still)}: writers busy {busy}, {len(re.findall('tick-', g.out))} ticks so far,"
                   f" console moved {n1 - n0} bytes while paused")
            still.append((st1, st2, n1 - n0, busy))
        # The two writers end in either order: wait for both, anywhere.
        wait_all(g, [DONE, r"DDRC=\d+"], 600)
        ticks = [int(n) for n in re.findall(r"tick-(\d+)", g.out)]
        rc_m = re.search(r"DDRC=(\d+)", g.out)
        st, stats = api.get("/vigil/stats")
        dev = next((d for d in (stats or {}).get("devices", []) if d.get("id") == "scratch"), {})
        rc = g.finish("poweroff -f")
        got = sha256_prefix(scratch, DATA_MIB * MIB)
        moved = [s for s in still if s[2] != 0]
        bad_calls = [s for s in still if s[0] != 204 or s[1] != 204]
        busy = sum(1 for s in still if s[3])
        r.check("api-pause-nothing-lost",
                ticks == list(range(1, TICKS + 1)) and rc_m and rc_m.group(1) == "0" and got == want
                and not bad_calls and rc == 0 and busy >= PAUSES // 2,
                f"{busy} of {PAUSES} pauses while writing; {len(ticks)} ticks (in order: {ticks == sorted(ticks)}); dd rc {rc_m and rc_m.group(1)};"
                f" disk sha {got[:12]} vs guest {want[:12]}; calls {bad_calls}; exit {rc}")
        r.check("api-stats", st == 200 and dev.get("requests", 0) > 0 and dev.get("bytes", 0) >= DATA_MIB * MIB
                and not moved,
                f"GET /vigil/stats {st}: scratch {dev}; console output while paused: {moved}")
    except (DriverError, OSError, ValueError) as e:
        g.note("vigil's threads: " + g.threads())
        r.fail_rest(names, str(e))
    finally:
        g.close()


def boot_cad(r, work):
    """ctrl-alt-del: the guest's init shuts down cleanly on SendCtrlAltDel."""
    sock = os.path.join(work, "cad.sock")
    os.makedirs(S.LOGDIR, exist_ok=True)
    g = Guest([VIGIL, "run", "--api-sock", sock, "--kernel", S.BZIMAGE, "--initrd", S.INITRD,
               "--cmdline", "quiet"], os.path.join(S.LOGDIR, "vigil-cad.log"))
    try:
        g.wait_ready(S.BOOT_TIMEOUT)
        _, kbd = g.run("grep -h -i -e i8042 -e 'AT Translated' /proc/bus/input/devices /dev/null; dmesg | grep -i -e i8042 -e atkbd -e serio")
        api = Api(sock)
        st, body = api.put("/actions", {"action_type": "SendCtrlAltDel"})
        try:
            rc = g.proc.wait(120)
        except Exception:  # noqa: BLE001
            rc = None
        r.check("ctrl-alt-del", st == 204 and rc == 0 and re.search("ctrl-alt-del", g.out, re.I) is not None,
                f"API {st} {body}; vigil exit {rc}; keyboard: {kbd.strip()!r}; console tail {g.out[-300:]!r}")
    except (DriverError, OSError) as e:
        r.fail_rest(["ctrl-alt-del"], str(e))
    finally:
        g.close()


BOOTS = {
    boot_api: ["api-boot", "api-pause-nothing-lost", "api-stats"],
    boot_cad: ["ctrl-alt-del"],
}
