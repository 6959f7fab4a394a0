#!/bin/bash
# The control plane against the real vigil on this host's /dev/kvm, with
# tiny guests: Firecracker's getting-started sequence of curl calls as its
# guide writes them (a TAP device in a network namespace made here), pause
# and resume of a guest that counts, SendCtrlAltDel, a config-file boot, the
# socket's life, vigil ctl, and the OpenAPI and robustness checks against the
# running server. Usage: tests/api.sh BUILD_DIR. Prints "api: N passed, N failed".
set -u
B=${1:-build}
V=$B/vigil
G=$B/tests/guests
T=$(mktemp -d)
NS=vigil-api-$$
passed=0 failed=0
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
check() { # check NAME CONDITION-RESULT(0/1) DETAIL
    if [ "$2" = 0 ]; then pass "$1"; else fail "$1" "$3"; fi
}

# call METHOD PATH [BODY]: sets $code and $body (the response).
call() {
    local m=$1 p=$2 d=${3-}
    local args=(-s -o "$T/resp" -w '%{http_code}' --max-time 10 --unix-socket "$SOCK" -X "$m")
    [ -n "$d" ] && args+=(--data "$d")
    code=$(curl "${args[@]}" "http://localhost$p")
    body=$(cat "$T/resp" 2>/dev/null)
}

# expect CODE NAME METHOD PATH [BODY] [BODY-PATTERN]
expect() {
    local want=$1 name=$2; shift 2
    local pat=${4-}
    call "$1" "$2" "${3-}"
    if [ "$code" != "$want" ]; then fail "$name" "HTTP $code, want $want: $body"
    elif [ -n "$pat" ] && ! grep -q -- "$pat" <<<"$body"; then fail "$name" "body lacks '$pat': $body"
    else pass "$name"; fi
}

wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done; return 1; }
wait_exit() { # wait_exit PID SECONDS: sets $rc (124 when still running)
    local pid=$1
    for _ in $(seq $(($2 * 10))); do kill -0 "$pid" 2>/dev/null || { wait "$pid"; rc=$?; return; }; sleep 0.1; done
    rc=124
}
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# --- Firecracker's getting-started sequence --------------------------------
ip netns add "$NS" && ip -n "$NS" tuntap add dev tap0 mode tap && ip -n "$NS" link set tap0 up ||
    fail "netns with tap0" "cannot make the namespace"
truncate -s 8M "$T/rootfs.ext4"
SOCK=$T/firecracker.socket
ip netns exec "$NS" "$V" run --api-sock "$SOCK" --console "file:$T/con" >"$T/out" 2>"$T/err" </dev/null &
VPID=$!; pids+=($VPID)
wait_sock "$SOCK"; check "API socket appears" $? "$(cat "$T/err")"
check "API socket is mode 0600" "$([ "$(stat -c %a "$SOCK")" = 600 ]; echo $?)" "$(stat -c %a "$SOCK")"
grep -q libmicrohttpd "/proc/$VPID/maps"
check "the HTTP library is loaded with the API" $? "not in /proc/$VPID/maps"
"$V" run --kernel "$G/tiny-count.bin" --console none </dev/null >/dev/null 2>&1 &
NPID=$!; pids+=($NPID); sleep 0.5
check "and not without it (no GnuTLS chain at start-up)" "$(! grep -q -e libmicrohttpd -e libgnutls "/proc/$NPID/maps"; echo $?)" "$(grep -e microhttpd -e gnutls "/proc/$NPID/maps" | head -2)"
[ -r "/proc/$NPID/maps" ] && ! grep -q -e libslirp -e libglib "/proc/$NPID/maps"
check "nor user networking's stack (libslirp, glib) without --net user" $? "$(grep -e slirp -e glib "/proc/$NPID/maps" | head -2)"
# jansson and liburing are linked in, libseccomp only builds the filters
# (tools/seccomp_gen.c): a VM without API or user networking maps libc alone.
# (A sanitizer build brings its runtime: libasan/libubsan/libtsan and what
# they need, libstdc++, libgcc_s and libm, and nothing of vigil's own.)
others=$(grep -o '/[^ ]*\.so[^ ]*' "/proc/$NPID/maps" | sort -u | grep -v -e '/libc\.so' -e '/ld-linux')
grep -q -e '/libasan\.' -e '/libtsan\.' -e '/libubsan\.' <<<"$others" &&
    others=$(grep -v -e '/libasan\.' -e '/libtsan\.' -e '/libubsan\.' -e '/libstdc++\.' -e '/libgcc_s\.' -e '/libm\.' <<<"$others")
