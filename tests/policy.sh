#!/bin/bash
# The policy file end to end, on this host's /dev/kvm with tiny guests:
#  - every example in docs/POLICY.md and docs/policies/ against the schema
#    and `vigil policy check` (tests/policy_docs.py, Debian's python3-jsonschema);
#  - bad policies (issue 7's list) refused with one line naming the rule and
#    the field and exit 1: by `vigil policy check`, by `vigil run --policy`,
#    through the config file, and on the API (400, the old policy kept);
#  - a policy given with --policy takes effect on a guest (COM1 writes
#    denied: no output, counted), permissive mode provides what enforce denies;
#  - PUT /policy swapped into a running guest, GET /policy, hit counts in
#    /vigil/stats and /metrics, cpuid rules fixed after the start.
# Usage: tests/policy.sh BUILD_DIR   Prints "policy: N passed, N failed".
set -u
B=${1:-build}
V=$B/vigil
G=$B/tests/guests
T=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    chmod -R u+w "$T" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# expect_error NAME PATTERN CMD...: exit 1, exactly one stderr line matching PATTERN.
expect_error() {
    local name=$1 pat=$2; shift 2
    timeout 60 "$@" >"$T/out" 2>"$T/err" </dev/null; local rc=$?
    local lines; lines=$(wc -l <"$T/err")
    if [ $rc -ne 1 ]; then fail "$name" "exit $rc, want 1 ($(head -c 200 "$T/err"))"
    elif [ "$lines" -ne 1 ]; then fail "$name" "$lines stderr lines, want 1: $(head -c 300 "$T/err")"
    elif ! grep -qF -- "$pat" "$T/err"; then fail "$name" "stderr lacks '$pat': $(cat "$T/err")"
    else pass "$name"; fi
}

# --- the docs' examples ---------------------------------------------------
if /usr/bin/python3 -c 'import jsonschema' 2>/dev/null; then
    /usr/bin/python3 tests/policy_docs.py "$V" . >"$T/docs" 2>&1
    line=$(grep -E '^policy-docs: [0-9]+ passed' "$T/docs")
    grep '^FAIL' "$T/docs"
    p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+') f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
    if [ -n "$line" ] && [ "$f" = 0 ]; then pass "docs: $p checks of every example (schema and vigil)"
    else fail "docs examples" "$(tail -5 "$T/docs")"; fi
else
    fail "docs examples" "Debian's python3-jsonschema is missing (scripts/setup installs it)"
fi

