#!/bin/bash
# The JSON-lines trace and the audit log, on this host's /dev/kvm with tiny
# guests: trace records for a denied port and a served one (each line parsed
# as JSON), a filter, a ring overflow counted exactly (VIGIL_TRACE_RING, a
# test-only knob), audit records coalesced under a guest hammering a denied
# port, bad options, the config-file keys, and PUT /vigil/trace starting,
# refiltering and stopping a trace on a running guest.
# Usage: tests/trace.sh BUILD_DIR   Prints "trace: N passed, N failed".
set -u
B=${1:-build}
V=$B/vigil
G=$B/tests/guests
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
# pycheck NAME SCRIPT ARGS...: the python3 script prints nothing and exits 0 on success.
pycheck() {
    local name=$1 script=$2; shift 2
    local out; out=$(python3 -c "$script" "$@" 2>&1)
    if [ $? -eq 0 ]; then pass "$name"; else fail "$name" "$(head -c 400 <<<"$out")"; fi
}
expect_error() { # NAME PATTERN CMD...: exit 1 and one stderr line matching
    local name=$1 pat=$2; shift 2
    timeout 60 "$@" >"$T/out" 2>"$T/err" </dev/null; local rc=$?
    if [ $rc -ne 1 ]; then fail "$name" "exit $rc, want 1: $(head -c 200 "$T/err")"
    elif [ "$(wc -l <"$T/err")" -ne 1 ]; then fail "$name" "not one line: $(head -c 300 "$T/err")"
    elif ! grep -q -- "$pat" "$T/err"; then fail "$name" "lacks '$pat': $(cat "$T/err")"
    else pass "$name"; fi
}

# Each line one JSON object; the helpers below read them.
LOAD='
import json, sys
def load(path):
    out = []
    for n, line in enumerate(open(path), 1):
        try:
            out.append(json.loads(line))
        except ValueError as e:
            sys.exit("%s:%d: not JSON (%s): %r" % (path, n, e, line[:200]))
    return out
'

# --- a denied port and a served one ----------------------------------------
timeout 60 "$V" run --kernel "$G/tiny-poweroff.bin" --trace "$T/t.jsonl" --stats >/dev/null 2>"$T/stats"
pycheck "trace: denied port 0x1234 and served COM1 records" "$LOAD"'
recs = load(sys.argv[1])
deny = [r for r in recs if r.get("addr") == "0x1234"]
assert len(deny) == 2, deny
d = deny[0]
want = {"vcpu": 0, "kind": "pio", "addr": "0x1234", "len": 1, "write": False, "value": "0xff", "device": None, "verdict": "deny"}
assert all(d.get(k, "missing") == v for k, v in want.items()), d
assert isinstance(d["t"], int) and d["t"] > 0, d
assert "rule" not in d, d
assert deny[1]["len"] == 2 and deny[1]["value"] == "0xffff", deny[1]
com = [r for r in recs if r.get("device") == "com1" and r.get("write") and r.get("addr") == "0x3f8"]
assert com and com[0]["verdict"] == "provide" and com[0]["kind"] == "pio", com[:1]
ts = [r["t"] for r in recs]
assert ts == sorted(ts), "one vCPU: t never goes back"
assert all(set(r) >= {"t", "kind"} for r in recs)
' "$T/t.jsonl"
if grep -Eq '^trace: events=[1-9][0-9]* lost=0' "$T/stats"; then pass "--stats counts trace events"
else fail "--stats counts trace events" "$(grep trace: "$T/stats")"; fi