check "and no shared library but libc" "$([ -r "/proc/$NPID/maps" ] && [ -z "$others" ]; echo $?)" "$others"
kill -TERM $NPID
"$V" run --kernel "$G/tiny-count.bin" --console none --net user </dev/null >/dev/null 2>&1 &
NPID=$!; pids+=($NPID); sleep 0.5
grep -q libslirp "/proc/$NPID/maps"
check "libslirp is loaded for --net user" $? "not in /proc/$NPID/maps"
kill -TERM $NPID
expect 200 "GET / before start" GET / "" '"state": *"Not started"'
expect 200 "GET /version" GET /version "" 'firecracker_version'
expect 200 "GET /machine-config defaults" GET /machine-config "" '"mem_size_mib": *128'
KERNEL=$G/tiny-count.bin
# The calls as Firecracker's guide writes them (no Content-Type header).
curl -X PUT --unix-socket "${SOCK}" \
    --data "{
        \"log_path\": \"$T/firecracker.log\",
        \"level\": \"Debug\",
        \"show_level\": true,
        \"show_log_origin\": true
    }" \
    "http://localhost/logger" -s -o "$T/r1" -w '%{http_code}' >"$T/c1"
check "PUT /logger (guide)" "$([ "$(cat "$T/c1")" = 204 ]; echo $?)" "$(cat "$T/c1" "$T/r1")"
curl -X PUT --unix-socket "${SOCK}" -i 'http://localhost/machine-config' \
    -H 'Content-Type: application/json' \
    -d '{"vcpu_count": 2, "mem_size_mib": 1024}' -s -o /dev/null -w '%{http_code}' >"$T/c1"
check "PUT /machine-config (guide)" "$([ "$(cat "$T/c1")" = 204 ]; echo $?)" "$(cat "$T/c1")"
curl -X PUT --unix-socket "${SOCK}" \
    --data "{
        \"kernel_image_path\": \"${KERNEL}\",
        \"boot_args\": \"console=ttyS0 reboot=k panic=1\"
    }" \
    "http://localhost/boot-source" -s -o "$T/r1" -w '%{http_code}' >"$T/c1"
check "PUT /boot-source (guide)" "$([ "$(cat "$T/c1")" = 204 ]; echo $?)" "$(cat "$T/c1" "$T/r1")"
curl -X PUT --unix-socket "${SOCK}" \
    --data "{
        \"drive_id\": \"rootfs\",
        \"path_on_host\": \"$T/rootfs.ext4\",
        \"is_root_device\": true,
        \"is_read_only\": false
    }" \
    "http://localhost/drives/rootfs" -s -o "$T/r1" -w '%{http_code}' >"$T/c1"
check "PUT /drives/rootfs (guide)" "$([ "$(cat "$T/c1")" = 204 ]; echo $?)" "$(cat "$T/c1" "$T/r1")"
curl -X PUT --unix-socket "${SOCK}" \
    --data "{
        \"iface_id\": \"net1\",
        \"guest_mac\": \"06:00:AC:10:00:02\",
        \"host_dev_name\": \"tap0\"
    }" \
    "http://localhost/network-interfaces/net1" -s -o "$T/r1" -w '%{http_code}' >"$T/c1"
check "PUT /network-interfaces/net1 (guide, TAP in a netns)" "$([ "$(cat "$T/c1")" = 204 ]; echo $?)" "$(cat "$T/c1" "$T/r1")"
curl -X PUT --unix-socket "${SOCK}" -i 'http://localhost/vsock' \
    -H 'Content-Type: application/json' -d "{\"guest_cid\": 3, \"uds_path\": \"$T/v.sock\"}" \
    -s -o /dev/null -w '%{http_code}' >"$T/c1"