# --- bad policies ---------------------------------------------------------
mkdir -p "$T/ro" && chmod 555 "$T/ro"
bad() { # bad NAME EXPECTED-TEXT: $T/bad/NAME.json holds the policy
    local name=$1 want=$2 f=$T/bad/$1.json
    expect_error "policy check refuses $name" "vigil: $want" "$V" policy check "$f"
    expect_error "run --policy refuses $name" "vigil: $want" "$V" run --kernel "$G/tiny-poweroff.bin" --policy "$f"
}
mkdir -p "$T/bad"
rule() { printf '{"rules":[%s]}\n' "$1" >"$T/bad/$2.json"; }
rule '{"id":"gpu","resource":"gpu","verdict":"deny"}' unknown-resource
rule '{"id":"ok","resource":"pio","ports":1,"verdict":"deny"},{"id":"com2","resource":"pio","prots":"0x2f8","verdict":"deny"}' unknown-field
rule '{"id":"t","resource":"pio","ports":{"from":1},"verdict":"deny"}' wrong-type
rule '{"id":"t","resource":"pio","ports":1,"verdict":"deny","audit":"yes"}' wrong-type-audit
printf '{"rules":{"id":"a"}}\n' >"$T/bad/rules-not-array.json"
rule '{"id":"twice","resource":"pio","ports":["0x3f8-0x3ff","0x3fa"],"verdict":"deny"}' overlapping
rule '{"id":"a","resource":"pio","ports":1,"verdict":"deny"},{"id":"b","resource":"pio","ports":2,"verdict":"deny"},{"id":"com2","resource":"pio","ports":"0x3ff-0x3f8","verdict":"deny"}' reversed
rule '{"id":"a","resource":"pio","ports":1,"verdict":"deny"},{"id":"a","resource":"pio","ports":2,"verdict":"deny"}' duplicate-ids
rule '{"id":"nowhere","resource":"pio","ports":"0x80","verdict":"redirect"}' redirect-no-target
rule "{\"id\":\"cow\",\"resource\":\"disk\",\"drive\":\"rootfs\",\"verdict\":\"redirect\",\"overlay\":\"$T/ro/o.img\"}" overlay-ro
rule '{"resource":"pio","ports":1,"verdict":"deny"}' missing-id
/usr/bin/python3 -c 'import sys; sys.stdout.write("{\"rules\":[" + ",".join("{\"id\":\"r%d\",\"resource\":\"pio\",\"ports\":%d,\"verdict\":\"deny\"}" % (i, i % 65536) for i in range(100000)) + "]}")' >"$T/bad/100k-rules.json"
/usr/bin/python3 -c 'import sys; sys.stdout.write("{\"rules\":[" + ",".join("{\"id\":\"r%d\"}" % i for i in range(100000)) + "]}")' >"$T/bad/100k-short-rules.json"
head -c $((10 << 20)) /dev/zero | tr '\0' ' ' >"$T/bad/10mb.json"
bad unknown-resource 'policy: rule "gpu" (#1): resource: unknown resource "gpu"'
bad unknown-field 'policy: rule "com2" (#2): unknown field "prots" for resource pio'
bad wrong-type 'policy: rule "t" (#1): ports: must be a number'
bad wrong-type-audit 'policy: rule "t" (#1): audit: must be true or false'
bad rules-not-array 'policy: rules: not an array'
bad overlapping 'policy: rule "twice" (#1): ports: 0x3fa overlaps 0x3f8-0x3ff'
bad reversed 'policy: rule "com2" (#3): ports: reversed range "0x3ff-0x3f8"'
bad duplicate-ids 'policy: rule "a" (#2): id: duplicate id (rule #1 has it too)'
bad redirect-no-target 'policy: rule "nowhere" (#1): verdict: a redirect needs a target: "value" or "to"'
bad overlay-ro "policy: rule \"cow\" (#1): overlay: cannot create $T/ro/o.img"
bad missing-id 'policy: rule #1: missing field "id"'
bad 100k-rules "policy: $T/bad/100k-rules.json: "
bad 100k-short-rules 'policy: rules: 100000 rules, at most 65536'
bad 10mb "policy: $T/bad/10mb.json: 10485760 bytes, at most 4194304 (4 MiB)"
expect_error "policy check: a missing file" "No such file" "$V" policy check "$T/nope.json"
expect_error "policy: usage" "usage: vigil policy check FILE" "$V" policy frob
# The config file's "policy": inline and as a path.
printf '{"boot-source":{"kernel_image_path":"%s"},"policy":{"rules":[{"id":"com2","resource":"pio","ports":"0x3ff-0x3f8","verdict":"deny"}]}}\n' \
    "$G/tiny-poweroff.bin" >"$T/cfg-bad.json"
expect_error "config file: inline policy refused" 'policy: rule "com2" (#1): ports: reversed range' "$V" run --no-api --config-file "$T/cfg-bad.json"
printf '{"boot-source":{"kernel_image_path":"%s"},"policy":"%s"}\n' "$G/tiny-poweroff.bin" "$T/bad/unknown-field.json" >"$T/cfg-bad2.json"
expect_error "config file: policy path refused" 'unknown field "prots"' "$V" run --no-api --config-file "$T/cfg-bad2.json"

# --- a policy takes effect on a guest --------------------------------------
printf '{"mode":"%s","rules":[{"id":"mute-com1","resource":"pio","ports":"0x3f8","access":"write","verdict":"deny"}]}\n' \
    enforce >"$T/mute.json"
