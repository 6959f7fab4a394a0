#!/bin/bash
# The KVM side of the policy and of the monitor, on this host's /dev/kvm
# with tiny guests (tests/guests/tiny.S) and --policy files:
#  - msr rules through KVM's MSR filter: a read denied (#GP in the guest),
#    a read redirected to a value, a write denied, permissive mode and an
#    audited provide giving the guest the real MSR; the filter's refusals;
#  - cpuid rules in the vCPU's CPUID table (leaf 1's hypervisor bit
#    cleared, a leaf KVM lacks added);
#  - a policy swapped live (PUT /policy): the filter set, kept when a
#    policy is refused, cleared;
#  - KVM's own exit counts (binary statistics) in --stats, GET /vigil/stats
#    and GET /metrics, and the plain word when the host lacks them.
# Usage: tests/kvm_policy.sh BUILD_DIR. Prints "kvm-policy: N passed, N failed".
set -u
B=${1:-build}
V=$B/vigil
G=$B/tests/guests
T=$(mktemp -d)
passed=0 failed=0
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# run_guest NAME GUEST POLICY-JSON|"" [ARGS...]: runs it; stdout in $T/out, stderr in $T/err, $rc.
run_guest() {
    local name=$1 guest=$2 pol=$3; shift 3
    local args=(run --kernel "$G/tiny-$guest.bin" "$@")
    if [ -n "$pol" ]; then printf '%s\n' "$pol" >"$T/$name.json"; args+=(--policy "$T/$name.json"); fi
    timeout 60 "$V" "${args[@]}" >"$T/out" 2>"$T/err" </dev/null; rc=$?
}
# expect_out NAME PATTERN...: exit 0 and stdout has every pattern.
expect_out() {
    local name=$1; shift
    if [ "$rc" != 0 ]; then fail "$name" "exit $rc: $(tail -c 300 "$T/err")"; return; fi
    for pat in "$@"; do
        grep -q -- "$pat" "$T/out" || { fail "$name" "stdout lacks '$pat': $(cat "$T/out")"; return; }
    done
    pass "$name"
}
# expect_refused NAME PATTERN: exit 1 with exactly one stderr line matching.
expect_refused() {
    local name=$1 pat=$2
    local lines; lines=$(wc -l <"$T/err")
    if [ "$rc" != 1 ]; then fail "$name" "exit $rc, want 1: $(head -c 300 "$T/err")"
    elif [ "$lines" != 1 ]; then fail "$name" "$lines stderr lines, want 1: $(head -c 400 "$T/err")"
    elif ! grep -q -- "$pat" "$T/err"; then fail "$name" "stderr lacks '$pat': $(cat "$T/err")"
    else pass "$name"; fi
}
msr_rule() { # msr_rule ID MSRS ACCESS VERDICT [EXTRA-JSON]
    printf '{"id": "%s", "resource": "msr", "msrs": %s, "access": "%s", "verdict": "%s"%s}' "$1" "$2" "$3" "$4" "${5-}"
}

# --- MSRs -------------------------------------------------------------------
run_guest "msr untouched without a policy" msr "" --stats
if [ $rc = 0 ] && grep -q "tiny: msr read 0x" "$T/out" && grep -q "tiny: msr write ok" "$T/out" &&
   ! grep -q "msr 0x10" "$T/err"; then pass "msr untouched without a policy (KVM serves it, no exit)"
else fail "msr untouched without a policy" "$rc $(cat "$T/out") $(grep msr "$T/err")"; fi

run_guest "msr read denied" msr "{\"rules\": [$(msr_rule no-tsc '"0x10"' read deny)]}" --stats
expect_out "msr read denied: the guest sees #GP" "tiny: msr read gp" "tiny: msr write ok"
if grep -Eq '^vcpu0 msr 0x10.*: 1 denied=1' "$T/err"; then pass "msr read denied: counted as denied"
else fail "msr read denied: counted as denied" "$(grep msr "$T/err")"; fi

run_guest "msr read redirected" msr "{\"rules\": [$(msr_rule fixed-tsc '["0x10"]' read redirect ', "value": "0x1234abcd5678"')]}"
expect_out "msr read redirected to a value" "tiny: msr read 0x00001234abcd5678" "tiny: msr write ok"

