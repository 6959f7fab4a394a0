#!/bin/bash
# Faults lose nothing (issue 11, deliverable 6), on this host's KVM with the
# hostile guest (tests/guests/hostile.S):
#  - a disk that fails a byte range with EIO (tests/faultfs.c: a FUSE image,
#    this kernel has no device-mapper): exactly the requests on that range
#    get VIRTIO_BLK_S_IOERR, the VM goes on and powers off, the other writes
#    are on the image byte for byte; with io=threads and io=uring (O_DIRECT);
#  - a TAP device deleted under a live virtio-net, a vsock peer that hangs
#    up mid-stream, a stdout whose reader goes away: each is said once on
#    stderr ("vigil: WHO: WHAT (ERROR); THEN"), counted in --stats ("fault
#    WHO: WHAT: N"), and the VM goes on and ends normally.
# Usage: tests/faults.sh BUILD_DIR   Prints "faults: N passed, N failed".
set -u
B=${1:-build}
V=$B/vigil
H=$B/tests/guests/hostile.bin
FS=$B/tests/faultfs
T=$(mktemp -d)
. "$(dirname "$0")/vsock_peer_gone.sh"
mnt=
cleanup() {
    [ -n "$mnt" ] && { fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null; }
    rm -rf "$T"
}
trap cleanup EXIT
passed=0 failed=0 skipped=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skip() { echo "SKIP $1: $2"; skipped=$((skipped + 1)); }
errs() { grep -v 'kvm_pvm' "$T/err" | grep -v '^vcpu\|^vm \|^total' | tail -c 400; }

# once PATTERN: the line is on stderr exactly once.
once() { [ "$(grep -c -- "$1" "$T/err")" -eq 1 ]; }

# ---- a disk that goes bad on sectors 2 and 3 ------------------------------
# sector_is N BYTE: the backing image's sector N holds 512 times BYTE (hex).
sector_is() {
    [ "$(od -An -v -tx1 -j $(($1 * 512)) -N 512 "$T/back.img" | tr -s ' \n' '\n\n' | grep -v '^$' | sort -u)" = "$2" ]
}

disk_case() {  # disk_case ENGINE FROM TO WANT: the guest's statuses are WANT
    local io=$1 from=$2 to=$3 want=$4 name="EIO on bytes [$2, $3), io=$1"
    rm -f "$T/back.img"
    truncate -s 1M "$T/back.img"
    "$FS" "$T/back.img" "$mnt" "$from" "$to" -f -s 2>"$T/fs.log" &
    local fpid=$! i
    for i in $(seq 50); do [ -e "$mnt/disk.img" ] && break; sleep 0.1; done
    if [ ! -e "$mnt/disk.img" ]; then
        kill $fpid 2>/dev/null; wait $fpid 2>/dev/null
        fail "$name" "faultfs did not mount: $(cat "$T/fs.log")"; return
    fi
    timeout 60 "$V" run --kernel "$H" --cmdline attack=55 --disk "path=$mnt/disk.img,io=$io" --stats \
        >"$T/out" 2>"$T/err" </dev/null
    local rc=$?
    fusermount3 -u "$mnt"; wait $fpid 2>/dev/null
    local got; got=$(grep -o 'blk: w=[0-9X]* r=[0-9X]*' "$T/out")
    local nerr; nerr=$(grep -c 'faultfs: EIO' "$T/fs.log")
    local bad=""
    [ $rc -eq 0 ] || bad+=" exit $rc;"
    grep -q '^hostile: ok' "$T/out" || bad+=" no 'hostile: ok' (the VM did not go on to its end);"
    [ "$got" = "blk: $want" ] || bad+=" statuses '$got', want 'blk: $want';"
    local n errors
    n=$(grep -o '1' <<<"$want" | wc -l)
    errors=$(grep -o '^device drive0 (virtio-blk): requests=16 bytes=[0-9]* errors=[0-9]*' "$T/err" | grep -o '[0-9]*$')
    [ "${errors:-x}" = "$n" ] || bad+=" --stats errors=${errors:-none}, want $n;"
    [ "$nerr" -eq "$n" ] || bad+=" faultfs refused $nerr requests, want $n;"
    # what was written OK is there; what failed left the image as it was
    for i in 0 1 2 3 4 5 6 7; do
        local st=${want:$((2 + i)):1}
        if [ "$st" = 0 ]; then sector_is $i "a$i" || bad+=" sector $i not written;"
        else sector_is $i 00 || bad+=" sector $i written though its write failed;"; fi
    done
    sector_is 8 00 || bad+=" sector 8 touched;"
    [ -z "$bad" ] && pass "$name: $want, the VM goes on, the other writes intact" || fail "$name" "$bad $(errs)"
}

if [ ! -x "$FS" ] && ! make -s B="$B" "$FS" >/dev/null 2>&1; then
    skip "disk EIO" "tests/faultfs.c does not build here (libfuse3-dev)"
