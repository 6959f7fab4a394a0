#!/bin/bash
# Tests that run vigil itself on this host's /dev/kvm, no lab needed:
#  - bad input of every kind gets one line on stderr and a non-zero exit;
#  - tiny self-checking guests (tests/guests/tiny.S) exercise the exit path,
#    the devices, the policy and each exit status.
# Usage: tests/native.sh BUILD_DIR   Prints "native: N passed, N failed".
set -u
B=${1:-build}
V=$B/vigil
G=$B/tests/guests
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
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
    elif ! grep -q -- "$pat" "$T/err"; then fail "$name" "stderr lacks '$pat': $(cat "$T/err")"
    else pass "$name"; fi
}

# expect_run NAME STATUS STDOUT_PATTERN CMD...: exit STATUS, stdout matches.
expect_run() {
    local name=$1 want=$2 pat=$3; shift 3
    timeout 120 "$@" >"$T/out" 2>"$T/err" <"${STDIN_FILE:-/dev/null}"; local rc=$?
    if [ $rc -ne "$want" ]; then fail "$name" "exit $rc, want $want: $(tail -c 300 "$T/err")"
    elif [ -n "$pat" ] && ! grep -q -- "$pat" "$T/out"; then fail "$name" "stdout lacks '$pat': $(head -c 300 "$T/out")"
    else pass "$name"; fi
}

K=/boot/$(ls /boot | grep -m1 '^vmlinuz-')
head -c 1000 "$K" >"$T/truncated"
cp "$K" "$T/oldproto" && printf '\x09\x02' | dd of="$T/oldproto" bs=1 seek=$((0x206)) conv=notrunc 2>/dev/null
head -c 300M /dev/zero >"$T/big.initrd"
: >"$T/empty"

# --- the command line ---------------------------------------------------
expect_error "no command" "missing command" "$V"
expect_error "unknown command" "unknown command" "$V" frobnicate
expect_error "unknown option" "unknown option" "$V" run --frobnicate
expect_error "missing argument" "needs an argument" "$V" run --kernel
expect_error "malformed size" "expected a size" "$V" run --mem 12X
expect_error "mem below minimum" "below the minimum" "$V" run --mem 16M
expect_error "mem beyond host" "more than this host" "$V" run --kernel "$G/tiny-poweroff.bin" --mem 900G
expect_error "cpus zero" "expected a number" "$V" run --cpus 0
expect_error "cpus too many" "expected a number" "$V" run --cpus 1000
# Firecracker's instance id: letters, digits and '-' (a UUID), 1 to 64.
expect_error "--id with '_'" "only letters, digits and '-'" "$V" run --id vm_1 --kernel "$G/tiny-poweroff.bin"
expect_error "--id too long" "1 to 64 characters" "$V" run --id "$(printf 'a%.0s' $(seq 65))" --kernel "$G/tiny-poweroff.bin"
expect_error "bad console" "expected stdio" "$V" run --kernel "$G/tiny-poweroff.bin" --console tty
# --- kernel and initrd images -------------------------------------------
expect_error "missing kernel" "No such file" "$V" run --kernel "$T/nope"
expect_error "kernel is a directory" "directory" "$V" run --kernel /tmp
expect_error "empty kernel" "empty" "$V" run --kernel "$T/empty"
expect_error "not a kernel" "neither a bzImage nor an ELF" "$V" run --kernel /etc/passwd
expect_error "truncated bzImage" "truncated" "$V" run --kernel "$T/truncated"
expect_error "old boot protocol" "no 64-bit entry" "$V" run --kernel "$T/oldproto"
expect_error "ELF without PVH note" "no PVH entry note" "$V" run --kernel "$V"
expect_error "missing initrd" "No such file" "$V" run --kernel "$K" --initrd "$T/nope"
expect_error "initrd too big" "initrd" "$V" run --kernel "$K" --initrd "$T/big.initrd" --mem 256M
# --- /dev/kvm -----------------------------------------------------------
expect_error "no /dev/kvm" "does not exist" unshare -m sh -c "mount -t tmpfs none /dev && exec $V run --kernel $G/tiny-poweroff.bin"
expect_error "/dev/kvm not permitted" "permission denied" setpriv --reuid=nobody --regid=nogroup --clear-groups "$V" run --kernel "$G/tiny-poweroff.bin"
expect_error "not a KVM device" "API version" unshare -m sh -c "mount --bind /dev/null /dev/kvm && exec $V run --kernel $G/tiny-poweroff.bin"