# --- a filter ---------------------------------------------------------------
timeout 60 "$V" run --kernel "$G/tiny-wild.bin" --trace "$T/f.jsonl" --trace-filter "kind=pio,mmio;device=unclaimed;vcpu=0" >/dev/null 2>&1
pycheck "trace-filter keeps only unclaimed accesses" "$LOAD"'
recs = load(sys.argv[1])
assert recs, "empty"
assert all(r["device"] is None and r["kind"] in ("pio", "mmio") for r in recs), recs[:3]
kinds = {(r["kind"], r["addr"]) for r in recs}
assert ("mmio", "0xd0000000") in kinds and ("pio", "0x80") in kinds, kinds
assert sum(1 for r in recs if r["addr"] == "0x80") == 8
' "$T/f.jsonl"
timeout 60 "$V" run --kernel "$G/tiny-poweroff.bin" --trace "$T/a.jsonl" --trace-filter "addr=0x1234" >/dev/null 2>&1
pycheck "trace-filter by address" "$LOAD"'
recs = load(sys.argv[1])
assert [r["addr"] for r in recs] == ["0x1234", "0x1234"], recs
' "$T/a.jsonl"
expect_error "bad --trace-filter" "trace-filter" "$V" run --kernel "$G/tiny-poweroff.bin" --trace - --trace-filter "kind=bogus"
expect_error "bad --trace-filter key" "unknown key" "$V" run --kernel "$G/tiny-poweroff.bin" --trace-filter "port=1"
expect_error "unwritable --trace" "trace '/nonexistent/x'" "$V" run --kernel "$G/tiny-poweroff.bin" --trace /nonexistent/x
expect_error "--trace and --audit to one file" "written there already" "$V" run --kernel "$G/tiny-poweroff.bin" --trace "$T/same" --audit "$T/same"

# --- a ring overflow, counted exactly ----------------------------------------
VIGIL_TRACE_RING=16 timeout 120 "$V" run --kernel "$G/tiny-hammer.bin" --trace "$T/o.jsonl" --stats >/dev/null 2>"$T/ostats"
exits=$(grep -oE '^total exits: [0-9]+' "$T/ostats" | grep -oE '[0-9]+$')
pycheck "ring overflow: lost records add up to every exit" "$LOAD"'
recs = load(sys.argv[1]); exits = int(sys.argv[2])
lost = [r for r in recs if r["kind"] == "lost"]
assert lost, "no lost record"
assert all(r["ring"] == "vcpu0" and r["count"] > 0 and isinstance(r["t"], int) for r in lost), lost[:2]
kept = len(recs) - len(lost)
assert kept + sum(r["count"] for r in lost) == exits, (kept, sum(r["count"] for r in lost), exits)
' "$T/o.jsonl" "${exits:-0}"
if grep -Eq '^trace: events=[0-9]+ lost=[1-9]' "$T/ostats"; then pass "--stats reports the loss"
else fail "--stats reports the loss" "$(grep trace: "$T/ostats")"; fi

# --- the audit log: a hammered denied port, coalesced ------------------------
timeout 120 "$V" run --kernel "$G/tiny-hammer.bin" --audit "$T/au.jsonl" --id vm-audit-1 --stats >/dev/null 2>"$T/astats"
pycheck "audit: 200000 denied reads in a few coalesced records" "$LOAD"'
import re
recs = load(sys.argv[1])
assert 1 <= len(recs) <= 30, len(recs)
r = recs[0]
want = {"vm": "vm-audit-1", "rule": "default", "resource": "pio", "verdict": "deny", "enforced": True, "vcpu": 0,
        "port": "0x1234", "access": "read", "value": "0xff"}
assert all(r.get(k, "missing") == v for k, v in want.items()), r
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", r["ts"]), r["ts"]
assert sum(x["count"] for x in recs) == 200000, sum(x["count"] for x in recs)
assert [x["ts"] for x in recs] == sorted(x["ts"] for x in recs)
' "$T/au.jsonl"
# Appended, never truncated: a second run adds its records (poweroff's
# probe of 0x1234, a byte and a word: two records, the widths apart).
before=$(wc -l <"$T/au.jsonl")
timeout 60 "$V" run --kernel "$G/tiny-poweroff.bin" --audit "$T/au.jsonl" >/dev/null 2>&1
after=$(wc -l <"$T/au.jsonl")
if [ "$after" -eq $((before + 2)) ]; then pass "audit log is appended to"; else fail "audit log is appended to" "$before -> $after lines"; fi
timeout 60 "$V" run --kernel "$G/tiny-wild.bin" --audit "$T/w.jsonl" >/dev/null 2>&1
pycheck "audit: MMIO and REP OUTS denials" "$LOAD"'
recs = load(sys.argv[1])
mm = [r for r in recs if r["resource"] == "mmio"]
assert mm and all(r["address"] == "0xd0000000" for r in mm), recs
assert {r["access"] for r in mm} == {"read", "write"}, mm
p80 = [r for r in recs if r.get("port") == "0x80"]
# one record per value written (coalescing keeps what was written)
assert p80 and sum(r["count"] for r in p80) == 8 and all(r["access"] == "write" for r in p80), p80
assert len({r["value"] for r in p80}) == len(p80), p80
' "$T/w.jsonl"