sed 's/enforce/permissive/' "$T/mute.json" >"$T/mute-permissive.json"
timeout 60 "$V" run --kernel "$G/tiny-poweroff.bin" --policy "$T/mute.json" --stats >"$T/out" 2>"$T/stats" </dev/null; rc=$?
if [ $rc = 0 ] && ! grep -q "tiny:" "$T/out" && grep -Eq '^vcpu0 port 0x3f8 com1: ([0-9]+) denied=\1$' "$T/stats" &&
   grep -Eq '^policy rule mute-com1 \(pio deny\): hits=[1-9]' "$T/stats"; then
    pass "--policy: COM1 writes denied (no output, every one counted and hit)"
else fail "--policy: COM1 writes denied" "exit $rc; out: $(head -c 200 "$T/out"); $(grep -e 0x3f8 -e policy "$T/stats")"; fi
timeout 60 "$V" run --kernel "$G/tiny-poweroff.bin" --policy "$T/mute-permissive.json" --stats >"$T/out" 2>"$T/stats" </dev/null; rc=$?
if [ $rc = 0 ] && grep -q "tiny: denied ok" "$T/out" && grep -Eq '^vcpu0 port 0x3f8 com1: [1-9][0-9]*$' "$T/stats" &&
   grep -Eq '^policy rule mute-com1 \(pio deny\): hits=[1-9]' "$T/stats" && grep -q '^policy mode: permissive' "$T/stats"; then
    pass "permissive: the same rule decides (hits) but COM1 is provided"
else fail "permissive mode" "exit $rc; out: $(head -c 200 "$T/out"); $(grep -e 0x3f8 -e policy "$T/stats")"; fi
printf '{"boot-source":{"kernel_image_path":"%s"},"stats":true,"policy":"%s"}\n' "$G/tiny-poweroff.bin" "$T/mute.json" >"$T/cfg.json"
timeout 60 "$V" run --no-api --config-file "$T/cfg.json" >"$T/out" 2>"$T/stats" </dev/null; rc=$?
if [ $rc = 0 ] && ! grep -q "tiny:" "$T/out" && grep -Eq '^policy rule mute-com1 \(pio deny\): hits=[1-9]' "$T/stats"; then
    pass "config file: the policy path takes effect"
else fail "config file policy" "exit $rc; $(grep policy "$T/stats")"; fi
# A port read redirected to a value: the guest's probe of 0x1234 must read
# all ones, so a redirect to 0xff keeps it happy and is counted.
printf '{"rules":[{"id":"probe","resource":"pio","ports":"0x1234","access":"read","verdict":"redirect","value":"0xffff"}]}\n' >"$T/probe.json"
timeout 60 "$V" run --kernel "$G/tiny-poweroff.bin" --policy "$T/probe.json" --stats >"$T/out" 2>"$T/stats" </dev/null; rc=$?
if [ $rc = 0 ] && grep -q "tiny: denied ok" "$T/out" && grep -Eq '^policy rule probe \(pio redirect\): hits=2$' "$T/stats" &&
   grep -Eq '^vcpu0 port 0x1234 \(unclaimed\): 2$' "$T/stats"; then
    pass "a port read redirected to a value (2 hits, not denied)"
else fail "port redirect" "exit $rc; $(grep -e 0x1234 -e policy "$T/stats")"; fi

