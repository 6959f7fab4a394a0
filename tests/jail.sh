#!/bin/bash
# `vigil jail` on this host (README "Jailer"): bad input gets one line and exit
# 1; a jailed vigil boots a tiny guest; while one runs (the `hang` guest kept
# alive, reached through its API socket inside the jail) its root is the jail,
# its ids, capabilities, rlimits, namespaces and cgroups are the ones asked
# for; pids.max refuses vCPU threads; host paths outside the jail do not
# resolve; the cgroups are gone after exit. Needs root (mknod, namespaces,
# cgroups): without it every case SKIPs with the reason.
# Usage: tests/jail.sh BUILD_DIR   Prints "jail: N passed, N failed".
set -u
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-build}
V=$(realpath "$B/vigil")
G=$(realpath "$B/tests/guests")
T=$(mktemp -d /tmp/vigil-jail.XXXXXX)
ID=jt-$$
UIDN=4242 GIDN=4243
passed=0 failed=0 skipped=0
JPID=

cleanup() {
    [ -n "$JPID" ] && kill -TERM "$JPID" 2>/dev/null && wait "$JPID" 2>/dev/null
    [ -n "${KP:-}" ] && [ -d "/proc/$KP" ] && kill -KILL "$KP" 2>/dev/null
    [ -n "${NSF:-}" ] && umount "$NSF" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skip() { echo "SKIP $1: $2"; skipped=$((skipped + 1)); }
check() { # check NAME CONDITION-CMD... : pass when the command succeeds
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name" "$(echo "$*" | head -c 200)"; fi
}

finish() {
    echo "jail: $passed passed, $failed failed ($skipped skipped)"
    [ $failed -eq 0 ]
    exit
}

# expect_error NAME PATTERN CMD...: exit 1, exactly one stderr line matching PATTERN.
expect_error() {
    local name=$1 pat=$2; shift 2
    timeout 60 "$@" >"$T/out" 2>"$T/err" </dev/null; local rc=$?
    local lines; lines=$(wc -l <"$T/err")
    if [ $rc -ne 1 ]; then fail "$name" "exit $rc, want 1 ($(head -c 200 "$T/err"))"
    elif [ "$lines" -ne 1 ]; then fail "$name" "$lines stderr lines, want 1: $(head -c 300 "$T/err")"
    elif ! grep -q -- "$pat" "$T/err"; then fail "$name" "stderr lacks '$pat': $(cat "$T/err")"
    else pass "$name"; fi
}

J=(jail --uid $UIDN --gid $GIDN --chroot-base "$T")
K=$G/tiny-poweroff.bin

# ---- bad input (no privilege needed: refused before anything is made) ----
expect_error "id with '_'" "only letters, digits and '-'" "$V" jail --id vm_1 --uid 1 --gid 1 --chroot-base "$T" -- vigil run --kernel "$K"
expect_error "id too long" "1 to 64 characters" "$V" jail --id "$(printf 'a%.0s' $(seq 65))" --uid 1 --gid 1 --chroot-base "$T" -- vigil run --kernel "$K"
expect_error "missing id" "missing --id" "$V" jail --uid 1 --gid 1 --chroot-base "$T" -- vigil run --kernel "$K"
expect_error "missing uid" "missing --uid" "$V" jail --id a --gid 1 --chroot-base "$T" -- vigil run --kernel "$K"
expect_error "bad uid" "--uid 'x'" "$V" jail --id a --uid x --gid 1 --chroot-base "$T" -- vigil run --kernel "$K"
expect_error "chroot base not a dir" "is not a directory" "$V" jail --id a --uid 1 --gid 1 --chroot-base "$K" -- vigil run --kernel "$K"
expect_error "chroot base relative" "absolute path" "$V" jail --id a --uid 1 --gid 1 --chroot-base . -- vigil run --kernel "$K"
expect_error "cgroup core file" "controller file" "$V" "${J[@]}" --id a --cgroup cgroup.procs=1 -- vigil run --kernel "$K"
expect_error "cgroup with '/'" "controller file" "$V" "${J[@]}" --id a --cgroup ../x.max=1 -- vigil run --kernel "$K"
expect_error "cgroup without '='" "expected FILE=VALUE" "$V" "${J[@]}" --id a --cgroup memory.max -- vigil run --kernel "$K"
expect_error "bad resource" "unknown resource" "$V" "${J[@]}" --id a --resource-limit core=1 -- vigil run --kernel "$K"
expect_error "bad rlimit value" "expected fsize=N" "$V" "${J[@]}" --id a --resource-limit fsize=-1 -- vigil run --kernel "$K"
expect_error "no command" "missing the vigil command" "$V" "${J[@]}" --id a --
expect_error "not vigil run" "must be 'vigil run" "$V" "${J[@]}" --id a -- vigil ctl status
expect_error "'..' in a path" "must not contain '..'" "$V" "${J[@]}" --id a -- vigil run --kernel "$G/../guests/tiny-poweroff.bin"
expect_error "API socket in the jail's root" "name a directory" "$V" "${J[@]}" --id a -- vigil run --kernel "$K" --api-sock /api.sock
expect_error "relative API socket in the jail's root" "name a directory" "$V" "${J[@]}" --id a -- vigil run --kernel "$K" --api-sock api.sock
expect_error "unknown option" "unknown option" "$V" "${J[@]}" --id a --frob -- vigil run --kernel "$K"

# ---- the jail itself: root and a cgroup v2 hierarchy needed ----
if [ "$(id -u)" != 0 ]; then
    skip "jailed runs" "not root (mknod, namespaces and cgroups need it)"
    finish
fi
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
if [ -z "$CG2" ]; then skip "jailed runs" "no cgroup v2 hierarchy mounted"; finish; fi
echo "cgroup v2 at $CG2 offers: $(cat "$CG2/cgroup.controllers")"

ROOT=$T/vigil/$ID/root
timeout 60 "$V" "${J[@]}" --id $ID -- vigil run --kernel "$K" >"$T/out" 2>"$T/err"; rc=$?
if [ $rc -ne 0 ] && grep -q "CAP_MKNOD\|Operation not permitted" "$T/err"; then
    skip "jailed runs" "this sandbox refuses: $(cat "$T/err")"
    finish
fi
check "jailed tiny guest exits 0" [ $rc -eq 0 ]
check "jailed guest ran" grep -q "tiny: hello" "$T/out"
check "jail dir layout <base>/vigil/<id>/root" [ -x "$ROOT/vigil" ]
check "kernel brought in as a hard link or bind" [ -f "$ROOT$K" ]
check "device nodes removed after exit" [ ! -e "$ROOT/dev/kvm" ] && [ ! -e "$ROOT/dev/net/tun" ]
check "v2 cgroup removed after exit" [ ! -e "$CG2/vigil/$ID" ]

# A long-lived jailed vigil: the hang guest, stopped by SIGTERM to the jailer.
PIDS1=$(awk '$3 == "cgroup" && $4 ~ /(^|,)pids(,|$)/ { print $2; exit }' /proc/self/mounts)
CGARGS=()
CPU1=$(awk '$3 == "cgroup" && $4 ~ /(^|,)cpu(,|$)/ { print $2; exit }' /proc/self/mounts)
[ -n "$PIDS1" ] && CGARGS=(--cgroup-version 1 --cgroup pids.max=40)
[ -n "$PIDS1" ] && [ -n "$CPU1" ] && [ -e "$CPU1/cpu.cfs_quota_us" ] && CGARGS+=(--cgroup cpu.cfs_quota_us=50000)
HAS_MEM2=0
grep -qw memory "$CG2/cgroup.controllers" && grep -qw pids "$CG2/cgroup.controllers" && HAS_MEM2=1
[ $HAS_MEM2 = 1 ] && CGARGS=(--cgroup memory.max=536870912 --cgroup pids.max=40)
[ $HAS_MEM2 = 1 ] && grep -qw cpu "$CG2/cgroup.controllers" && CGARGS+=(--cgroup "cpu.max=50000 100000")
touch "$T/netns"
NSF=
if unshare --net="$T/netns" true 2>/dev/null; then NSF=$T/netns; fi
NETARGS=()
[ -n "$NSF" ] && NETARGS=(--netns "$NSF")

"$V" "${J[@]}" --id $ID "${CGARGS[@]}" "${NETARGS[@]}" --resource-limit no-file=512 --resource-limit fsize=1048576 \
    -- vigil run --kernel "$G/tiny-hang.bin" --api-sock /run/api.sock >"$T/out" 2>"$T/err" 9</etc &
JPID=$!
for _ in $(seq 100); do [ -S "$ROOT/run/api.sock" ] && break; sleep 0.1; done
P=$(tr -d ' ' <"/proc/$JPID/task/$JPID/children" 2>/dev/null)
if [ -z "$P" ] || [ ! -S "$ROOT/run/api.sock" ]; then
    fail "hang guest in the jail" "no vigil or no API socket: $(cat "$T/err")"
else
    check "/dev/kvm made, owned by the uid" [ "$(stat -c '%F %t:%T %u:%g %a' "$ROOT/dev/kvm")" = "character special file a:e8 $UIDN:$GIDN 600" ]
    check "/dev/net/tun made" [ "$(stat -c '%F %t:%T %u:%g %a' "$ROOT/dev/net/tun")" = "character special file a:c8 $UIDN:$GIDN 600" ]
    check "/dev/null and /dev/urandom made" [ "$(stat -c '%t:%T %a' "$ROOT/dev/null" "$ROOT/dev/urandom" | tr '\n' ' ')" = "1:3 666 1:9 666 " ]
    check "vigil's host PID in <root>/vigil.pid" [ "$(cat "$ROOT/vigil.pid")" = "$P" ]
    check "--id passed to vigil" sh -c "'$V' ctl --api-sock '$ROOT/run/api.sock' status | grep -q '\"id\":\"$ID\"'"
    check "API socket inside the jail answers" sh -c "'$V' ctl --api-sock '$ROOT/run/api.sock' status | grep -q Running"
    st=/proc/$P/status
    check "uid is the given one" grep -qP "^Uid:\t$UIDN\t$UIDN\t$UIDN\t$UIDN$" $st
    check "gid is the given one" grep -qP "^Gid:\t$GIDN\t$GIDN\t$GIDN\t$GIDN$" $st
    check "supplementary groups: only the gid" grep -qP "^Groups:\t$GIDN ?$" $st
    check "no capabilities (eff, prm, bnd, amb)" [ "$(grep -cE '^Cap(Eff|Prm|Bnd|Amb|Inh):\s+0000000000000000$' $st)" = 5 ]
    check "no_new_privs" grep -qP "^NoNewPrivs:\t1$" $st
    check "PID 1 of a new PID namespace" grep -qP "^NSpid:\t$P\t1$" $st
    check "mount namespace differs" [ "$(readlink /proc/$P/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ]
    echo marker >"$ROOT/marker-$$"
    check "its root is the jail dir" grep -q marker "/proc/$P/root/marker-$$"
    check "host /etc is not in its root" [ ! -e "/proc/$P/root/etc" ]
    # The checkout's build/ is brought in (the kernel lives there), its src/ never is.
    check "host files beside the VM's are not in its root" [ ! -e "/proc/$P/root$SRCDIR/src/core/exit.c" ]
    check "the jailer itself holds the host dir on fd 9" [ "$(readlink /proc/$JPID/fd/9)" = /etc ]
    check "an inherited descriptor (a host dir) is closed" sh -c "! ls -l /proc/$P/fd | grep -q ' /etc\$'"
    check "rlimit no-file" grep -qE "^Max open files +512 +512" /proc/$P/limits
    check "rlimit fsize" grep -qE "^Max file size +1048576 +1048576" /proc/$P/limits
    check "in its own v2 cgroup" grep -qx "0::/vigil/$ID" /proc/$P/cgroup
    if [ $HAS_MEM2 = 1 ]; then
        check "memory.max holds" [ "$(cat "$CG2/vigil/$ID/memory.max")" = 536870912 ]
        check "pids.max holds" [ "$(cat "$CG2/vigil/$ID/pids.max")" = 40 ]
        grep -qw cpu "$CG2/cgroup.controllers" && check "cpu.max holds" [ "$(cat "$CG2/vigil/$ID/cpu.max")" = "50000 100000" ]
    else
        skip "memory.max (v2)" "cgroup v2 here offers no memory/pids controller (they are bound to v1)"
        expect_error "a v2 controller not offered" "does not offer the 'memory' controller" \
            "$V" "${J[@]}" --id $ID-x --cgroup memory.max=1G -- vigil run --kernel "$K"
        if [ -n "$PIDS1" ]; then
            check "pids.max holds (v1 pids)" [ "$(cat "$PIDS1/vigil/$ID/pids.max")" = 40 ]
            check "in its v1 pids cgroup" grep -q ":pids:/vigil/$ID$" /proc/$P/cgroup
            if [ -n "$CPU1" ] && [ -e "$CPU1/cpu.cfs_quota_us" ]; then
                check "cpu quota holds (v1 cpu.cfs_quota_us)" [ "$(cat "$CPU1/vigil/$ID/cpu.cfs_quota_us")" = 50000 ]
                check "in its v1 cpu cgroup" grep -qE ":cpu(,[a-z]+)*:/vigil/$ID$" /proc/$P/cgroup
            fi
        fi
    fi
    if [ -n "$NSF" ]; then
        check "joined the --netns" [ "$(readlink /proc/$P/ns/net)" = "net:[$(stat -L -c %i "$NSF")]" ]
    else
        skip "--netns" "cannot make a network namespace here"
    fi
    kill -TERM $JPID
fi
wait $JPID; rc=$?; JPID=
check "SIGTERM to the jailer stops the jailed vigil (status 5)" [ $rc -eq 5 ]
check "cgroups removed after exit" [ ! -e "$CG2/vigil/$ID" ]
[ -n "$PIDS1" ] && check "v1 pids cgroup removed" [ ! -e "$PIDS1/vigil/$ID" ]
[ -n "$CPU1" ] && check "v1 cpu cgroup removed" [ ! -e "$CPU1/vigil/$ID" ]

# The memory limit holds, not just its file: a guest that makes 192 MiB of
# its RAM resident (tiny-memtouch) is stopped by a 64 MiB limit and runs to
# its end under 512 MiB. v2's memory.max where the v2 hierarchy offers the
# memory controller, else v1's memory.limit_in_bytes (Firecracker's jailer
# takes either through --cgroup-version).
MEM1=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ { print $2; exit }' /proc/self/mounts)
MEMV=
if grep -qw memory "$CG2/cgroup.controllers"; then MEMV=2; elif [ -n "$MEM1" ]; then MEMV=1; fi
SWAP=$(awk 'NR > 1' /proc/swaps | wc -l)
memrun() { # memrun LIMIT_BYTES: the jailed memtouch guest, its status in rc
    local a
    if [ $MEMV = 2 ]; then a=(--cgroup memory.max=$1); [ "$SWAP" -gt 0 ] && a+=(--cgroup memory.swap.max=0)
    else a=(--cgroup-version 1 --cgroup memory.limit_in_bytes=$1); [ "$SWAP" -gt 0 ] && a+=(--cgroup memory.memsw.limit_in_bytes=$1); fi
    timeout 120 "$V" "${J[@]}" --id $ID-m "${a[@]}" -- vigil run --kernel "$G/tiny-memtouch.bin" --mem 256 >"$T/out" 2>"$T/err"
    rc=$?
}
if [ -n "$MEMV" ]; then
    memrun $((64 << 20))
    check "memory limit (v$MEMV) 64 MiB stops a guest touching 192 MiB" [ $rc -ne 0 ] && ! grep -q "tiny: touched" "$T/out"
    echo "  (64 MiB: exit $rc, $(tail -c 200 "$T/err" | tr '\n' ' '))"
    memrun $((512 << 20))
    check "memory limit (v$MEMV) 512 MiB lets it finish" [ $rc -eq 0 ] && grep -q "tiny: touched" "$T/out"
    [ $MEMV = 2 ] && check "v2 memory cgroup removed" [ ! -e "$CG2/vigil/$ID-m" ]
    [ $MEMV = 1 ] && check "v1 memory cgroup removed" [ ! -e "$MEM1/vigil/$ID-m" ]
else
    skip "memory limit" "no memory controller in any cgroup hierarchy"
fi

# A jailer killed outright takes its vigil with it (PR_SET_PDEATHSIG); only
# then are the cgroups left behind (removed here by hand).
"$V" "${J[@]}" --id $ID-k -- vigil run --kernel "$G/tiny-hang.bin" --api-sock /run/api.sock >/dev/null 2>&1 &
KJ=$!
for _ in $(seq 100); do [ -S "$T/vigil/$ID-k/root/run/api.sock" ] && break; sleep 0.1; done
KP=$(cat "$T/vigil/$ID-k/root/vigil.pid" 2>/dev/null)
check "second jailed vigil running" [ -n "$KP" ] && [ -d /proc/$KP ]
kill -KILL $KJ; wait $KJ 2>/dev/null
for _ in $(seq 50); do [ -d /proc/${KP:-0} ] || break; sleep 0.1; done
check "vigil dies with its SIGKILLed jailer" [ ! -d /proc/${KP:-0} ]
rmdir "$CG2/vigil/$ID-k" 2>/dev/null

# pids.max below what vigil needs: --cpus 4 cannot start its threads.
if [ $HAS_MEM2 = 1 ]; then PARGS=(--cgroup pids.max=3); elif [ -n "$PIDS1" ]; then PARGS=(--cgroup-version 1 --cgroup pids.max=3); fi
if [ -n "${PARGS:-}" ]; then
    expect_error "pids.max=3 refuses 4 vCPUs cleanly" "vigil" "$V" "${J[@]}" --id $ID "${PARGS[@]}" -- vigil run --kernel "$K" --cpus 4
    timeout 60 "$V" "${J[@]}" --id $ID "${PARGS[@]/=3/=64}" -- vigil run --kernel "$K" --cpus 4 >"$T/out" 2>&1
    check "pids.max=64 lets 4 vCPUs run" [ $? -eq 0 ]
else
    skip "pids.max" "no pids controller in any cgroup hierarchy"
fi

# Host paths outside the jail do not resolve.
ln -s /etc/hostname "$T/disk-link"
expect_error "a disk symlink to a host file does not resolve" "/etc/hostname\|disk-link\|No such file" \
    "$V" "${J[@]}" --id $ID -- vigil run --kernel "$K" --disk "path=$T/disk-link"
echo '{}' >"$T/cfg.json"
expect_error "a file the jailer does not bring in is not there" "cfg.json" \
    "$V" "${J[@]}" --id $ID -- vigil run --no-api --config-file "$T/cfg.json"
expect_error "a missing --netns" "--netns" "$V" "${J[@]}" --id $ID --netns /nonexistent -- vigil run --kernel "$K"
check "cgroup removed after a failed jail" [ ! -e "$CG2/vigil/$ID" ]

# A previous jailed vigil (as the uid) could leave a symlink in the socket
# directory it owned; the next jail must not follow it out (a chown of a host dir).
mkdir -p "$T/victim"; ln -sfn "$T/victim" "$ROOT/run/x"
expect_error "a planted symlink in the jail is not followed" "not a directory" \
    "$V" "${J[@]}" --id $ID -- vigil run --kernel "$K" --api-sock /run/x/api.sock
check "the symlink's target kept its owner" [ "$(stat -c %u "$T/victim")" = 0 ]
rm -f "$ROOT/run/x"

# Relative paths come in relative to the jail's root (vigil's cwd there is /).
(cd "$(dirname "$G")" && timeout 60 "$V" "${J[@]}" --id $ID -- vigil run --kernel guests/tiny-poweroff.bin \
    --api-sock run/rel.sock >"$T/out" 2>"$T/err")
check "relative kernel and socket paths" [ $? -eq 0 ] && [ -f "$ROOT/guests/tiny-poweroff.bin" ]
# uid 0 is allowed, with no capability left.
timeout 60 "$V" jail --uid 0 --gid 0 --chroot-base "$T" --id $ID -- vigil run --kernel "$K" >"$T/out" 2>"$T/err"
check "uid 0 boots" [ $? -eq 0 ]

# A disk brought in is the host file: the jailed vigil writes through it.
dd if=/dev/zero of="$T/disk.img" bs=1M count=1 status=none
chown $UIDN:$GIDN "$T/disk.img"
timeout 60 "$V" "${J[@]}" --id $ID -- vigil run --kernel "$K" --disk "path=$T/disk.img" >"$T/out" 2>"$T/err"
check "a jailed vigil opens a disk brought in" [ $? -eq 0 ]
chown 0:0 "$T/disk.img"; chmod 600 "$T/disk.img"
expect_error "a disk the uid cannot open is refused" "disk.img" \
    "$V" "${J[@]}" --id $ID -- vigil run --kernel "$K" --disk "path=$T/disk.img"

finish