# --- a full disk: the records are counted, said once, and the VM runs on ----
timeout 60 "$V" run --kernel "$G/tiny-poweroff.bin" --trace /dev/full --audit /dev/full --stats >"$T/out" 2>"$T/full"
rc=$?
if [ $rc -eq 0 ] && grep -q "tiny: denied ok" "$T/out" && [ "$(grep -c 'cannot write' "$T/full")" -eq 2 ] &&
   grep -Eq '^trace: .*trace_lines=0 audit_lines=0 write_failed=[1-9]' "$T/full"; then pass "unwritable records counted, VM unharmed"
else fail "unwritable records counted, VM unharmed" "exit $rc: $(grep -v '^vcpu' "$T/full" | head -c 400)"; fi

# --- a cap on each file: past --log-max, records are dropped and counted ----
timeout 120 "$V" run --kernel "$G/tiny-hammer.bin" --trace "$T/cap.jsonl" --log-max 64K --stats >/dev/null 2>"$T/cap"
rc=$?
size=$(stat -c %s "$T/cap.jsonl" 2>/dev/null || echo missing)
if [ $rc -eq 0 ] && [ "$size" != missing ] && [ "$size" -le 65536 ] && grep -q 'reached its cap of 65536 bytes' "$T/cap" &&
   grep -Eq '^trace: .*write_failed=[1-9]' "$T/cap"; then pass "--log-max 64K: the trace stops at 64 KiB, the rest counted ($size bytes)"
else fail "--log-max caps the trace" "exit $rc, $size bytes: $(grep -E 'cap|^trace:' "$T/cap" | head -c 300)"; fi
timeout 60 "$V" run --kernel "$G/tiny-poweroff.bin" --log-max 1K >/dev/null 2>"$T/cap2"
if [ $? -ne 0 ] && grep -q "log-max '1K'" "$T/cap2"; then pass "--log-max below 4K refused"
else fail "--log-max below 4K refused" "$(head -c 200 "$T/cap2")"; fi

# --- the config file's keys ------------------------------------------------
cat >"$T/cfg.json" <<EOF
{"boot-source": {"kernel_image_path": "$G/tiny-poweroff.bin"}, "console": {"output": "none"},
 "trace": "$T/c.jsonl", "trace_filter": {"kind": ["pio"], "addr": ["0x1234"]}, "audit": "$T/ca.jsonl",
 "log_max": 1048576}
EOF
timeout 60 "$V" run --config-file "$T/cfg.json" --no-api >/dev/null 2>&1
pycheck "config file: trace, trace_filter (object), audit" "$LOAD"'
t = load(sys.argv[1]); a = load(sys.argv[2])
assert len(t) == 2 and all(r["addr"] == "0x1234" for r in t), t
assert len(a) == 2 and [r["value"] for r in a] == ["0xff", "0xffff"] and all(r["count"] == 1 for r in a), a
' "$T/c.jsonl" "$T/ca.jsonl"
sed 's/"kind": \["pio"\]/"kind": ["nope"]/' "$T/cfg.json" >"$T/bad.json"
expect_error "config file: bad trace_filter" "trace_filter: kind 'nope'" "$V" run --config-file "$T/bad.json" --no-api