# --- the API --------------------------------------------------------------
SOCK=$T/api.sock
call() { # call METHOD PATH [BODY-FILE]: sets $code and $body
    local args=(-s -o "$T/resp" -w '%{http_code}' --max-time 20 --unix-socket "$SOCK" -X "$1")
    [ -n "${3-}" ] && args+=(--data-binary "@$3")
    code=$(curl "${args[@]}" "http://localhost$2")
    body=$(cat "$T/resp" 2>/dev/null)
}
expect() { # expect CODE NAME METHOD PATH [BODY-FILE] [PATTERN]
    local want=$1 name=$2 pat=${6-}
    call "$3" "$4" "${5-}"
    if [ "$code" != "$want" ]; then fail "$name" "HTTP $code, want $want: ${body:0:300}"
    elif [ -n "$pat" ] && ! grep -qF -- "$pat" <<<"$body"; then fail "$name" "body lacks '$pat': ${body:0:300}"
    else pass "$name"; fi
}
"$V" run --api-sock "$SOCK" --console "file:$T/con" >"$T/api-out" 2>"$T/api-err" </dev/null &
VPID=$!; pids+=($VPID)
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
expect 200 "GET /policy: the default" GET /policy "" '{"mode":"enforce","rules":[]}'
printf '{"mode":"enforce","rules":[{"id":"cpu1","resource":"cpuid","leaf":"0x1","verdict":"redirect","registers":{"ecx":"0b0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}]}\n' >"$T/good.json"
expect 204 "PUT /policy before the start" PUT /policy "$T/good.json"
expect 200 "GET /policy shows it" GET /policy "" '"id":"cpu1"'
api_bad() { # api_bad NAME TEXT
    expect 400 "PUT /policy refuses $1" PUT /policy "$T/bad/$1.json" "$2"
    grep -q fault_message <<<"$body" || fail "PUT /policy $1: fault_message" "$body"
    call GET /policy
    if grep -qF '"id":"cpu1"' <<<"$body" && ! grep -qF '"id":"r1"' <<<"$body"; then pass "after $1: the old policy stays"
    else fail "after $1: the old policy stays" "${body:0:200}"; fi
}
api_bad unknown-resource 'policy: rule \"gpu\" (#1): resource: unknown resource'
api_bad unknown-field 'unknown field \"prots\" for resource pio'
api_bad wrong-type 'ports: must be a number'
api_bad overlapping 'ports: 0x3fa overlaps 0x3f8-0x3ff'
api_bad reversed 'policy: rule \"com2\" (#3): ports: reversed range'
api_bad duplicate-ids 'id: duplicate id'
api_bad redirect-no-target 'a redirect needs a target'
api_bad overlay-ro 'overlay: cannot create'
api_bad 100k-short-rules 'policy: rules: 100000 rules, at most 65536'
api_bad 100k-rules 'larger than the limit of 4194304'
api_bad 10mb 'larger than the limit of 4194304'
printf '{"kernel_image_path":"%s"}' "$G/tiny-count.bin" >"$T/boot.json"
printf '{"action_type":"InstanceStart"}' >"$T/start.json"
expect 204 "PUT /boot-source" PUT /boot-source "$T/boot.json"
truncate -s 1M "$T/d1.img"
printf '{"drive_id":"d1","path_on_host":"%s","is_root_device":false,"is_read_only":false}' "$T/d1.img" >"$T/d1.json"
expect 204 "PUT /drives/d1" PUT /drives/d1 "$T/d1.json"
expect 204 "InstanceStart with the policy" PUT /actions "$T/start.json"
sleep 1
s1=$(stat -c %s "$T/con" 2>/dev/null || echo 0)
# Live: mute COM1 (the guest prints a dot per few thousand turns), keep cpu1.
printf '{"mode":"enforce","rules":[{"id":"cpu1","resource":"cpuid","leaf":"0x1","verdict":"redirect","registers":{"ecx":"0b0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}},{"id":"mute","resource":"pio","ports":"0x3f8","access":"write","verdict":"deny"}]}\n' >"$T/live.json"
expect 204 "PUT /policy while the guest runs" PUT /policy "$T/live.json"
sleep 0.5; s2=$(stat -c %s "$T/con"); sleep 1; s3=$(stat -c %s "$T/con")
if [ "$s1" -gt 0 ] && [ "$s3" = "$s2" ]; then pass "the live policy takes effect (console stops at $s2 bytes)"
else fail "live policy takes effect" "console $s1 -> $s2 -> $s3 bytes"; fi
expect 200 "GET /policy shows the live one" GET /policy "" '"id":"mute"'
if "$V" ctl --api-sock "$SOCK" policy 2>&1 | grep -qF '"id":"mute"'; then pass "vigil ctl policy"
else fail "vigil ctl policy" "$("$V" ctl --api-sock "$SOCK" policy 2>&1 | head -c 200)"; fi
expect 200 "/vigil/stats: hit counts" GET /vigil/stats "" '"policy":{"mode":"enforce","rules":[{"id":"cpu1"'
hits=$(grep -oE '"id":"mute","resource":"pio","verdict":"deny","hits":[0-9]+' <<<"$body" | grep -oE '[0-9]+$')
if [ "${hits:-0}" -gt 0 ]; then pass "/vigil/stats: rule mute hit $hits times"; else fail "/vigil/stats hits" "${body:0:400}"; fi
expect 200 "/metrics: hit counts" GET /metrics "" 'vigil_policy_rule_hits_total{rule="mute",resource="pio",verdict="deny"} '
printf '{"mode":"enforce","rules":[{"id":"mute","resource":"pio","ports":"0x3f8","access":"write","verdict":"deny"}]}\n' >"$T/nocpu.json"
expect 400 "live PUT /policy may not change cpuid rules" PUT /policy "$T/nocpu.json" 'policy: rule \"cpu1\": cpuid rules cannot change once the VM has started'
api_bad reversed 'reversed range'
expect 400 "PUT /cpu-config after the start" PUT /cpu-config "$T/good.json" 'not supported after starting'
# A disk redirect swapped in live: its overlay is opened (here created) by
# the swap, on the control thread, not by the first redirected write on a
# block worker, whose system-call filter has no open (vigil would stop).
cpu1='{"id":"cpu1","resource":"cpuid","leaf":"0x1","verdict":"redirect","registers":{"ecx":"0b0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}'
printf '{"mode":"enforce","rules":[%s,{"id":"cow","resource":"disk","drive":"d1","verdict":"redirect","overlay":"%s"}]}\n' \
    "$cpu1" "$T/live-ovl.img" >"$T/cow.json"