run_guest "msr write denied" msr "{\"rules\": [$(msr_rule no-kgs '"0xc0000102"' write deny)]}"
if [ $rc = 0 ] && grep -q "tiny: msr write gp" "$T/out" && grep -q "tiny: msr read 0x" "$T/out" &&
   ! grep -q "tiny: msr read 0x00001234abcd5678" "$T/out"; then pass "msr write denied: #GP, the read is KVM's"
else fail "msr write denied" "$rc $(cat "$T/out")"; fi

run_guest "msr permissive" msr "{\"mode\": \"permissive\", \"rules\": [$(msr_rule no-tsc '"0x10"' any deny), $(msr_rule no-kgs '"0xc0000102"' any deny)]}" --stats
if [ $rc = 0 ] && grep -q "tiny: msr read 0x" "$T/out" && ! grep -q "tiny: msr read 0x0000000000000000" "$T/out" &&
   grep -q "tiny: msr write ok" "$T/out" && grep -Eq '^vcpu0 msr 0x10.*: 1$' "$T/err" &&
   grep -Eq '^vcpu0 msr 0xc0000102.*: 1$' "$T/err"; then
    pass "msr permissive: filtered (seen by vigil), real value provided, no #GP"
else fail "msr permissive" "$rc $(cat "$T/out") $(grep msr "$T/err")"; fi

run_guest "msr provide audited" msr "{\"rules\": [$(msr_rule watch-tsc '"0x10"' any provide ', "audit": true')]}" --stats
if [ $rc = 0 ] && grep -q "tiny: msr read 0x" "$T/out" && ! grep -q "tiny: msr read gp" "$T/out" &&
   ! grep -q "tiny: msr read 0x0000000000000000" "$T/out" && grep -Eq '^vcpu0 msr 0x10.*: 1$' "$T/err"; then
    pass "msr provide of a filtered MSR: the guest reads the real value"
else fail "msr provide audited" "$rc $(cat "$T/out") $(grep msr "$T/err")"; fi

# A provided MSR reaches KVM through its host path (KVM_SET_MSRS), which
# lets the host write what a guest may not. The guest must get KVM's guest
# answers all the same: the same lines as with no policy at all, while
# every access was trapped and counted.
PRIV='["0x10a", "0x345", "0x9e", "0x8b", "0xc0000080", "0x1b", "0x401", "0xc0000102"]'
run_guest "msrpriv native" msrpriv ""
cp "$T/out" "$T/msrpriv.native"
native_ok=$rc
for how in audit permissive; do
    if [ $how = audit ]; then pol="{\"rules\": [$(msr_rule watch "$PRIV" any provide ', "audit": true')]}"
    else pol="{\"mode\": \"permissive\", \"rules\": [$(msr_rule trap "$PRIV" any deny)]}"; fi
    run_guest "msrpriv $how" msrpriv "$pol" --stats
    if [ $native_ok = 0 ] && [ $rc = 0 ] && [ "$(grep -c 'tiny: msrpriv' "$T/out")" = 15 ] &&
       cmp -s "$T/out" "$T/msrpriv.native" && grep -Eq '^vcpu0 msr 0x10a .*: 1( |$)' "$T/err" &&
       grep -Eq '^vcpu0 msr 0xc0000080 .*: 5( |$)' "$T/err"; then
        pass "msr provided under $how: host-only writes, EFER and APIC-base games get the guest's answers"
    else fail "msr provided under $how" "$rc; $(diff "$T/msrpriv.native" "$T/out" | tr '\n' '|') $(grep 'msr 0x' "$T/err" | tr '\n' ' ')"; fi
done