# --- PUT /vigil/trace on a running guest -------------------------------------
SOCK=$T/api.sock
"$V" run --kernel "$G/tiny-count.bin" --console none --api-sock "$SOCK" >/dev/null 2>"$T/api.err" & pid=$!
pids+=("$pid")
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
put() { code=$(curl -s -o "$T/resp" -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" -X PUT --data "$2" "http://localhost$1"); }
put /vigil/trace "{\"path\": \"$T/live.jsonl\"}"
[ "$code" = 204 ] && pass "PUT /vigil/trace starts a trace" || fail "PUT /vigil/trace starts a trace" "HTTP $code $(cat "$T/resp")"
sleep 0.5
put /vigil/trace '{"filter": "kind=pio;addr=0x3f8"}'
[ "$code" = 204 ] && pass "PUT /vigil/trace refilters" || fail "PUT /vigil/trace refilters" "HTTP $code $(cat "$T/resp")"
sleep 0.5
put /vigil/trace '{"enabled": false}'
[ "$code" = 204 ] && pass "PUT /vigil/trace stops" || fail "PUT /vigil/trace stops" "HTTP $code $(cat "$T/resp")"
n1=$(wc -l <"$T/live.jsonl" 2>/dev/null || echo 0)
sleep 0.5
n2=$(wc -l <"$T/live.jsonl" 2>/dev/null || echo 0)
if [ "$n1" -gt 0 ] && [ "$n1" = "$n2" ]; then pass "the stopped trace no longer grows ($n1 lines)"
else fail "the stopped trace no longer grows" "$n1 then $n2 lines"; fi
pycheck "live trace: COM1 records, then only the filtered port" "$LOAD"'
recs = load(sys.argv[1])
assert recs and all(r["kind"] == "pio" and r["device"] == "com1" for r in recs), recs[:3]
addrs = [r["addr"] for r in recs]
last = max(i for i, a in enumerate(addrs) if a != "0x3f8") if any(a != "0x3f8" for a in addrs) else -1
assert last >= 0, "no unfiltered head (0x3fd, the LSR)"
assert addrs[last + 1:] and all(a == "0x3f8" for a in addrs[last + 1:]), "no filtered tail"
' "$T/live.jsonl"
for bad in '{"filter": "kind=zz"}' '{"enabled": true}' '{"path": 3}' '{"bogus": 1}' '{"path": "/nonexistent/x"}' '{}'; do
    put /vigil/trace "$bad"
    if [ "$code" = 400 ] && grep -q fault_message "$T/resp"; then pass "PUT /vigil/trace $bad: 400"
    else fail "PUT /vigil/trace $bad: 400" "HTTP $code $(cat "$T/resp")"; fi
done
put /vigil/audit "{\"path\": \"$T/live-audit.jsonl\"}"
[ "$code" = 204 ] && pass "PUT /vigil/audit starts the audit log" || fail "PUT /vigil/audit starts" "HTTP $code $(cat "$T/resp")"
put /vigil/audit '{"path": null}'
[ "$code" = 204 ] && pass "PUT /vigil/audit stops it" || fail "PUT /vigil/audit stops it" "HTTP $code $(cat "$T/resp")"
code=$(curl -s -o "$T/resp" -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" "http://localhost/vigil/stats")
pycheck "GET /vigil/stats has trace totals" '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["trace"]["events"] > 0 and s["trace"]["lost"] == 0, s["trace"]
assert "records" in s["audit"], s["audit"]
' "$T/resp"
code=$(curl -s -o "$T/prom" -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" "http://localhost/metrics")
if grep -Eq '^vigil_trace_events_total [1-9]' "$T/prom" && grep -q '^vigil_trace_lost_total 0' "$T/prom"; then pass "GET /metrics has the trace counters"
else fail "GET /metrics has the trace counters" "$(grep -E 'trace|audit' "$T/prom" | head -c 300)"; fi
# vigil ctl: the same calls, a relative path resolved in the caller's directory.
(cd "$T" && "$OLDPWD/$V" ctl --api-sock "$SOCK" trace ctl.jsonl "kind=pio") >"$T/ctl.out" 2>&1; r1=$?
sleep 0.5
"$V" ctl --api-sock "$SOCK" trace filter "kind=zz" >"$T/ctl.bad" 2>&1; r2=$?
"$V" ctl --api-sock "$SOCK" trace off >>"$T/ctl.out" 2>&1; r3=$?
if [ $r1 = 0 ] && [ $r3 = 0 ] && [ $r2 = 1 ] && grep -q "^vigil: filter: kind 'zz'" "$T/ctl.bad" && [ -s "$T/ctl.jsonl" ]; then
    pass "vigil ctl trace PATH FILTER / trace filter / trace off"
else fail "vigil ctl trace" "rc $r1 $r2 $r3: $(cat "$T/ctl.out" "$T/ctl.bad" | head -c 300)"; fi
"$V" ctl --api-sock "$SOCK" audit "$T/ctl-audit.jsonl" >/dev/null 2>&1 && "$V" ctl --api-sock "$SOCK" audit off >/dev/null 2>&1 &&
    pass "vigil ctl audit PATH / audit off" || fail "vigil ctl audit" "exit status"
kill -TERM "$pid"; wait "$pid" 2>/dev/null

echo "trace: $passed passed, $failed failed"
[ $failed -eq 0 ]
