#!/bin/bash
# The system-call filters per thread kind (src/host/seccomp.c), on this host's
# KVM: with every kind of thread running (vCPU, event loop, block workers,
# console input, API, trace drain, gdb stub and the control thread),
#  - each thread made to try a call outside its list (VIGIL_TEST_SECCOMP_PROBE
#    = its kind: execve of a path that does not exist) stops vigil with exit
#    148 and a line naming the thread (--seccomp on, the default), or is let
#    through (log, off) while the VM keeps running;
#  - /proc/PID/task/*/status says Seccomp: 2 for every thread with on/log and
#    0 with off; SIGTERM still stops a filtered vigil cleanly (exit 5);
#  - bad --seccomp values and config-file keys are one-line errors.
# Usage: tests/seccomp.sh BUILD_DIR   Prints "seccomp: N passed, N failed".
set -u
B=${1:-build}
V=$B/vigil
G=$B/tests/guests
T=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; exec 3>&-; rm -rf "$T"' EXIT
passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

KINDS="main vcpu evloop blk console conout api trace gdb"
truncate -s 1M "$T/disk.img" "$T/disk2.img"
mkfifo "$T/in"
exec 3<>"$T/in" # the console thread's stdin: open, silent, never at EOF

# start MODE PROBE: vigil with one thread of each kind, in the background.
start() {
    rm -f "$T/api.sock" "$T/gdb.sock"
    VIGIL_TEST_SECCOMP_PROBE=$2 "$V" run --kernel "$G/tiny-hang.bin" --seccomp "$1" \
        --api-sock "$T/api.sock" --disk "path=$T/disk.img" --trace "$T/trace.json" \
        --disk "path=$T/disk2.img,io=uring" --gdb "unix:$T/gdb.sock" <&3 >"$T/out" 2>"$T/err" &
    pid=$!
}

# wait_for PATTERN: up to 20 s for stdout or stderr to match (0), or vigil to end (1).
wait_for() {
    for _ in $(seq 200); do
        cat "$T/out" "$T/err" | grep -q -- "$1" && return 0
        kill -0 $pid 2>/dev/null || { cat "$T/out" "$T/err" | grep -q -- "$1"; return; }
        sleep 0.1
    done
    return 1
}

# wait_exit: vigil's exit status into rc, within 20 s (killed and 999 otherwise).
wait_exit() {
    for _ in $(seq 200); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    if kill -0 $pid 2>/dev/null; then kill -9 $pid; wait $pid 2>/dev/null; rc=999
    else wait $pid; rc=$?; fi
    pid=
}

