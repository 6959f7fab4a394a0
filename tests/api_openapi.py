#!/usr/bin/env python3
"""api_openapi — checks a running vigil API server against docs/openapi.json.

Usage: tests/api_openapi.py [--running] SOCKET [--kernel FILE] [--rootfs FILE] [--spec docs/openapi.json]

For a fresh (never started) server: every documented path+method answers with
a documented status; every example body is accepted in order (pre-boot
configuration, then InstanceStart, then the post-boot calls); every
x-vigil-bad-example is refused with 400 + fault_message; pre-boot calls are
refused after the start and post-boot calls before it; undocumented paths and
methods get 400. With --running the server's VM is already started (by
whoever set it up): only the post-boot half runs, and PATCH /drives/{id} and
/network-interfaces/{id} use the ids GET /vm/config lists (skipped if none). Without --kernel/--rootfs, small dummy files stand in (enough
for the fake server, tests/unit/api_fake_server.c; a real VMM needs a kernel
that boots). Prints PASS/FAIL lines and "N passed, N failed"; exit 1 on a failure.
Standard library only."""
import argparse
import atexit
import copy
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_unix import call  # noqa: E402

PRE_ORDER = ["/logger", "/metrics", "/machine-config", "/boot-source", "/drives/{drive_id}",
             "/network-interfaces/{iface_id}", "/vsock", "/entropy", "/cpu-config"]
METHODS = ["get", "put", "patch"]

passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("PASS " + what)
    else:
        failed += 1
        print("FAIL " + what + (": " + detail if detail else ""))


def fault(resp):
    return isinstance(resp[2], dict) and isinstance(resp[2].get("fault_message"), str)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("--spec", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "openapi.json"))
    ap.add_argument("--kernel")
    ap.add_argument("--rootfs")
    ap.add_argument("--running", action="store_true", help="the VM is already started")
    a = ap.parse_args()
    spec = json.load(open(a.spec))
    tmp = tempfile.mkdtemp(prefix="vigil-openapi-")
    # The guest's core dump lands here (the size of its RAM): gone at exit,
    # whatever the outcome, or every run leaves a GiB behind in /tmp.
    atexit.register(shutil.rmtree, tmp, True)

    def dummy(name):
        p = os.path.join(tmp, name)
        with open(p, "wb") as f:
            f.write(b"\0" * 4096)
        return p

    files = {"kernel_image_path": a.kernel or dummy("vmlinux.bin"),
             "path_on_host": a.rootfs or dummy("rootfs.ext4"),
             "log_path": os.path.join(tmp, "vigil.log"), "metrics_path": os.path.join(tmp, "vigil.metrics"),
             "uds_path": os.path.join(tmp, "v.sock"), "path": os.path.join(tmp, "guest.core")}

    def localise(body):
        body = copy.deepcopy(body)
        if isinstance(body, dict):
            for k in list(body):
                if k in files and isinstance(body[k], str):
                    body[k] = files[k]
        return body

    def url(path, body):
        path = path.replace("{vcpu}", "0")
        for key in ("drive_id", "iface_id"):
            if "{" + key + "}" in path:
                return path.replace("{" + key + "}", body.get(key, "x") if isinstance(body, dict) else "x")
        return path

    def example(o):
        return o["requestBody"]["content"]["application/json"]["example"]

    def documented(o, status):
        return str(status) in o["responses"]

    def do(method, path, o, body, want, label):
        u = url(path, body) + ("?" + o["x-vigil-example-query"] if "x-vigil-example-query" in o else "")
        r = call(a.socket, method.upper(), u, None if body is None else json.dumps(localise(body)))
        ok = r[0] == want and documented(o, r[0]) and r[1].get("server") == "Firecracker API"
        if want == 400:
            ok = ok and fault(r) and r[1].get("content-type", "").startswith("application/json")
        check(ok, "%s %s %s -> %d" % (method.upper(), u, label, want), "got %d %r" % (r[0], r[2]))
        return r

    ops = [(p, m, spec["paths"][p][m]) for p in spec["paths"] for m in METHODS if m in spec["paths"][p]]

    def gets(label):
        for p, m, o in ops:
            # A post-boot GET (a vCPU's registers) is only asked after the start.
            if m == "get" and (o.get("x-vigil-phase") != "post-boot" or label == "(post-boot)"):
                want = 200
                r = do(m, p, o, None, want, label)
                ctype = list(o["responses"]["200"]["content"])[0]
                check(r[1].get("content-type") == ctype, "GET %s content-type %s" % (p, ctype), r[1].get("content-type", ""))

    info = call(a.socket, "GET", "/")
    want_state = ("Running", "Paused") if a.running else ("Not started",)
    if info[0] != 200 or not isinstance(info[2], dict) or info[2].get("state") not in want_state:
        print("FAIL the server must be %s, got %r" % (" or ".join(want_state), info))
        print("0 passed, 1 failed")
        return 1
    if a.running:
        return after_start(a, spec, ops, do, example, gets, check_ids=True)
    # --- before InstanceStart
    gets("(pre-boot)")
    for p, m, o in ops:
        if o.get("x-vigil-phase") == "post-boot":
            do(m, p, o, None if m == "get" else example(o), 400, "before start")
    for p in PRE_ORDER:
        for m in ("put", "patch"):
            o = spec["paths"].get(p, {}).get(m)
            if not o or o.get("x-vigil-phase") != "pre-boot":
                continue
            if "x-vigil-bad-example" in o:
                do(m, p, o, o["x-vigil-bad-example"], 400, "bad example")
            do(m, p, o, example(o), 204, "example")
    # The snapshot calls need files only a real snapshot gives: their bad
    # examples and phases are checked, the examples by tests/snapshot.py.
    for p, m, o in ops:
        if o.get("x-vigil-phase") == "snapshot-load":
            do(m, p, o, o["x-vigil-bad-example"], 400, "bad example")
        if o.get("x-vigil-phase") == "snapshot-create":
            do(m, p, o, example(o), 400, "before start")
    undocumented_pre = [(p, m) for p, m, o in ops if o.get("x-vigil-phase") == "pre-boot" and p not in PRE_ORDER]
    check(not undocumented_pre, "every pre-boot operation is exercised", repr(undocumented_pre))
    for p, m, o in ops:
        if o.get("x-vigil-phase") == "action":
            do(m, p, o, o["x-vigil-bad-example"], 400, "bad example")
            for more in o.get("x-vigil-more-examples", []):
                do(m, p, o, more, 400, "post-boot action before start")
            do(m, p, o, example(o), 204, "example (start)")
    return after_start(a, spec, ops, do, example, gets, check_ids=False)


