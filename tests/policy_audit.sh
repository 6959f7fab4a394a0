#!/bin/bash
# The policy's audit trail on this host's own KVM, with tiny guests:
#  - a port write denied is audited (rule, resource, port, access, vCPU,
#    enforced, RFC 3339 ts, the VM's id), coalesced into counted records;
#  - permissive mode provides it (the guest's output appears) and audits the
#    very same decisions with "enforced": false — the same total count;
#  - an MSR read denied (#GP in the guest) and one redirected, audited;
#  - a CPUID redirect, audited once when the vCPUs are made;
#  - a policy swapped live, over and over, under a guest exiting at full
#    speed (each exit decided by the policy in force), with the vigil given
#    (run it with the ASan and the TSan builds: check.sh does).
# Usage: tests/policy_audit.sh VIGIL GUESTS_DIR [live-only]
# Prints "policy-audit: N passed, N failed".
set -u
V=$1
G=$2
ONLY=${3:-}
T=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# audit_check NAME FILE PYTHON-EXPR: every record is well-formed, and EXPR
# (over `recs`, the list of records) holds; prints EXPR's value on failure.
audit_check() {
    local name=$1 file=$2 expr=$3
    local out
    if out=$(python3 - "$file" "$expr" 2>&1 <<'EOF'
import json, re, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ts = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
for r in recs:
    assert ts.match(r["ts"]), f"ts {r['ts']!r}"
    assert r["vm"] == "audit-vm", f"vm {r.get('vm')!r}"
    assert isinstance(r["count"], int) and r["count"] >= 1, r
    assert isinstance(r["enforced"], bool), r
ok = eval(sys.argv[2], {"recs": recs})
if not ok:
    print(json.dumps(recs)[:600])
    sys.exit(1)
EOF
    ); then pass "$name"; else fail "$name" "$out"; fi
}

run() { # run NAME GUEST POLICY-FILE EXTRA...: stdout $T/out, stderr $T/err, $rc
    local guest=$2 pol=$3; shift 3
    rm -f "$T/audit.jsonl"
    timeout 120 "$V" run --id audit-vm --kernel "$G/tiny-$guest.bin" --policy "$pol" --audit "$T/audit.jsonl" "$@" \
        >"$T/out" 2>"$T/err" </dev/null
    rc=$?
}

if [ -z "$ONLY" ]; then
# --- a port write denied, then the same policy permissive -----------------
printf '{"mode":"enforce","rules":[{"id":"mute-com1","resource":"pio","ports":"0x3f8","access":"write","verdict":"deny"}]}\n' >"$T/mute.json"
sed 's/enforce/permissive/' "$T/mute.json" >"$T/mute-perm.json"
run mute poweroff "$T/mute.json"
if [ $rc = 0 ] && ! grep -q tiny: "$T/out"; then pass "enforce: COM1 writes denied (no output)"
else fail "enforce: COM1 writes denied" "exit $rc $(head -c 200 "$T/out") $(tail -c 200 "$T/err")"; fi
audit_check "enforce: denied writes audited" "$T/audit.jsonl" \
  'any(r["rule"]=="mute-com1" and r["resource"]=="pio" and r["verdict"]=="deny" and r["enforced"] is True and r["port"]=="0x3f8" and r["access"]=="write" and r["vcpu"]==0 for r in recs)'
cp "$T/audit.jsonl" "$T/enforce.jsonl"
audit_check "enforce: the unclaimed probe audited under the default" "$T/audit.jsonl" \
  'any(r["rule"]=="default" and r["port"]=="0x1234" and r["verdict"]=="deny" for r in recs)'
run mute-perm poweroff "$T/mute-perm.json"
if [ $rc = 0 ] && grep -q "tiny: denied ok" "$T/out"; then pass "permissive: COM1 writes provided (output appears)"
else fail "permissive: COM1 writes provided" "exit $rc $(head -c 200 "$T/out") $(tail -c 200 "$T/err")"; fi
audit_check "permissive: the same decisions audited, enforced false" "$T/audit.jsonl" \
  'all(r["enforced"] is False for r in recs if r["rule"]=="mute-com1") and any(r["rule"]=="mute-com1" and r["verdict"]=="deny" for r in recs)'
n_enf=$(python3 -c 'import json,sys; print(sum(json.loads(l)["count"] for l in open(sys.argv[1]) if json.loads(l)["rule"]=="mute-com1"))' "$T/enforce.jsonl")
n_perm=$(python3 -c 'import json,sys; print(sum(json.loads(l)["count"] for l in open(sys.argv[1]) if json.loads(l)["rule"]=="mute-com1"))' "$T/audit.jsonl")
if [ "$n_enf" -gt 0 ] && [ "$n_enf" = "$n_perm" ]; then pass "permissive audits as many writes as enforce denies ($n_perm)"
else fail "permissive audits as many writes as enforce denies" "enforce $n_enf, permissive $n_perm"; fi