# A TSC or TSC_ADJUST write moves the other (and the TSC offset) for a
# guest, where KVM's host path only stores it: under an audit of the writes
# the guest must see what it sees without a policy. (On kvm_pvm the guest's
# TSC reads do not show its offset: "moved the tsc no" there, natively too.)
run_guest "tscwrite native" tscwrite ""
cp "$T/out" "$T/tscwrite.native"
native_ok=$rc
for how in audit permissive; do
    if [ $how = audit ]; then pol="{\"rules\": [$(msr_rule watch-tsc '["0x10", "0x3b"]' write provide ', "audit": true')]}"
    else pol="{\"mode\": \"permissive\", \"rules\": [$(msr_rule trap-tsc '["0x10", "0x3b"]' write deny)]}"; fi
    run_guest "tscwrite $how" tscwrite "$pol" --stats
    if [ $native_ok = 0 ] && [ $rc = 0 ] && [ "$(grep -c 'tiny: tsc' "$T/out")" = 4 ] &&
       grep -q 'tiny: tsc write moved tsc_adjust yes' "$T/out" && cmp -s "$T/out" "$T/tscwrite.native" &&
       grep -Eq '^vcpu0 msr 0x10 .*: 1( |$)' "$T/err" && grep -Eq '^vcpu0 msr 0x3b .*: 1( |$)' "$T/err"; then
        pass "tsc writes provided under $how move the offset and TSC_ADJUST as for the guest"
    else fail "tsc writes provided under $how" "$rc; $(diff "$T/tscwrite.native" "$T/out" | tr '\n' '|') $(grep 'msr 0x' "$T/err" | tr '\n' ' ')"; fi
done

# A wall-clock redirect hides kvmclock from CPUID; KVM must also refuse its
# MSRs (KVM_CAP_ENFORCE_PV_FEATURE_CPUID), or a guest that writes
# MSR_KVM_WALL_CLOCK_NEW anyway reads the host's date there.
run_guest "kvmclock without a policy" wallclock ""
if [ $rc = 0 ] && grep -q "tiny: kvmclock sec=" "$T/out"; then pass "kvmclock's wall clock without a policy: the MSR works"
else fail "kvmclock without a policy" "$rc $(cat "$T/out")"; fi
run_guest "kvmclock under an rtc redirect" wallclock \
    '{"rules": [{"id": "fixed-clock", "resource": "rtc", "verdict": "redirect", "epoch": "2000-01-01T00:00:00Z"}]}'
if [ $rc = 0 ] && grep -q "tiny: kvmclock gp" "$T/out"; then
    pass "kvmclock's MSRs fault under a wall-clock redirect (the host's date stays hidden)"
else fail "kvmclock under an rtc redirect" "$rc $(cat "$T/out")"; fi

run_guest "msr x2APIC only" msr "{\"rules\": [$(msr_rule apic '"0x800-0x8ff"' any deny)]}"
expect_refused "msr rule only on x2APIC MSRs refused" "apic.*x2APIC"

run_guest "msr x2APIC partly" msr "{\"rules\": [$(msr_rule wide '"0x10-0x900"' read deny)]}"
expect_refused "msr rule partly on x2APIC MSRs refused (KVM would not enforce all of it)" "wide.*x2APIC"

run_guest "msr all but one" msr "{\"rules\": [$(msr_rule low '"0x0-0xf"' any deny), $(msr_rule mid '"0x11-0x7ff"' any deny), $(msr_rule rest '"0x900-0xffffffff"' any deny)]}" --stats
if [ $rc = 0 ] && grep -q "tiny: msr read 0x" "$T/out" && ! grep -q "tiny: msr read gp" "$T/out" &&
   grep -q "tiny: msr write gp" "$T/out" && ! grep -q "msr 0x10 " "$T/err"; then
    pass "every MSR but one denied (a default-deny filter): 0x10 is KVM's, 0xc0000102 gets #GP"
else fail "every MSR but one denied" "$rc $(cat "$T/out") $(grep -i msr "$T/err")"; fi

rules=""
for i in $(seq 1 17); do rules+="${rules:+, }$(msr_rule "far$i" "\"$(printf '0x%x' $((i * 0x100000)))\"" any deny)"; done
run_guest "msr too many ranges" msr "{\"rules\": [$rules]}"
expect_refused "msr rules needing 17 filter ranges refused" "17 ranges.*at most 16"
timeout 20 "$V" policy check "$T/msr too many ranges.json" >"$T/out" 2>"$T/err" </dev/null; rc=$?
expect_refused "vigil policy check refuses them too" "17 ranges.*at most 16"