check "PUT /vsock (guide)" "$([ "$(cat "$T/c1")" = 204 ]; echo $?)" "$(cat "$T/c1")"
expect 204 "PUT /metrics" PUT /metrics "{\"metrics_path\": \"$T/metrics.json\"}"
expect 204 "PUT /entropy" PUT /entropy '{}'
expect 400 "InstanceStart-less action is refused before start" PUT /actions '{"action_type": "FlushMetrics"}' 'before starting'
expect 400 "pause before start" PATCH /vm '{"state": "Paused"}' 'before starting'
sleep 0.015
curl -X PUT --unix-socket "${SOCK}" \
    --data "{
        \"action_type\": \"InstanceStart\"
    }" \
    "http://localhost/actions" -s -o "$T/r1" -w '%{http_code}' >"$T/c1"
check "InstanceStart (guide)" "$([ "$(cat "$T/c1")" = 204 ]; echo $?)" "$(cat "$T/c1" "$T/r1")"
expect 200 "GET / running" GET / "" '"state": *"Running"'
expect 400 "second InstanceStart" PUT /actions '{"action_type": "InstanceStart"}' 'not supported after starting'
expect 400 "boot-source after start" PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\"}" 'not supported after starting'
expect 400 "unknown field" PUT /boot-source '{"kernel_image_path": "x", "bogus": 1}' 'bogus'
expect 200 "GET /vm/config" GET /vm/config "" '"drive_id": *"rootfs"'
expect 200 "GET /vigil/stats names the devices" GET /vigil/stats "" '"rootfs"'
call GET /metrics
if [ "$code" = 200 ] && grep -q '^# TYPE vigil_vcpu_exits_total counter' <<<"$body" &&
   grep -Eq '^vigil_device_requests_total\{device="net1",kind="virtio-net"\} [0-9]+' <<<"$body"; then
    pass "GET /metrics (Prometheus text)"
else fail "GET /metrics (Prometheus text)" "$code $(head -c 300 <<<"$body")"; fi

