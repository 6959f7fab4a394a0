#!/bin/bash
# The network policy where it is installed (the filter itself: the unit
# tests test_net_filter and test_net_policy_slirp; a Linux guest: the lab's
# netpol boot):
#  - a redirect rule that applies to a TAP interface is refused with one line
#    naming the rule and the interface, exit 1: --policy, the config file;
#  - the same policy on user-mode networking boots a tiny guest;
#  - PUT /policy on a running VM with user-mode networking: a redirect to a
#    127.x address slirp cannot reach is refused (400, the old policy kept),
#    a good one is swapped in (204).
# Usage: tests/net_policy.sh BUILD_DIR   Prints "net-policy: N passed, N failed".
set -u
B=${1:-build}
V=$B/vigil
G=$B/tests/guests
T=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

expect_error() { # expect_error NAME PATTERN CMD...: exit 1, one stderr line with PATTERN
    local name=$1 pat=$2; shift 2
    timeout 60 "$@" >"$T/out" 2>"$T/err" </dev/null; local rc=$?
    local lines; lines=$(wc -l <"$T/err")
    if [ $rc -ne 1 ]; then fail "$name" "exit $rc, want 1 ($(head -c 200 "$T/err"))"
    elif [ "$lines" -ne 1 ]; then fail "$name" "$lines stderr lines, want 1: $(head -c 300 "$T/err")"
    elif ! grep -qF -- "$pat" "$T/err"; then fail "$name" "stderr lacks '$pat': $(cat "$T/err")"
    else pass "$name"; fi
}

cat >"$T/redirect.json" <<'J'
{"rules": [
  {"id": "web", "resource": "net", "direction": "egress", "proto": "tcp", "dst": "10.0.2.2", "ports": 8001,
   "verdict": "provide"},
  {"id": "moved", "resource": "net", "direction": "egress", "proto": "tcp", "ports": 8003,
   "verdict": "redirect", "to": "127.0.0.1:8002"},
  {"id": "rest", "resource": "net", "direction": "egress", "verdict": "deny"}
]}
J
want="rule 'moved': redirect needs user-mode networking, and interface 'net0' is a TAP interface"
# The check runs before any device is opened: no TAP interface is needed.
expect_error "--policy: a redirect on a TAP interface is refused" "vigil: policy: $want" \
    "$V" run --kernel "$G/tiny-poweroff.bin" --net tap=vnp0 --policy "$T/redirect.json"
printf '{"boot-source":{"kernel_image_path":"%s"},"network-interfaces":[{"iface_id":"tap1","host_dev_name":"vnp0"}],"policy":"%s"}\n' \
    "$G/tiny-poweroff.bin" "$T/redirect.json" >"$T/cfg-tap.json"
expect_error "config file: a redirect on a TAP interface is refused" "interface 'tap1' is a TAP interface" \
    "$V" run --no-api --config-file "$T/cfg-tap.json"
# A rule for another interface leaves the TAP one alone.
sed 's/"ports": 8003,/"iface": "user0", "ports": 8003,/' "$T/redirect.json" >"$T/redirect-user0.json"
# (It boots where the TAP can be made, as root; elsewhere opening it fails.)
timeout 60 "$V" run --kernel "$G/tiny-poweroff.bin" --net tap=vnp0 --policy "$T/redirect-user0.json" \
    >"$T/out" 2>"$T/err" </dev/null; rc=$?
if ! grep -q "redirect needs" "$T/err" && { [ $rc = 0 ] || grep -q "tap vnp0" "$T/err"; }; then
    pass "a redirect for another interface does not refuse the TAP one"
else fail "a redirect for another interface" "exit $rc: $(head -c 300 "$T/err")"; fi

timeout 60 "$V" run --kernel "$G/tiny-poweroff.bin" --net user --policy "$T/redirect.json" --stats \
    >"$T/out" 2>"$T/stats" </dev/null; rc=$?
if [ $rc = 0 ] && grep -q '^policy rule moved (net redirect)' "$T/stats"; then
    pass "the same policy on user-mode networking boots"
else fail "user-mode networking with a redirect" "exit $rc: $(head -c 300 "$T/stats")"; fi

# --- PUT /policy on a running VM -------------------------------------------
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
pids+=($!)
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
printf '{"kernel_image_path":"%s"}' "$G/tiny-count.bin" >"$T/boot.json"
printf '{"iface_id":"user0","vigil_user":{}}' >"$T/net.json"
printf '{"action_type":"InstanceStart"}' >"$T/start.json"
expect 204 "PUT /network-interfaces (user-mode)" PUT /network-interfaces/user0 "$T/net.json"
expect 204 "PUT /boot-source" PUT /boot-source "$T/boot.json"
expect 204 "InstanceStart" PUT /actions "$T/start.json"
sed 's/127.0.0.1:8002/127.0.0.2:8002/' "$T/redirect.json" >"$T/lo2.json"
expect 400 "PUT /policy: a redirect to 127.0.0.2 is refused" PUT /policy "$T/lo2.json" \
    "rule 'moved': \\\"to\\\": user-mode networking reaches only 127.0.0.1"
expect 200 "the old policy stays" GET /policy "" '"rules":[]'
expect 204 "PUT /policy: the allow-list with its redirect" PUT /policy "$T/redirect.json"
expect 200 "GET /policy shows it" GET /policy "" '"to":"127.0.0.1:8002"'

echo "net-policy: $passed passed, $failed failed"
[ $failed = 0 ]