# --- tiny guests: the exit path and each exit status --------------------
expect_run "poweroff exits 0" 0 "tiny: denied ok" "$V" run --kernel "$G/tiny-poweroff.bin"
expect_run "PIT ticks through the 8259 wake HLT" 0 "tiny: timer ok" "$V" run --kernel "$G/tiny-timer.bin"
# The guest sees a brand string (KVM's, else the host CPU's, else vigil's
# own) and, on AMD with 2 vCPUs, CmpLegacy.
expect_run "CPUID brand string not empty" 0 "tiny: brand '[^']" "$V" run --kernel "$G/tiny-brand.bin" --cpus 2
if grep -q -m1 "AuthenticAMD" /proc/cpuinfo; then
    expect_run "CPUID cmp_legacy on AMD, 2 vCPUs" 0 "tiny: cmp_legacy 1" "$V" run --kernel "$G/tiny-brand.bin" --cpus 2
fi
expect_run "--id takes a UUID" 0 "tiny: denied ok" "$V" run --id 0f8fad5b-d9cb-469f-a165-70867728950e --kernel "$G/tiny-poweroff.bin"
expect_run "i8042 reset exits 2" 2 "tiny: hello" "$V" run --kernel "$G/tiny-kbdreset.bin"
expect_run "ACPI reset exits 2" 2 "tiny: hello" "$V" run --kernel "$G/tiny-acpireset.bin"
expect_run "triple fault exits 3" 3 "tiny: hello" "$V" run --kernel "$G/tiny-triple.bin"
expect_run "pvpanic exits 4" 4 "tiny: hello" "$V" run --kernel "$G/tiny-panic.bin"
expect_run "hostile accesses denied" 0 "tiny: denied ok" "$V" run --kernel "$G/tiny-wild.bin" --cpus 2
echo "line-from-stdin-42" >"$T/line"
STDIN_FILE=$T/line expect_run "stdin reaches the guest" 0 "line-from-stdin-42" "$V" run --kernel "$G/tiny-echo.bin"
expect_run "console to file" 0 "" "$V" run --kernel "$G/tiny-poweroff.bin" --console "file:$T/con"
if grep -q "tiny: denied ok" "$T/con"; then pass "console file has output"; else fail "console file has output" "$(head -c 200 "$T/con")"; fi

# Every virtio device attached at once: created, put on PCI, torn down in
# order (the ASan run of this suite catches a use-after-free there).
truncate -s 8M "$T/disk.img"; truncate -s 4M "$T/ro.img"
expect_run "virtio devices attach and detach" 0 "tiny: denied ok" "$V" run --kernel "$G/tiny-poweroff.bin" \
    --disk "path=$T/disk.img" --disk "path=$T/ro.img,ro,id=golden" --net "user,hostfwd=tcp:127.0.0.1:$((20000 + RANDOM % 20000))-:80" \
    --vsock "cid=3,uds=$T/vsock" --rng --console-device virtio --stats
if grep -q "^device golden (virtio-blk): requests=0" "$T/err" && [ ! -e "$T/vsock" ]; then pass "device stats printed, vsock socket removed"
else fail "device stats printed, vsock socket removed" "$(grep device "$T/err"; ls "$T")"; fi
expect_error "bad --disk" "disk" "$V" run --kernel "$G/tiny-poweroff.bin" --disk "path=$T/nope"
expect_error "bad --net" "expected tap=IFNAME or user" "$V" run --net bogus
expect_error "bad --vsock" "cid" "$V" run --vsock cid=1
expect_error "bad --console-device" "expected serial or virtio" "$V" run --console-device vga

# --stats: per-vCPU counts for COM1 and the denied port.
"$V" run --kernel "$G/tiny-poweroff.bin" --stats >/dev/null 2>"$T/stats"
if grep -Eq '^vcpu0 port 0x3f8 com1: [1-9]' "$T/stats" &&
   grep -Eq '^vcpu0 port 0x1234 \(unclaimed\): 2 denied=2' "$T/stats" &&
   grep -Eq '^total denied: [1-9]' "$T/stats"; then pass "stats count COM1 and denials"