def after_start(a, spec, ops, do, example, gets, check_ids):
    r = call(a.socket, "GET", "/")
    check(r[0] == 200 and r[2].get("state") == "Running", "GET / state Running after InstanceStart", repr(r[2]))
    gets("(post-boot)")
    ids = {}
    if check_ids:  # someone else configured the VM: PATCH what it has
        cfg = call(a.socket, "GET", "/vm/config")[2]
        for key, field in (("drives", "drive_id"), ("network-interfaces", "iface_id")):
            items = cfg.get(key) or [] if isinstance(cfg, dict) else []
            ids[field] = items[0][field] if items else None
    for p, m, o in ops:
        ph = o.get("x-vigil-phase")
        if ph == "pre-boot":
            r = do(m, p, o, example(o), 400, "after start")
            check(fault(r) and "after starting" in r[2]["fault_message"], "%s %s refused as after start" % (m.upper(), p))
        elif ph in ("post-boot", "action") and m != "get":  # GETs: gets() above
            ex, bad = example(o), o.get("x-vigil-bad-example")
            skip = False
            for field in ("drive_id", "iface_id"):
                if check_ids and isinstance(ex, dict) and field in ex:
                    if ids.get(field) is None:
                        print("SKIP %s %s: the VM has no such device" % (m.upper(), p))
                        skip = True
                        continue
                    ex = dict(ex, **{field: ids[field]})
                    if field == "drive_id":
                        ex.pop("path_on_host", None)  # the drive's own file is not ours to change
                    if isinstance(bad, dict):
                        bad = dict(bad, **{field: ids[field]})
            if skip:
                continue
            if bad is not None:
                do(m, p, o, bad, 400, "bad example")
            if ph == "post-boot":
                do(m, p, o, ex, 204, "example")
            for more in o.get("x-vigil-more-examples", []):
                do(m, p, o, more, 204, "example")
        if ph == "action":
            do(m, p, o, example(o), 400, "InstanceStart when started")
        if ph == "snapshot-load":
            r = do(m, p, o, example(o), 400, "after start")
            check(fault(r) and "after starting" in r[2]["fault_message"], "%s %s refused as after start" % (m.upper(), p))
        if ph == "snapshot-create":
            do(m, p, o, o["x-vigil-bad-example"], 400, "bad example")
            r = do(m, p, o, example(o), 400, "while running")
            check(fault(r) and "not paused" in r[2]["fault_message"], "%s %s refused while running" % (m.upper(), p))
    # --- what no document lists
    for method, path in (("GET", "/not-a-path"), ("DELETE", "/drives/rootfs"), ("POST", "/actions")):
        r = call(a.socket, method, path, "{}" if method != "GET" else None)
        check(r[0] == 400 and fault(r) and "Invalid request method and/or path" in r[2]["fault_message"],
              "%s %s -> 400 invalid method/path" % (method, path), repr(r[:1] + r[2:]))
    r = call(a.socket, "GET", "/", "{}")
    check(r[0] == 400 and fault(r), "GET with a body -> 400", repr(r[2]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