# --- CPUID ------------------------------------------------------------------
run_guest "cpuid without a policy" cpuid ""
expect_out "cpuid without a policy: hypervisor bit set, leaf 0x40000010 not redirected" \
    "tiny: cpuid hypervisor bit set" "tiny: cpuid redirect FAILED"
run_guest "cpuid redirected" cpuid '{"rules": [
  {"id": "nohv", "resource": "cpuid", "leaf": 1, "verdict": "redirect", "registers": {"ecx": "0b0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}},
  {"id": "sig", "resource": "cpuid", "leaf": "0x40000010", "verdict": "redirect", "registers": {"eax": "0x76696731"}}]}' --cpus 2
expect_out "cpuid redirected: hypervisor bit cleared, a leaf KVM lacks added" \
    "tiny: cpuid hypervisor bit clear" "tiny: cpuid redirect ok"

# --- KVM's own counts -------------------------------------------------------
run_guest "kvm stats" poweroff "" --stats --cpus 2
if [ $rc = 0 ] && grep -Eq '^vcpu0 kvm: .*\bexits=[1-9][0-9]*' "$T/err" && grep -Eq '^vcpu1 kvm: .*\bexits=' "$T/err" &&
   grep -Eq '^vm kvm: ' "$T/err" && grep -Eq '^total kvm exits: [1-9]' "$T/err" && grep -Eq 'halt_exits=' "$T/err"; then
    pass "--stats shows KVM's own exit counts"
else fail "--stats shows KVM's own exit counts" "$rc $(grep kvm "$T/err")"; fi
VIGIL_TEST_NO_KVM_STATS=1 run_guest "kvm stats off" poweroff "" --stats
if [ $rc = 0 ] && grep -q '^vm kvm: unavailable: host kernel lacks KVM_CAP_BINARY_STATS_FD$' "$T/err" &&
   ! grep -q '^vcpu0 kvm:' "$T/err"; then pass "--stats says plainly when KVM's statistics are missing"
else fail "--stats without KVM statistics" "$(grep kvm "$T/err")"; fi

# get SOCK PATH: the body of a GET over the API socket.
get() { curl -s --max-time 10 --unix-socket "$1" "http://localhost$2"; }
wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done; return 1; }
api_vm() { # api_vm SOCK [ENV...]: a counting guest with an API socket, in the background
    local sock=$1; shift
    env "$@" "$V" run --kernel "$G/tiny-count.bin" --console none --api-sock "$sock" >/dev/null 2>"$T/api-err" </dev/null &
    pids+=($!)
    wait_sock "$sock"
}
if api_vm "$T/api.sock"; then
    sleep 0.3
    get "$T/api.sock" /vigil/stats >"$T/stats.json"
    if python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["kvm"]
assert isinstance(d["vm"], dict) and d["vm"], d
assert len(d["vcpus"]) == 1 and d["vcpus"][0]["exits"] > 0, d
' "$T/stats.json" 2>"$T/py"; then pass "GET /vigil/stats carries KVM's counts (kvm.vm, kvm.vcpus[].exits)"
    else fail "GET /vigil/stats kvm" "$(cat "$T/py") $(head -c 300 "$T/stats.json")"; fi
    a=$(get "$T/api.sock" /vigil/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["kvm"]["vcpus"][0]["exits"])')
    sleep 0.3
    b=$(get "$T/api.sock" /vigil/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["kvm"]["vcpus"][0]["exits"])')
    if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ]; then pass "KVM's counts read live grow while the guest runs ($a -> $b)"
    else fail "KVM's counts read live" "'$a' -> '$b'"; fi
    get "$T/api.sock" /metrics >"$T/metrics"
    if grep -Eq '^vigil_kvm_vcpu_stat\{vcpu="0",name="exits"\} [1-9]' "$T/metrics" &&
       grep -Eq '^vigil_kvm_vm_stat\{name="[a-z_]+"\} [0-9]+$' "$T/metrics" &&
       grep -q '^# TYPE vigil_kvm_vcpu_stat untyped' "$T/metrics" && grep -q '^vigil_kvm_stats_available 1' "$T/metrics"; then
        pass "GET /metrics carries KVM's counts"
    else fail "GET /metrics kvm" "$(grep kvm "$T/metrics" | head -5)"; fi