else fail "stats count COM1 and denials" "$(cat "$T/stats")"; fi

# MMIO to empty PCI window space is unclaimed and denied, like a stray port.
"$V" run --kernel "$G/tiny-wild.bin" --stats >/dev/null 2>"$T/stats"
if grep -Eq '^vcpu0 mmio 0xd0000000 \(unclaimed\): 2 denied=2' "$T/stats" &&
   grep -Eq '^vcpu0 port 0x80 \(unclaimed\): 8 denied=8' "$T/stats"; then pass "stray MMIO and REP OUTS denied and counted"
else fail "stray MMIO and REP OUTS denied and counted" "$(cat "$T/stats")"; fi

# Guest RAM is never offered to KSM: merged pages would be a side channel
# between VMs (smaps marks MADV_MERGEABLE areas "mg").
"$V" run --kernel "$G/tiny-hang.bin" --console none >/dev/null 2>&1 & pid=$!
sleep 0.5
if grep -q "VmFlags:.* mg" "/proc/$pid/smaps" 2>/dev/null; then fail "guest RAM not KSM-mergeable" "an mg area in smaps"
elif ! grep -q "VmFlags" "/proc/$pid/smaps" 2>/dev/null; then fail "guest RAM not KSM-mergeable" "no smaps to read"
else pass "guest RAM not KSM-mergeable"; fi
kill -TERM $pid; wait $pid 2>/dev/null

# A signal stops a guest that never ends: exit 5, promptly.
"$V" run --kernel "$G/tiny-hang.bin" >/dev/null 2>&1 & pid=$!
sleep 1; kill -TERM $pid
for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then kill -9 $pid; fail "SIGTERM stops vigil" "still running after 5 s"
else wait $pid; rc=$?; [ $rc -eq 5 ] && pass "SIGTERM stops vigil (exit 5)" || fail "SIGTERM stops vigil" "exit $rc"; fi

# Ctrl-A x on a terminal quits with 5 and restores the terminal.
if python3 tests/ctrl_a_x.py "$V" "$G/tiny-hang.bin" >"$T/pty" 2>&1; then pass "Ctrl-A x quits, terminal restored"
else fail "Ctrl-A x quits, terminal restored" "$(tail -c 300 "$T/pty")"; fi

# Ctrl-A x behind typed text the guest never reads (COM1's FIFO full) still quits.
if python3 tests/ctrl_a_x.py "$V" "$G/tiny-hang.bin" typeahead >"$T/pty" 2>&1; then pass "Ctrl-A x after unread input quits"
else fail "Ctrl-A x after unread input quits" "$(tail -c 300 "$T/pty")"; fi

# A guest printing without pause to a stdout nobody reads: the vCPU never
# waits on the reader, so SIGTERM still stops vigil, within a second.
if python3 tests/console_flood.py "$V" "$G/tiny-flood.bin" >"$T/flood" 2>&1; then pass "SIGTERM stops a guest flooding an unread stdout"
else fail "SIGTERM stops a guest flooding an unread stdout" "$(tail -c 300 "$T/flood")"; fi

# --console file: has a cap (max=SIZE, 64 MiB by default); past it output is dropped.
expect_error "bad console max" "expected a size" "$V" run --kernel "$G/tiny-poweroff.bin" --console "file:$T/c,max=12X"
"$V" run --kernel "$G/tiny-flood.bin" --console "file:$T/capped,max=20K" >/dev/null 2>"$T/err" & pid=$!
for _ in $(seq 100); do [ "$(stat -c %s "$T/capped" 2>/dev/null || echo 0)" -ge 20480 ] && break; sleep 0.1; done
sleep 0.5; kill -TERM $pid; wait $pid
size=$(stat -c %s "$T/capped" 2>/dev/null || echo missing)
[ "$size" = 20480 ] && grep -q "dropped" "$T/err" && pass "console file capped at max=20K" || fail "console file capped at max=20K" "size $size: $(tail -c 200 "$T/err")"

echo "native: $passed passed, $failed failed"
[ $failed -eq 0 ]