elif [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
    skip "disk EIO" "no /dev/fuse or fusermount3 on this host"
else
    mnt=$T/mnt
    mkdir -p "$mnt"
    for io in threads uring; do
        disk_case $io 1024 2048 "w=00110000 r=00110000"
    done
    # the same image with nothing failing: every request succeeds
    disk_case threads 0 0 "w=00000000 r=00000000"
    # one byte of sector 7 is enough to fail its requests, and only them
    disk_case uring 4000 4001 "w=00000001 r=00000001"
fi

# ---- a TAP device deleted under a live virtio-net --------------------------
# evloop_ticks PID: user + system clock ticks of vigil's event thread.
evloop_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        [ "$(cat "$t/comm" 2>/dev/null)" = vg-evloop ] && cut -d' ' -f14,15 "$t/stat" | awk '{print $1 + $2}' && return
    done
    echo 0
}
tap_case() {
    local name="TAP deleted: said once, counted, the VM goes on"
    local tap=flt$$
    if ! ip tuntap add dev "$tap" mode tap 2>/dev/null || ! ip link set "$tap" up 2>/dev/null; then
        ip link del "$tap" 2>/dev/null; skip "$name" "cannot make a TAP device here"; return
    fi
    "$V" run --kernel "$H" --cmdline attack=53 --net "tap=$tap" --stats >"$T/out" 2>"$T/err" </dev/null &
    local vpid=$! i
    for i in $(seq 100); do grep -q 'hostile: net live' "$T/out" && break; sleep 0.1; done
    if ! grep -q 'hostile: net live' "$T/out"; then
        kill -KILL $vpid; wait $vpid 2>/dev/null; ip link del "$tap" 2>/dev/null
        fail "$name" "the guest never brought virtio-net up: $(errs)"; return
    fi
    # 2 s first: the host's own frames (IPv6 router solicitations...) use up
    # the guest's few receive buffers and the device stops receiving; the
    # deletion must be seen all the same, and the event thread must not
    # spin on the frames that wait meanwhile.
    local t0 t1
    t0=$(evloop_ticks $vpid)
    sleep 2
    t1=$(evloop_ticks $vpid)
    ip link del "$tap"
    for i in $(seq 50); do grep -q 'TAP device gone' "$T/err" && break; sleep 0.1; done
    sleep 0.5
    local alive=1
    kill -0 $vpid 2>/dev/null || alive=0
    kill -TERM $vpid 2>/dev/null
    for i in $(seq 50); do kill -0 $vpid 2>/dev/null || break; sleep 0.1; done
    kill -KILL $vpid 2>/dev/null
    wait $vpid; local rc=$?
    local bad=""
    [ $alive = 1 ] || bad+=" vigil ended when its TAP went away;"
    [ $((t1 - t0)) -le 30 ] || bad+=" the event thread used $((t1 - t0)) ticks in 2 s before the deletion;"
    [ $rc -eq 5 ] || bad+=" exit $rc after SIGTERM, want 5;"
    once "^vigil: net0 (tap $tap): TAP device gone; the device stops sending and receiving, the VM goes on$" ||
        bad+=" not said exactly once;"
    grep -q "^fault net0 (tap $tap): TAP device gone: 1$" "$T/err" || bad+=" not in --stats;"
    grep -q '^device net0 (virtio-net): requests=' "$T/err" || bad+=" no device stats;"
    [ -z "$bad" ] && pass "$name" || fail "$name" "$bad $(errs)"
}
tap_case

# ---- a vsock peer that hangs up mid-stream ---------------------------------
vsock_case() {
    local name="vsock peer gone mid-stream: said once, counted, the VM ends normally"
    local rc
    vsock_peer_run "$V" "$H" "$T"
    local bad=""
    [ $rc -eq 0 ] || bad+=" exit $rc;"
    grep -q '^hostile: ok' "$T/out" || bad+=" the guest did not finish;"
    # the peer stops reading at 64 KiB or the first recv past it
    local got; got=$(cat "$T/peer" 2>/dev/null)
    [ "${got:-0}" -ge 65536 ] && [ "$got" -lt 2048000 ] || bad+=" the peer got ${got:-no} bytes;"
    once '^vigil: vsock: a host peer went away mid-stream (\(Broken pipe\|Connection reset by peer\)); its connection is reset, the device and other connections go on$' ||
        bad+=" not said exactly once;"
    grep -q '^fault vsock: a host peer went away mid-stream: 1$' "$T/err" || bad+=" not counted once in --stats;"
    [ -z "$bad" ] && pass "$name" || fail "$name" "$bad $(errs)"
}
vsock_case

# ---- a stdout whose reader goes away ---------------------------------------
stdout_case() {
    local name="stdout closed mid-flood: said once, counted, SIGTERM still stops vigil"
    rm -f "$T/fifo"; mkfifo "$T/fifo"
    head -c 4096 <"$T/fifo" >/dev/null &
    local hpid=$! i
    "$V" run --kernel "$H" --cmdline attack=52 --stats >"$T/fifo" 2>"$T/err" </dev/null &
    local vpid=$!
    for i in $(seq 100); do grep -q 'reader went away' "$T/err" && break; sleep 0.1; done
    sleep 0.5
    local alive=1
    kill -0 "$vpid" 2>/dev/null || alive=0
    kill -TERM "$vpid" 2>/dev/null
    for i in $(seq 50); do kill -0 $vpid 2>/dev/null || break; sleep 0.1; done
    kill -KILL $vpid 2>/dev/null
    wait $vpid; local rc=$?
    wait $hpid 2>/dev/null
    local bad=""
    [ $rc -eq 5 ] || bad+=" exit $rc after SIGTERM, want 5;"
    [ $alive = 1 ] || bad+=" vigil ended when its stdout closed;"
    once "^vigil: console: its output's reader went away (Broken pipe); guest output is dropped from here on, the VM goes on$" ||
        bad+=" not said exactly once;"
    grep -q "^fault console: its output's reader went away: 1$" "$T/err" || bad+=" not counted once in --stats;"
    grep -Eq '^console: written=[0-9]+ dropped=[1-9][0-9]* reader_gone=1$' "$T/err" || bad+=" no console line in --stats;"
    grep -q '^vigil: stopped by user' "$T/err" || bad+=" not stopped by SIGTERM;"
    [ -z "$bad" ] && pass "$name" || fail "$name" "$bad $(errs)"
}
stdout_case

echo "faults: $skipped skipped"
echo "faults: $passed passed, $failed failed"
[ $failed -eq 0 ]