else fail "API VM starts" "$(cat "$T/api-err")"; fi
if api_vm "$T/api2.sock" VIGIL_TEST_NO_KVM_STATS=1; then
    sleep 0.2
    get "$T/api2.sock" /vigil/stats >"$T/stats2.json"
    if python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["kvm"]
assert d == {"unavailable": "host kernel lacks KVM_CAP_BINARY_STATS_FD"}, d
' "$T/stats2.json" 2>"$T/py"; then pass "GET /vigil/stats says when KVM's statistics are missing"
    else fail "GET /vigil/stats kvm unavailable" "$(cat "$T/py")"; fi
    if get "$T/api2.sock" /metrics | grep -q '^vigil_kvm_stats_available 0'; then pass "GET /metrics: vigil_kvm_stats_available 0"
    else fail "GET /metrics without KVM statistics" "$(get "$T/api2.sock" /metrics | grep kvm)"; fi
else fail "API VM without KVM statistics starts" "$(cat "$T/api-err")"; fi

# --- a policy swapped live: the MSR filter follows (PUT /policy) ------------
put() { curl -s -o "$T/put" -w '%{http_code}' --max-time 10 --unix-socket "$1" -X PUT --data "$3" "http://localhost$2"; }
# seen_since OFFSET CHAR SECONDS: CHAR appears in the console file past OFFSET in time.
seen_since() {
    for _ in $(seq $(($3 * 10))); do tail -c +"$1" "$T/live.con" 2>/dev/null | grep -q -- "$2" && return 0; sleep 0.1; done
    return 1
}
"$V" run --kernel "$G/tiny-msrloop.bin" --console "file:$T/live.con" --api-sock "$T/live.sock" >/dev/null 2>"$T/live.err" </dev/null &
LPID=$!; pids+=($LPID)
if wait_sock "$T/live.sock" && seen_since 1 '\.' 20; then
    code=$(put "$T/live.sock" /policy "{\"rules\": [$(msr_rule no-tsc '"0x10"' read deny)]}")
    off=$(($(stat -c %s "$T/live.con") + 1))
    if [ "$code" = 204 ] && seen_since "$off" G 20; then pass "PUT /policy with an msr deny: the running guest gets #GP"
    else fail "live msr deny" "HTTP $code $(cat "$T/put"); console $(tail -c 80 "$T/live.con")"; fi
    rules=""
    for i in $(seq 1 17); do rules+="${rules:+, }$(msr_rule "far$i" "\"$(printf '0x%x' $((i * 0x100000)))\"" any deny)"; done
    code=$(put "$T/live.sock" /policy "{\"rules\": [$rules]}")
    off=$(($(stat -c %s "$T/live.con") + 1))
    if [ "$code" = 400 ] && grep -q '"fault_message".*17 ranges' "$T/put" && seen_since "$off" G 20; then
        pass "PUT /policy needing 17 filter ranges: 400, the old policy (and filter) stay"
    else fail "live msr refused" "HTTP $code $(cat "$T/put"); console $(tail -c 80 "$T/live.con")"; fi
    code=$(put "$T/live.sock" /policy '{"rules": []}')
    sleep 0.3
    off=$(($(stat -c %s "$T/live.con") + 1))
    if [ "$code" = 204 ] && seen_since "$off" '\.' 20 && ! (sleep 1; tail -c +"$((off + 2))" "$T/live.con" | grep -q G); then
        pass "PUT /policy without msr rules: the filter is cleared, reads are KVM's again"
    else fail "live msr cleared" "HTTP $code $(cat "$T/put"); console $(tail -c 80 "$T/live.con")"; fi
else fail "live msr VM starts" "$(cat "$T/live.err") $(tail -c 80 "$T/live.con" 2>&1)"; fi
kill -TERM "$LPID" 2>/dev/null

echo "kvm-policy: $passed passed, $failed failed"
[ "$failed" = 0 ]