# Pause: no progress and (almost) no CPU; resume: progress again.
for _ in $(seq 50); do [ "$(size "$T/con")" -gt 40 ] && break; sleep 0.1; done
expect 204 "PATCH /vm Paused" PATCH /vm '{"state": "Paused"}'
expect 200 "GET / paused" GET / "" '"state": *"Paused"'
expect 204 "pausing a paused VM" PATCH /vm '{"state": "Paused"}'
s0=$(size "$T/con"); c0=$(cpu_ticks $VPID); sleep 1.5; s1=$(size "$T/con"); c1=$(cpu_ticks $VPID)
check "paused guest makes no progress" "$([ "$s0" = "$s1" ]; echo $?)" "console grew $s0 -> $s1"
check "paused VM burns no CPU" "$([ $((c1 - c0)) -le 5 ]; echo $?)" "$((c1 - c0)) ticks in 1.5 s"
expect 204 "FlushMetrics while paused" PUT /actions '{"action_type": "FlushMetrics"}'
expect 204 "PATCH /vm Resumed" PATCH /vm '{"state": "Resumed"}'
expect 204 "resuming a running VM" PATCH /vm '{"state": "Resumed"}'
sleep 1.5; s2=$(size "$T/con")
check "resumed guest goes on" "$([ "$s2" -gt "$s1" ]; echo $?)" "console $s1 -> $s2"
expect 400 "bad state" PATCH /vm '{"state": "Sleeping"}' 'state'
# Registers through the mailbox, from the real KVM: the tiny guest's boot
# vCPU runs in long mode (CR0.PE|PG, EFER.LMA) with rip in its image above 1 MiB.
regs_ok() {
    python3 - "$1" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
cr0, efer, rip = (int(r[k], 16) for k in ("cr0", "efer", "rip"))
sys.exit(0 if cr0 & 0x80000001 == 0x80000001 and efer & 0x400 and 0x100000 <= rip < 0x200000 else 1)
PY
}
call GET /vigil/vcpus/0/regs
check "GET /vigil/vcpus/0/regs (running, long mode)" "$([ "$code" = 200 ] && regs_ok "$body"; echo $?)" "$code $body"
# vCPU 1 is an application processor the tiny guest never starts: still at
# the reset vector, waiting for its SIPI.
call GET /vigil/vcpus/1/regs
check "GET /vigil/vcpus/1/regs (an AP at the reset vector)" "$([ "$code" = 200 ] && grep -q '"rip": *"0xfff0"' <<<"$body" && grep -q '"cs": *"0xf000"' <<<"$body"; echo $?)" "$code $body"
expect 204 "pause for a register read" PATCH /vm '{"state": "Paused"}'
call GET /vigil/vcpus/0/regs; r1=$body; sleep 0.3; call GET /vigil/vcpus/0/regs
check "GET /vigil/vcpus/0/regs (paused: the same twice)" "$([ "$code" = 200 ] && regs_ok "$body" && [ "$r1" = "$body" ]; echo $?)" "$code $r1 / $body"
expect 204 "resume after the register read" PATCH /vm '{"state": "Resumed"}'
expect 400 "no such vCPU" GET /vigil/vcpus/7/regs "" 'does not exist'
# PATCH /drives: the image swapped on the running VM; a bad one refused
# with the old one kept.
truncate -s 16M "$T/rootfs2.ext4"
expect 204 "PATCH /drives/rootfs path_on_host" PATCH /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$T/rootfs2.ext4\"}"
expect 200 "GET /vm/config shows the new image" GET /vm/config "" "rootfs2.ext4"
expect 400 "PATCH /drives with a missing image" PATCH /drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$T/nope.img\"}" 'No such file'
expect 200 "the drive keeps its image" GET /vm/config "" "rootfs2.ext4"
expect 400 "PATCH /drives on an unknown drive" PATCH /drives/other "{\"drive_id\": \"other\", \"path_on_host\": \"$T/rootfs2.ext4\"}" 'does not exist'
expect 200 "the guest still runs" GET / "" '"state": *"Running"'
call GET /vigil/vcpus
tid=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['vcpus'][1]['thread_id'])" "$body" 2>/dev/null)
check "GET /vigil/vcpus: host thread ids" "$([ -n "$tid" ] && [ -d "/proc/$VPID/task/$tid" ]; echo $?)" "$body"
if [ -x "$V" ] && "$V" ctl --api-sock "$SOCK" status >"$T/ctl" 2>&1 && grep -q Running "$T/ctl"; then pass "vigil ctl status"
else fail "vigil ctl status" "$(cat "$T/ctl")"; fi
"$V" ctl --api-sock "$SOCK" pause >/dev/null 2>&1 && call GET / && grep -q Paused <<<"$body"
check "vigil ctl pause" $? "$body"
"$V" ctl --api-sock "$SOCK" resume >/dev/null 2>&1 && call GET / && grep -q Running <<<"$body"
check "vigil ctl resume" $? "$body"
"$V" ctl --api-sock "$SOCK" stats >"$T/ctl" 2>&1 && grep -q '"net1"' "$T/ctl"
check "vigil ctl stats" $? "$(head -c 200 "$T/ctl")"
"$V" ctl --api-sock "$SOCK" metrics >"$T/ctl" 2>&1 && grep -q '^vigil_uptime_seconds' "$T/ctl"
check "vigil ctl metrics" $? "$(head -c 200 "$T/ctl")"
"$V" ctl --api-sock "$SOCK" config >"$T/ctl" 2>&1 && grep -q '"boot-source"' "$T/ctl"
check "vigil ctl config" $? "$(head -c 200 "$T/ctl")"
"$V" ctl --api-sock "$SOCK" start >/dev/null 2>"$T/ctl"; rc=$?
check "vigil ctl start twice fails with the server's message" "$([ $rc = 1 ] && grep -q 'not supported after starting' "$T/ctl"; echo $?)" "rc $rc: $(cat "$T/ctl")"
if [ -f tests/api_openapi.py ]; then
    python3 tests/api_openapi.py --running "$SOCK" >"$T/oa" 2>&1
    check "OpenAPI document matches the running server" $? "$(tail -n 5 "$T/oa")"
