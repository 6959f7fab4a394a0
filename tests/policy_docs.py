#!/usr/bin/python3
"""policy_docs — every policy example in the docs, checked two ways.

Usage: /usr/bin/python3 tests/policy_docs.py VIGIL [REPO_ROOT]

Each ```json block of docs/POLICY.md and each docs/policies/*.json must be
valid for docs/policy.schema.json (Debian's python3-jsonschema) AND pass
`vigil policy check`. Each ```json bad block must be refused by both; each
```json vigil-bad block is valid for the schema (it cannot see the fault) but
refused by vigil. A bad block's next line "> vigil: MESSAGE" is what vigil's
one stderr line must contain. Prints PASS/FAIL lines and "N passed, N failed".
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import jsonschema

passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("PASS " + what)
    else:
        failed += 1
        print("FAIL %s: %s" % (what, detail))


def vigil_check(vigil, text, tmp):
    path = os.path.join(tmp, "p.json")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([vigil, "policy", "check", path], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def blocks(md):
    """(kind, text, expected message or None, line) for each json block."""
    out = []
    lines = md.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```json( bad| vigil-bad)?\s*$", lines[i])
        if not m:
            i += 1
            continue
        start = i + 1
        j = start
        while lines[j] != "```":
            j += 1
        text = "\n".join(lines[start:j])
        want = None
        if j + 1 < len(lines) and lines[j + 1].startswith("> vigil: "):
            want = lines[j + 1][len("> vigil: "):].strip()
        out.append(((m.group(1) or "").strip() or "good", text, want, start))
        i = j + 1
    return out


def main():
    vigil = sys.argv[1]
    root = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    with open(os.path.join(root, "docs/policy.schema.json")) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    check(True, "docs/policy.schema.json is a valid 2020-12 schema")
    val = jsonschema.Draft202012Validator(schema)
    with open(os.path.join(root, "docs/POLICY.md")) as f:
        md = f.read()
    examples = [(k, t, w, "POLICY.md:%d" % n) for k, t, w, n in blocks(md)]
    for p in sorted(glob.glob(os.path.join(root, "docs/policies/*.json"))):
        with open(p) as f:
            examples.append(("good", f.read(), None, os.path.relpath(p, root)))
    kinds = [e[0] for e in examples]
    check(kinds.count("good") >= 10 and kinds.count("bad") >= 5 and kinds.count("vigil-bad") >= 4,
          "the docs have examples of each kind", repr({k: kinds.count(k) for k in set(kinds)}))
    with tempfile.TemporaryDirectory() as tmp:
        for kind, text, want, where in examples:
            try:
                doc = json.loads(text)
            except ValueError as e:
                check(False, "%s is JSON" % where, str(e))
                continue
            errs = [e.message for e in val.iter_errors(doc)]
            rc, out, err = vigil_check(vigil, text, tmp)
            if kind == "good":
                check(not errs, "%s valid for the schema" % where, "; ".join(errs)[:300])
                check(rc == 0 and out.startswith("policy: OK"), "%s passes vigil policy check" % where,
                      (out + err).strip())
            else:
                if kind == "bad":
                    check(bool(errs), "%s refused by the schema" % where, "the schema accepts it")
                else:
                    check(not errs, "%s valid for the schema (only vigil sees the fault)" % where,
                          "; ".join(errs)[:300])
                lines = err.strip().split("\n")
                check(rc == 1 and len(lines) == 1 and (want is None or want in lines[0]),
                      "%s refused by vigil" % where, "exit %d, stderr %r, want %r" % (rc, err, want))
    print("policy-docs: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