# filters WANT: every thread's Seccomp: field is WANT (and the eight kinds run).
filters() {
    local t bad="" names=""
    for t in /proc/$pid/task/*; do
        names+=" $(cat "$t/comm" 2>/dev/null)"
        local s; s=$(awk '/^Seccomp:/ {print $2}' "$t/status" 2>/dev/null)
        [ "$s" = "$1" ] || bad+=" $(cat "$t/comm" 2>/dev/null)=$s"
    done
    for k in vcpu evloop blk console conout api trace gdb; do
        grep -q "vg-$k" <<<"$names" || bad+=" (no vg-$k thread)"
    done
    echo "$bad"
}

# The list itself: nine kinds, each with a count.
"$V" seccomp-list >"$T/list" 2>&1
n=$(grep -cE '^(main|vcpu|evloop|blk|console|conout|api|trace|gdb) +[0-9]+' "$T/list")
[ "$n" -eq 9 ] && pass "seccomp-list: nine kinds" || fail "seccomp-list: nine kinds" "$(cat "$T/list")"
"$V" seccomp-list -v | grep -q '^vcpu .*ioctl' && ! "$V" seccomp-list -v | grep -q ' execve' &&
    pass "seccomp-list -v: no list has execve" || fail "seccomp-list -v: no list has execve" "$("$V" seccomp-list -v)"

# The README's table says what seccomp-list prints, kind by kind, and the
# vCPU list is under Firecracker's 21.
README=$(dirname "$0")/../README.md
bad=""
while read -r k n _; do
    grep -Eq "^\| $k( \(.*\))? \| $n(\b|,)" "$README" || bad+=" $k=$n"
done <"$T/list"
[ -z "$bad" ] && pass "README's seccomp table matches seccomp-list" || fail "README's seccomp table matches seccomp-list" "not in the README:$bad"
nv=$(awk '$1 == "vcpu" {print $2}' "$T/list")
[ "${nv:-99}" -le 20 ] && pass "the vcpu list is under Firecracker's 21 ($nv)" || fail "the vcpu list is under Firecracker's 21" "$nv"

# Bad values: one line, exit 1.
"$V" run --kernel "$G/tiny-poweroff.bin" --seccomp maybe >/dev/null 2>"$T/e"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$T/e")" -eq 1 ] && grep -q -- "--seccomp 'maybe'" "$T/e" &&
    pass "--seccomp maybe: one line, exit 1" || fail "--seccomp maybe: one line, exit 1" "exit $rc: $(cat "$T/e")"
printf '{"boot-source": {"kernel_image_path": "%s"}, "seccomp": 1}\n' "$G/tiny-poweroff.bin" >"$T/bad.json"
"$V" run --no-api --config-file "$T/bad.json" >/dev/null 2>"$T/e"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$T/e")" -eq 1 ] && grep -q 'seccomp: must be' "$T/e" &&
    pass "config \"seccomp\": 1 is an error" || fail "config \"seccomp\": 1 is an error" "exit $rc: $(cat "$T/e")"
# The config file's key is honoured: "off" lets the probe through.
printf '{"boot-source": {"kernel_image_path": "%s"}, "seccomp": "off"}\n' "$G/tiny-poweroff.bin" >"$T/off.json"
VIGIL_TEST_SECCOMP_PROBE=vcpu "$V" run --no-api --config-file "$T/off.json" >/dev/null 2>"$T/e"; rc=$?
[ $rc -eq 0 ] && grep -q 'probe: vcpu thread: execve returned -1' "$T/e" &&
    pass "config \"seccomp\": \"off\" is honoured" || fail "config \"seccomp\": \"off\" is honoured" "exit $rc: $(cat "$T/e")"
printf '{"boot-source": {"kernel_image_path": "%s"}, "seccomp": "on"}\n' "$G/tiny-poweroff.bin" >"$T/on.json"
VIGIL_TEST_SECCOMP_PROBE=vcpu "$V" run --no-api --config-file "$T/on.json" >/dev/null 2>"$T/e"; rc=$?
[ $rc -eq 148 ] && pass "config \"seccomp\": \"on\" is honoured" || fail "config \"seccomp\": \"on\" is honoured" "exit $rc: $(cat "$T/e")"

# Default (on): every thread filtered; SIGTERM still stops vigil (exit 5).
start on ""
if wait_for "tiny: hello"; then
    sleep 0.5
    bad=$(filters 2)
    [ -z "$bad" ] && pass "on: every thread has a filter" || fail "on: every thread has a filter" "$bad"
    curl -s --max-time 5 --unix-socket "$T/api.sock" http://localhost/ >"$T/api" 2>&1
    grep -q Running "$T/api" && pass "on: the API answers" || fail "on: the API answers" "$(cat "$T/api")"
    kill -TERM $pid
    wait_exit
    [ "$rc" -eq 5 ] && pass "on: SIGTERM stops vigil (exit 5)" || fail "on: SIGTERM stops vigil (exit 5)" "exit $rc: $(tail -c 300 "$T/err")"
else
    fail "on: the guest runs" "$(tail -c 400 "$T/err")"; kill -9 $pid; wait $pid; pid=
fi

# Each kind: a call outside its list stops vigil (on), is let through (log).
for k in $KINDS; do
    start on "$k"
    wait_exit
    if [ "$rc" -eq 148 ] && grep -q "seccomp: the $k thread made a system call outside its list (59)" "$T/err"; then
        pass "on: the $k thread is refused execve (exit 148)"
    else fail "on: the $k thread is refused execve (exit 148)" "exit $rc: $(tail -c 300 "$T/err")"; fi
    start log "$k"
    if wait_for "probe: $k thread: execve returned -1 (No such file or directory)" && sleep 0.3 && kill -0 $pid 2>/dev/null; then
        pass "log: the $k thread is let through, vigil runs on"
    else fail "log: the $k thread is let through, vigil runs on" "$(tail -c 300 "$T/err")"; fi
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; pid=
done

# Each kind, a call the control thread's list has and its own lacks (the
# threads started after the control filter inherit it: only their own list
# refuses these).
for kc in main:socket vcpu:openat evloop:openat blk:socket console:openat conout:socket api:socket trace:socket gdb:openat; do
    k=${kc%%:*} c=${kc#*:}
    num=$([ "$c" = openat ] && echo 257 || echo 41)
    if "$V" seccomp-list -v | grep "^$k " | grep -qw "$c"; then fail "on: the $k thread is refused $c" "its list has $c"; continue; fi
    start on "$kc"
    wait_exit
    if [ "$rc" -eq 148 ] && grep -q "seccomp: the $k thread made a system call outside its list ($num)" "$T/err"; then
        pass "on: the $k thread is refused $c (exit 148)"
    else fail "on: the $k thread is refused $c (exit 148)" "exit $rc: $(tail -c 300 "$T/err")"; fi
done
# The vCPU's, the event thread's and the block workers' ioctl lists check
# the request number: one outside them is refused; the main thread, whose
# list has ioctl whole, is let through.
for k in vcpu evloop blk; do
    start on $k:ioctl
    wait_exit
    if [ "$rc" -eq 148 ] && grep -q "seccomp: the $k thread made a system call outside its list (16)" "$T/err"; then
        pass "on: the $k thread is refused ioctl TIOCGWINSZ (exit 148)"
    else fail "on: the $k thread is refused ioctl TIOCGWINSZ (exit 148)" "exit $rc: $(tail -c 300 "$T/err")"; fi
done
start on main:ioctl
if wait_for "probe: main thread: ioctl returned -1 (Bad file descriptor)" && sleep 0.3 && kill -0 $pid 2>/dev/null; then
    pass "on: the main thread is let make any ioctl"
else fail "on: the main thread is let make any ioctl" "$(tail -c 300 "$T/err")"; fi
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; pid=
# The vCPU's mmap takes no PROT_EXEC (a taken-over vCPU thread cannot make
# a page of shellcode runnable); the main thread's list has mmap whole.
start on vcpu:mmap-exec
wait_exit
if [ "$rc" -eq 148 ] && grep -q "seccomp: the vcpu thread made a system call outside its list (9)" "$T/err"; then
    pass "on: the vcpu thread is refused an executable mmap (exit 148)"
else fail "on: the vcpu thread is refused an executable mmap (exit 148)" "exit $rc: $(tail -c 300 "$T/err")"; fi
start on main:mmap-exec
if wait_for "probe: main thread: mmap-exec returned 0 (ok)" && sleep 0.3 && kill -0 $pid 2>/dev/null; then
    pass "on: the main thread is let map an executable page"
else fail "on: the main thread is let map an executable page" "$(tail -c 300 "$T/err")"; fi
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; pid=
start log vcpu:openat
if wait_for "probe: vcpu thread: openat returned -1 (No such file or directory)" && sleep 0.3 && kill -0 $pid 2>/dev/null; then
    pass "log: the vcpu thread is let open a file"
else fail "log: the vcpu thread is let open a file" "$(tail -c 300 "$T/err")"; fi
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; pid=

# off: no filter on any thread, and the probe passes.
start off vcpu
if wait_for "probe: vcpu thread: execve returned -1" && wait_for "tiny: hello"; then
    sleep 0.5
    bad=$(filters 0)
    [ -z "$bad" ] && pass "off: no thread has a filter" || fail "off: no thread has a filter" "$bad"
else fail "off: no thread has a filter" "$(tail -c 300 "$T/err")"; fi
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; pid=

echo "seccomp: $passed passed, $failed failed"
[ $failed -eq 0 ]