fi
kill -TERM $VPID; wait_exit $VPID 10
check "SIGTERM ends it (exit 5)" "$([ $rc = 5 ]; echo $?)" "exit $rc"
check "socket removed at exit" "$([ ! -e "$SOCK" ]; echo $?)" "$(ls -l "$SOCK" 2>&1)"
grep -q 'PUT' "$T/firecracker.log" 2>/dev/null && grep -q '/actions' "$T/firecracker.log"
check "logger logged the API requests" $? "$(head -c 300 "$T/firecracker.log" 2>&1)"
grep -q '"utc_timestamp_ms"' "$T/metrics.json" 2>/dev/null
check "metrics file has Firecracker lines" $? "$(head -c 300 "$T/metrics.json" 2>&1)"

# --- docs/openapi.json against a fresh server: every pre-boot example,
# InstanceStart, then every post-boot call and phase rule -------------------
SOCK=$T/oa.sock
"$V" run --api-sock "$SOCK" --console none >/dev/null 2>"$T/err" </dev/null &
VPID=$!; pids+=($VPID)
wait_sock "$SOCK"
truncate -s 4M "$T/oa-root.img"
python3 tests/api_openapi.py "$SOCK" --kernel "$G/tiny-count.bin" --rootfs "$T/oa-root.img" >"$T/oa" 2>&1
check "OpenAPI document matches a fresh server, through InstanceStart" $? "$(grep -E 'FAIL|passed' "$T/oa" | head -5)"
kill -TERM $VPID; wait_exit $VPID 10

# --- The metrics file's periodic line (60 s in Firecracker; 1 s here) ------
SOCK=$T/per.sock
VIGIL_METRICS_INTERVAL_S=1 "$V" run --api-sock "$SOCK" --console none >/dev/null 2>"$T/err" </dev/null &
VPID=$!; pids+=($VPID)
wait_sock "$SOCK"
call PUT /metrics "{\"metrics_path\": \"$T/per.json\"}"
call PUT /boot-source "{\"kernel_image_path\": \"$G/tiny-count.bin\"}"
call PUT /actions '{"action_type": "InstanceStart"}'
sleep 3.5
n=$(grep -c '"utc_timestamp_ms"' "$T/per.json" 2>/dev/null)
check "metrics lines come by themselves, every interval" "$([ "${n:-0}" -ge 2 ]; echo $?)" "${n:-0} lines in 3.5 s"
expect 204 "pause before a stop" PATCH /vm '{"state": "Paused"}'
kill -TERM $VPID; wait_exit $VPID 10
check "SIGTERM stops a paused VM (exit 5)" "$([ $rc = 5 ]; echo $?)" "exit $rc"

# --- SendCtrlAltDel reaches the guest's keyboard ---------------------------
SOCK=$T/cad.sock
"$V" run --api-sock "$SOCK" --console "file:$T/cad.con" >/dev/null 2>"$T/err" </dev/null &
VPID=$!; pids+=($VPID)
wait_sock "$SOCK"
expect 400 "SendCtrlAltDel before start" PUT /actions '{"action_type": "SendCtrlAltDel"}' 'before starting'
expect 204 "boot-source for the keyboard guest" PUT /boot-source "{\"kernel_image_path\": \"$G/tiny-cad.bin\"}"
expect 204 "InstanceStart" PUT /actions '{"action_type": "InstanceStart"}'
for _ in $(seq 50); do grep -q waiting "$T/cad.con" 2>/dev/null && break; sleep 0.1; done
expect 204 "SendCtrlAltDel" PUT /actions '{"action_type": "SendCtrlAltDel"}'
wait_exit $VPID 20
check "guest saw Ctrl+Alt+Del and powered off (exit 0)" "$([ $rc = 0 ] && grep -q 'got ctrl-alt-del' "$T/cad.con"; echo $?)" "exit $rc: $(cat "$T/cad.con" "$T/err")"

