#!/bin/bash
# Soak: many boot-to-poweroff cycles of a tiny guest with every device
# attached (a disk, user-mode networking, vsock, the rng, a virtio console),
# each one's peak RSS and open descriptors at the end recorded, the first
# and last compared (flat: no cycle grows); the host left as it was (no
# descriptors, sockets or files left behind); then many such VMs at once,
# all exiting 0. Usage: tests/soak.sh BUILD_DIR [CYCLES] [AT_ONCE]
# (defaults 1000 and 100). Prints "soak: N passed, N failed".
set -u
B=${1:-build}
CYCLES=${2:-1000}
AT_ONCE=${3:-100}
V=$B/vigil
G=$B/tests/guests/tiny-poweroff.bin
T=$(mktemp -d)
passed=0 failed=0
trap 'rm -rf "$T"' EXIT
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# One VM with every device; prints "RSS_KB FDS", vigil's own figures as
# the guest powered off (--stats: peak RSS and open descriptors before
# teardown), and returns vigil's status.
vm() { # vm N
    local n=$1
    truncate -s 1M "$T/disk$n.img"
    "$V" run --kernel "$G" --mem 64 --console none --disk "path=$T/disk$n.img" --net user \
        --vsock "cid=$((n + 3)),uds=$T/v$n.sock" --rng --console-device virtio --stats </dev/null >/dev/null 2>"$T/err$n"
    local rc=$?
    rm -f "$T/disk$n.img" "$T/v$n.sock"
    sed -n 's/^process: peak_rss_kb=\([0-9]*\) fds=\([0-9]*\)$/\1 \2/p' "$T/err$n"
    return $rc
}

host_fds() { cat /proc/sys/fs/file-nr | awk '{print $1}'; }

fds0=$(host_fds)
bad=0 first="" last=""
start=$(date +%s.%N)
for i in $(seq 1 "$CYCLES"); do
    out=$(vm 0) || { bad=$((bad + 1)); [ $bad -le 3 ] && echo "cycle $i: failed: $(grep -v -e '^process:' -e '^exits' "$T/err0" | head -c 300)"; }
    [ -z "$first" ] && first=$out
    last=$out
done
secs=$(echo "$(date +%s.%N) - $start" | bc)
echo "soak: $CYCLES cycles in ${secs}s; first cycle: peak RSS ${first% *} kB, ${first#* } fds; last: peak RSS ${last% *} kB, ${last#* } fds"
[ $bad -eq 0 ] && pass "$CYCLES boot-to-poweroff cycles with every device, all exit 0" || fail "cycles" "$bad of $CYCLES failed"
# Peak RSS varies a little with timing (which thread ran first): 10%, not growth.
if [ -n "$first" ] && [ "${last% *}" -le $(( ${first% *} + ${first% *} / 10 )) ] && [ "${last#* }" -le "${first#* }" ]; then
    pass "per-cycle RSS and descriptors flat (first ${first% *} kB/${first#* } fds, last ${last% *} kB/${last#* } fds)"
else
    fail "per-cycle RSS and descriptors flat" "first $first, last $last"
fi
fds1=$(host_fds)
[ "$fds1" -le $((fds0 + 64)) ] && pass "the host's open files are as before ($fds0 then $fds1)" ||
    fail "the host's open files" "$fds0 before, $fds1 after"
left=$(ls "$T" | grep -v -e '^err' | wc -l)
[ "$left" -eq 0 ] && pass "no socket or file left behind" || fail "left behind" "$(ls "$T" | head)"

# AT_ONCE VMs together.
pids=()
for n in $(seq 1 "$AT_ONCE"); do
    vm "$n" >"$T/res$n" &
    pids+=($!)
done
ok=0
for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done
max=0
for n in $(seq 1 "$AT_ONCE"); do r=$(cut -d' ' -f1 "$T/res$n"); [ "${r:-0}" -gt $max ] && max=$r; done
echo "soak: $AT_ONCE VMs at once: $ok exited 0; the largest peak RSS ${max} kB"
[ $ok -eq "$AT_ONCE" ] && pass "$AT_ONCE VMs at once, each with every device, all exit 0" ||
    fail "$AT_ONCE at once" "$ok exited 0; $(cat "$T"/err* 2>/dev/null | sort | uniq -c | head -3)"
echo "soak: $passed passed, $failed failed"
[ $failed -eq 0 ]