# --- MSRs -------------------------------------------------------------------
printf '{"rules":[{"id":"no-tsc","resource":"msr","msrs":"0x10","access":"read","verdict":"deny"}]}\n' >"$T/msr-deny.json"
run msr-deny msr "$T/msr-deny.json"
if [ $rc = 0 ] && grep -q "gp" "$T/out"; then pass "msr read denied: the guest saw #GP"
else fail "msr read denied" "exit $rc $(cat "$T/out")"; fi
audit_check "msr read denied: audited" "$T/audit.jsonl" \
  'any(r["rule"]=="no-tsc" and r["resource"]=="msr" and r["msr"]=="0x10" and r["access"]=="read" and r["verdict"]=="deny" and r["vcpu"]==0 for r in recs)'
printf '{"rules":[{"id":"fake-tsc","resource":"msr","msrs":"0x10","access":"read","verdict":"redirect","value":"0x1122334455667788"}]}\n' >"$T/msr-redir.json"
run msr-redir msr "$T/msr-redir.json"
if [ $rc = 0 ] && grep -qi "1122334455667788" "$T/out"; then pass "msr read redirected: the guest read the value"
else fail "msr read redirected" "exit $rc $(cat "$T/out")"; fi
audit_check "msr read redirected: audited" "$T/audit.jsonl" \
  'any(r["rule"]=="fake-tsc" and r["verdict"]=="redirect" and r["msr"]=="0x10" for r in recs)'

# --- CPUID ------------------------------------------------------------------
printf '{"rules":[{"id":"vig1","resource":"cpuid","leaf":"0x40000010","verdict":"redirect","registers":{"eax":"0x76696731"}}]}\n' >"$T/cpuid.json"
run cpuid cpuid "$T/cpuid.json"
if [ $rc = 0 ] && ! grep -q FAILED "$T/out"; then pass "cpuid redirected: the guest read the value"
else fail "cpuid redirected" "exit $rc $(cat "$T/out")"; fi
audit_check "cpuid redirect: audited once at build" "$T/audit.jsonl" \
  'sum(1 for r in recs if r["rule"]=="vig1" and r["resource"]=="cpuid" and r["leaf"]=="0x40000010" and r["verdict"]=="redirect" and r["enforced"] is True)==1'
fi

# --- a policy swapped live under a guest exiting at full speed -------------
# tiny-pioloop reads COM1's scratch register 256 Ki times (one exit each,
# each decided by the policy in force) and powers off; meanwhile two
# policies that decide that port differently replace each other.
printf '{"rules":[{"id":"watch","resource":"pio","ports":"0x3ff","verdict":"provide","audit":true}]}\n' >"$T/live-a.json"
printf '{"rules":[{"id":"fixed","resource":"pio","ports":"0x3ff","access":"read","verdict":"redirect","value":"0x5a"},{"id":"m","resource":"mmio","addresses":"0xe0000000-0xe0000fff","verdict":"deny"}]}\n' >"$T/live-b.json"
SOCK=$T/api.sock
rm -f "$T/audit.jsonl"
"$V" run --id audit-vm --api-sock "$SOCK" --kernel "$G/tiny-pioloop.bin" --policy "$T/live-a.json" \
    --audit "$T/audit.jsonl" --stats >"$T/out" 2>"$T/err" </dev/null &
VPID=$!; pids+=($VPID)
swaps=0 refused=0
for i in $(seq 400); do
    kill -0 $VPID 2>/dev/null || break
    [ -S "$SOCK" ] || { sleep 0.02; continue; }
    f=$T/live-a.json; [ $((i % 2)) = 0 ] && f=$T/live-b.json
    code=$(curl -s -o "$T/body" -w '%{http_code}' --unix-socket "$SOCK" -X PUT http://localhost/policy --data @"$f" 2>/dev/null)
    case $code in
    204) swaps=$((swaps + 1)) ;;
    000) ;;
    400) grep -q 'shutting down' "$T/body" || { refused=$((refused + 1)); echo "refused: $(head -c 200 "$T/body")" >>"$T/refusals"; } ;;
    *) refused=$((refused + 1)); echo "refused ($code): $(head -c 200 "$T/body")" >>"$T/refusals" ;;
    esac
done
wait $VPID; rc=$?
exits=$(grep -oE '^vcpu0 port 0x3ff com1: [0-9]+' "$T/err" | grep -oE '[0-9]+$')
if [ $rc = 0 ] && [ "$swaps" -ge 10 ] && [ "$refused" = 0 ] && [ "${exits:-0}" -ge 262144 ]; then
    pass "live swaps under full-speed exits: $swaps swaps, ${exits} exits decided, guest finished"
else fail "live swaps under full-speed exits" "exit $rc, $swaps swaps, $refused refused $(head -c 300 "$T/refusals" 2>/dev/null), exits ${exits:-?}: $(grep -v '^vcpu\|^device\|^total\|^policy\|^vm \|^net\|^trace' "$T/err" | head -c 400)"; fi
audit_check "live swaps: the audited rule's records survive the swaps" "$T/audit.jsonl" \
  'any(r["rule"]=="watch" and r["verdict"]=="provide" for r in recs)'

echo "policy-audit: $passed passed, $failed failed"
[ "$failed" = 0 ]