# --- A config file, Firecracker's, with --no-api ---------------------------
cat >"$T/vm.json" <<EOF
{
  "boot-source": {"kernel_image_path": "$G/tiny-poweroff.bin", "boot_args": "console=ttyS0 reboot=k panic=1", "initrd_path": null},
  "drives": [{"drive_id": "rootfs", "path_on_host": "$T/rootfs.ext4", "is_root_device": true, "partuuid": null,
              "is_read_only": false, "cache_type": "Unsafe", "io_engine": "Sync", "rate_limiter": null}],
  "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "smt": false, "track_dirty_pages": false},
  "network-interfaces": [],
  "logger": null, "metrics": null
}
EOF
timeout 60 "$V" run --config-file "$T/vm.json" --no-api --stats >"$T/out" 2>"$T/err" </dev/null; rc=$?
check "config-file boot (--no-api)" "$([ $rc = 0 ] && grep -q 'tiny: denied ok' "$T/out" && grep -q '^device rootfs (virtio-blk)' "$T/err"; echo $?)" "exit $rc: $(tail -c 300 "$T/err")"
echo '{"boot-source": {"kernel_image_path": "/nonexistent"}}' >"$T/bad.json"
timeout 20 "$V" run --config-file "$T/bad.json" --no-api >/dev/null 2>"$T/err" </dev/null; rc=$?
check "config file with a missing kernel: one line, exit 1" "$([ $rc = 1 ] && [ "$(wc -l <"$T/err")" = 1 ] && grep -q 'No such file' "$T/err"; echo $?)" "exit $rc: $(cat "$T/err")"
echo '{"boot-source": {"kernel_image_path": "x"}, "frobnicate": {}}' >"$T/bad.json"
timeout 20 "$V" run --config-file "$T/bad.json" --no-api >/dev/null 2>"$T/err" </dev/null; rc=$?
check "config file with an unknown key refused" "$([ $rc = 1 ] && grep -q 'frobnicate' "$T/err"; echo $?)" "exit $rc: $(cat "$T/err")"
timeout 20 "$V" run --no-api >/dev/null 2>"$T/err" </dev/null; rc=$?
check "--no-api needs --config-file" "$([ $rc = 1 ] && grep -q 'config-file' "$T/err"; echo $?)" "exit $rc: $(cat "$T/err")"

# --- The socket's life -----------------------------------------------------
SOCK=$T/life.sock
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$SOCK"  # stale: nobody listens
"$V" run --api-sock "$SOCK" >/dev/null 2>"$T/err" </dev/null &
VPID=$!; pids+=($VPID)
sleep 0.5; call GET /
check "a stale socket file is replaced" "$([ "$code" = 200 ]; echo $?)" "$code $(cat "$T/err")"
timeout 10 "$V" run --api-sock "$SOCK" >/dev/null 2>"$T/err2" </dev/null; rc=$?
check "a live socket is an error" "$([ $rc = 1 ] && [ "$(wc -l <"$T/err2")" = 1 ]; echo $?)" "exit $rc: $(cat "$T/err2")"
if [ -f tests/api_robust.py ]; then
    python3 tests/api_robust.py "$SOCK" >"$T/rb" 2>&1
    check "robustness against bad clients (tests/api_robust.py)" $? "$(grep -E 'FAIL|passed' "$T/rb" | head -5)"
    call GET /; check "server still answers after the bad clients" "$([ "$code" = 200 ]; echo $?)" "$code"
fi
kill -TERM $VPID; wait_exit $VPID 10
check "SIGTERM before start: exit 5" "$([ $rc = 5 ]; echo $?)" "exit $rc"
: >"$T/plain"
timeout 10 "$V" run --api-sock "$T/plain" >/dev/null 2>"$T/err" </dev/null; rc=$?
check "a regular file at the socket path is an error" "$([ $rc = 1 ] && [ -f "$T/plain" ]; echo $?)" "exit $rc: $(cat "$T/err")"

echo "api: $passed passed, $failed failed"
[ $failed -eq 0 ]