truncate -s 4096 "$T/short-ovl.img"
sed "s|$T/live-ovl.img|$T/short-ovl.img|" "$T/cow.json" >"$T/cow-short.json"
expect 400 "live PUT /policy: an overlay of the wrong size is refused" PUT /policy "$T/cow-short.json" \
    "drive d1: overlay $T/short-ovl.img: 4096 bytes, but the image has 1048576"
expect 200 "and the policy in force stays" GET /policy "" '"id":"mute"'
expect 204 "live PUT /policy with a disk redirect" PUT /policy "$T/cow.json"
if [ "$(stat -c %s "$T/live-ovl.img" 2>/dev/null)" = 1048576 ]; then
    pass "the swap opened (created) the overlay before any redirected write"
else fail "overlay opened at the swap" "$(ls -l "$T/live-ovl.img" 2>&1)"; fi
kill -0 $VPID 2>/dev/null && pass "vigil still runs" || fail "vigil still runs" "$(tail -3 "$T/api-err")"
# Unmute: the dots come back.
printf '{"mode":"enforce","rules":[{"id":"cpu1","resource":"cpuid","leaf":"0x1","verdict":"redirect","registers":{"ecx":"0b0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}]}\n' >"$T/unmute.json"
expect 204 "PUT /policy again" PUT /policy "$T/unmute.json"
sleep 1; s4=$(stat -c %s "$T/con")
if [ "$s4" -gt "$s3" ]; then pass "and the guest's output is back ($s3 -> $s4 bytes)"; else fail "unmute" "console $s3 -> $s4"; fi
kill -TERM $VPID; wait $VPID 2>/dev/null
grep -q "AddressSanitizer\|runtime error" "$T/api-err" && fail "no sanitizer report" "$(grep -m3 -e Sanitizer -e 'runtime error' "$T/api-err")"

echo "policy: $passed passed, $failed failed"
[ $failed -eq 0 ]
