#!/bin/bash
# Live introspection and the guest core dump against the real vigil on this
# host's /dev/kvm, with the tiny-peek guest (tests/guests/tiny.S: a kernel
# half mapping 0xffffffff80000000 -> gpa 0 with one 2 MiB page, r12 =
# 0x1234abcd, then a spin): registers, memory by gpa and by gva compared
# with the guest image's own bytes, translations, every error of the memory
# call, vigil ctl's regs/mem/translate/dump, a dump read by readelf and gdb,
# the dump's errors; and vigil's page walk against KVM_TRANSLATE
# (build/tests/kvm_translate_check). Usage: tests/introspect.sh BUILD_DIR.
# Prints "introspect: N passed, N failed".
set -u
B=${1:-build}
V=$(realpath "$B/vigil")
G=$B/tests/guests
IMG=$G/tiny-peek.bin
T=$(mktemp -d)
passed=0 failed=0
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    mountpoint -q "$T/small" 2>/dev/null && umount "$T/small"
    rm -rf "$T"
}
trap cleanup EXIT

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
check() { if [ "$2" = 0 ]; then pass "$1"; else fail "$1" "$3"; fi; }

# call METHOD PATH [BODY]: $code, $ctype and the body in $T/resp ($body as text).
call() {
    local m=$1 p=$2 d=${3-}
    local args=(-s -o "$T/resp" -w '%{http_code} %{content_type}' --max-time 60 --unix-socket "$SOCK" -X "$m")
    [ -n "$d" ] && args+=(--data "$d")
    local w; w=$(curl "${args[@]}" "http://localhost$p")
    code=${w%% *} ctype=${w#* }
    body=$(tr -d '\0' <"$T/resp" 2>/dev/null)
}
expect() { # expect CODE NAME METHOD PATH [BODY] [BODY-PATTERN]
    local want=$1 name=$2; shift 2
    local pat=${4-}
    call "$1" "$2" "${3-}"
    if [ "$code" != "$want" ]; then fail "$name" "HTTP $code, want $want: $body"
    elif [ -n "$pat" ] && ! grep -q -- "$pat" <<<"$body"; then fail "$name" "body lacks '$pat': $body"
    else pass "$name"; fi
}
fault() { expect 400 "$@"; }
wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done; return 1; }
wait_con() { for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
# the image's bytes as the guest has them: the kernel proper (after the
# 0x400 bytes of setup) at 1 MiB
image() { tail -c +$((0x400 + 1 + $1)) "$IMG" | head -c "$2"; }

# --- before the start: every call says so ---------------------------------
SOCK=$T/pre.sock
"$V" run --api-sock "$SOCK" </dev/null >/dev/null 2>&1 &
PRE=$!; pids+=($PRE)
wait_sock "$SOCK"
fault "memory before start" GET "/vigil/memory?gpa=0x100000&len=16" "" "not supported before starting"
fault "translate before start" GET "/vigil/vcpus/0/translate?gva=0x1000" "" "not supported before starting"
fault "dump before start" PUT /vigil/dump "{\"path\":\"$T/pre.core\"}" "not supported before starting"
check "no file from a dump before start" "$([ ! -e "$T/pre.core" ]; echo $?)" "$(ls "$T")"
kill -TERM $PRE; wait $PRE 2>/dev/null

# --- a running tiny guest ----------------------------------------------------
SOCK=$T/api.sock
"$V" run --kernel "$IMG" --cpus 2 --api-sock "$SOCK" --console "file:$T/con" </dev/null >"$T/out" 2>"$T/err" &
VPID=$!; pids+=($VPID)
wait_sock "$SOCK" && wait_con "$T/con" "tiny: peek"
check "tiny-peek runs" $? "$(cat "$T/con" "$T/err")"

expect 200 "regs of vCPU 0" GET /vigil/vcpus/0/regs "" '"r12":"0x1234abcd"'
expect 200 "regs of vCPU 1" GET /vigil/vcpus/1/regs "" '"rip":'

call GET "/vigil/memory?gpa=0x100000&len=4096"
check "memory by gpa: the guest's code" "$(cmp -s "$T/resp" <(image 0 4096); echo $?)" "HTTP $code"
check "memory is application/octet-stream" "$([ "$ctype" = application/octet-stream ]; echo $?)" "$ctype"
# (0x101ff0 on the guest changed itself: its own page tables)
call GET "/vigil/memory?gva=0xffffffff80100800&vcpu=0&len=4096"
check "memory by gva (kernel half, over a 4 KiB boundary)" "$(cmp -s "$T/resp" <(image 0x800 4096); echo $?)" "HTTP $code $body"
call GET "/vigil/memory?gva=1048576&vcpu=1&len=100"
check "memory by gva (identity map, decimal, vCPU 1)" "$(cmp -s "$T/resp" <(image 0 100); echo $?)" "HTTP $code $body"
call GET "/vigil/memory?gpa=0&len=1048576"
check "a 1 MiB read" "$([ "$code" = 200 ] && [ "$(stat -c %s "$T/resp")" = 1048576 ]; echo $?)" "HTTP $code"
call GET "/vigil/memory?gva=0xffffffff80103000&vcpu=0&len=11"
check "the guest's string by gva" "$([ "$body" = "tiny: peek" ]; echo $?)" "$body"

expect 200 "translate a kernel-half address" GET "/vigil/vcpus/0/translate?gva=0xffffffff80103004" "" \
    '"gva":"0xffffffff80103004","gpa":"0x103004","page_size":2097152,"writable":true,"user":false,"nx":false'
expect 200 "translate an identity-mapped address" GET "/vigil/vcpus/1/translate?gva=0x5000" "" '"gpa":"0x5000"'
fault "translate: not present" GET "/vigil/vcpus/0/translate?gva=0xffff800000000000" "" \
    "gva 0xffff800000000000: not present"
fault "translate: no such vCPU" GET "/vigil/vcpus/2/translate?gva=0x1000" "" "vCPU 2 does not exist"

# --- each error of the memory call -------------------------------------------
fault "memory: outside guest memory" GET "/vigil/memory?gpa=0x100000000&len=16" "" \
    "gpa 0x100000000+16: outside guest memory"
call GET /machine-config
MEM=$(grep -o '"mem_size_mib": *[0-9]*' <<<"$body" | grep -o '[0-9]*$')
fault "memory: running past RAM's end" GET "/vigil/memory?gpa=$(( (MEM << 20) - 8 ))&len=16" "" "outside guest memory"
fault "memory: not mapped" GET "/vigil/memory?gva=0xffff800000000000&vcpu=0&len=16" "" \
    "gva 0xffff800000000000: not present"
fault "memory: mapped, then not" GET "/vigil/memory?gva=0xffffffff801ffff0&vcpu=0&len=32" "" \
    "gva 0xffffffff80200000: not present"
fault "memory: non-canonical" GET "/vigil/memory?gva=0x800000000000&vcpu=0&len=16" "" "non-canonical"
fault "memory: too long" GET "/vigil/memory?gpa=0x100000&len=1048577" "" "len 1048577 is out of range"
fault "memory: zero length" GET "/vigil/memory?gpa=0x100000&len=0" "" "out of range"
fault "memory: bad number" GET "/vigil/memory?gpa=0x10zz&len=16" "" "gpa '0x10zz' is not a number"
fault "memory: bad length" GET "/vigil/memory?gpa=0x1000&len=-1" "" "len '-1' is not a number"
fault "memory: both gpa and gva" GET "/vigil/memory?gpa=0x1000&gva=0x1000&vcpu=0&len=16" "" "exactly one of gpa and gva"
fault "memory: neither gpa nor gva" GET "/vigil/memory?len=16" "" "exactly one of gpa and gva"
fault "memory: gva without vcpu" GET "/vigil/memory?gva=0x1000&len=16" "" "gva needs vcpu"
fault "memory: no such vcpu" GET "/vigil/memory?gva=0x1000&vcpu=2&len=16" "" "vCPU 2 does not exist"
fault "memory: missing len" GET "/vigil/memory?gpa=0x1000" "" "missing len"
fault "memory: unknown parameter" GET "/vigil/memory?gpa=0x1000&len=1&offset=2" "" "unknown query parameter"
fault "memory: a decoded & forges no parameter" GET "/vigil/memory?gpa=0x1000%26len%3D1" "" "missing len"

# --- vigil ctl ---------------------------------------------------------------
ctl() { "$V" ctl --api-sock "$SOCK" "$@" >"$T/ctl.out" 2>"$T/ctl.err"; }
ctl regs; check "ctl regs" "$(grep -q '"r12":"0x1234abcd"' "$T/ctl.out"; echo $?)" "$(cat "$T/ctl.out" "$T/ctl.err")"
ctl regs 1; check "ctl regs 1" "$(grep -q '"rip"' "$T/ctl.out"; echo $?)" "$(cat "$T/ctl.err")"
ctl mem --gva 0xffffffff80103000 --vcpu 0 --len 32
check "ctl mem: a hex dump" "$(grep -q '^ffffffff80103000  74 69 6e 79 3a 20 70 65  65 6b 0a 00 .*|tiny: peek......|$' "$T/ctl.out"; echo $?)" "$(cat "$T/ctl.out" "$T/ctl.err")"
ctl mem --gpa 0x100000 --len 5000 --out "$T/mem.bin"
check "ctl mem --out: raw bytes" "$(cmp -s "$T/mem.bin" <(image 0 5000); echo $?)" "$(cat "$T/ctl.err")"
ctl translate 0 0xffffffff80100000
check "ctl translate" "$(grep -q '"gpa":"0x100000"' "$T/ctl.out"; echo $?)" "$(cat "$T/ctl.out" "$T/ctl.err")"
ctl mem --gva 0xffff800000000000 --vcpu 0 --len 1; rc=$?
check "ctl mem: an error is one line, exit 1" "$([ $rc = 1 ] && [ "$(cat "$T/ctl.err")" = "vigil: gva 0xffff800000000000: not present" ]; echo $?)" "rc $rc $(cat "$T/ctl.err")"
ctl mem --gpa 0x1000; rc=$?
check "ctl mem: missing --len" "$([ $rc = 1 ] && grep -q "missing --len" "$T/ctl.err"; echo $?)" "$(cat "$T/ctl.err")"
(cd "$T" && "$V" ctl --api-sock "$SOCK" dump rel.core >"$T/ctl.out" 2>"$T/ctl.err"); rc=$?
check "ctl dump: a relative path is the caller's" "$([ $rc = 0 ] && [ -s "$T/rel.core" ]; echo $?)" "rc $rc $(cat "$T/ctl.err")"

# --- the core dump -----------------------------------------------------------
expect 204 "dump a running guest" PUT /vigil/dump "{\"path\":\"$T/core\"}"
expect 200 "and it runs on" GET / "" '"state":"Running"'
readelf -h -l -n "$T/core" >"$T/readelf" 2>&1
check "readelf: an x86-64 core" "$(grep -q 'Type: *CORE' "$T/readelf" && grep -q 'Machine: *Advanced Micro Devices X86-64' "$T/readelf"; echo $?)" "$(head -20 "$T/readelf")"
check "readelf: one NT_PRSTATUS per vCPU" "$([ "$(grep -c NT_PRSTATUS "$T/readelf")" = 2 ]; echo $?)" "$(grep -A4 'Displaying notes' "$T/readelf")"
check "readelf: RAM and the kernel half as LOAD segments" \
    "$(grep -A1 LOAD "$T/readelf" | grep -q '0xffffffff80000000 0x0000000000000000' && grep -q 'LOAD.*0x0000000000000000 0x0000000000000000' "$T/readelf"; echo $?)" "$(grep -A1 LOAD "$T/readelf")"
check "the core holds all of RAM" "$([ "$(stat -c %s "$T/core")" -gt $((128 << 20)) ]; echo $?)" "$(stat -c %s "$T/core")"
timeout 60 gdb -batch -nx -c "$T/core" -ex 'info threads' -ex 'info registers r12' -ex 'x/s 0xffffffff80103000' \
    -ex 'x/s 0x103000' >"$T/gdb" 2>&1
check "gdb: a thread per vCPU" "$(grep -q '^\* 1 *LWP 1' "$T/gdb" && grep -q '^  2 *LWP 2' "$T/gdb"; echo $?)" "$(cat "$T/gdb")"
check "gdb: info registers" "$(grep -q '^r12 *0x1234abcd' "$T/gdb"; echo $?)" "$(cat "$T/gdb")"
check "gdb: a kernel-half virtual address" "$(grep -q '^0xffffffff80103000:.*"tiny: peek\\n"' "$T/gdb"; echo $?)" "$(cat "$T/gdb")"
check "gdb: a physical address" "$(grep -q '^0x103000:.*"tiny: peek\\n"' "$T/gdb"; echo $?)" "$(cat "$T/gdb")"
objcopy -I binary -O elf64-x86-64 -B i386:x86-64 "$G/tiny-peek.bin" "$T/sym.elf" 2>/dev/null
timeout 60 gdb -batch -nx -ex 'info registers rip' "$T/sym.elf" "$T/core" >"$T/gdb2" 2>&1
check "gdb: with a symbol file, info registers" "$(grep -q '^rip *0x10' "$T/gdb2"; echo $?)" "$(cat "$T/gdb2")"

expect 204 "pause" PATCH /vm '{"state":"Paused"}'
expect 204 "dump a paused guest" PUT /vigil/dump "{\"path\":\"$T/core2\"}"
expect 200 "and it stays paused" GET / "" '"state":"Paused"'
expect 204 "resume" PATCH /vm '{"state":"Resumed"}'
fault "dump: no such directory" PUT /vigil/dump "{\"path\":\"$T/nope/core\"}" "No such file or directory"
fault "dump: not a regular file" PUT /vigil/dump '{"path":"/dev/null"}' "not a regular file"
check "/dev/null is still there" "$([ -c /dev/null ]; echo $?)" "$(ls -l /dev/null)"
fault "dump: bad body" PUT /vigil/dump '{"file":"x"}' "unknown field"
mkdir -p "$T/small"
if mount -t tmpfs -o size=1m tmpfs "$T/small" 2>/dev/null; then
    fault "dump: disk full" PUT /vigil/dump "{\"path\":\"$T/small/core\"}" "No space left on device"
    check "a partial dump is removed" "$([ ! -e "$T/small/core" ]; echo $?)" "$(ls -l "$T/small")"
    umount "$T/small"
else
    fail "dump: disk full" "cannot mount a small tmpfs"
fi
expect 200 "the guest still runs" GET /vigil/vcpus/0/regs "" '"r12":"0x1234abcd"'
kill -TERM $VPID; wait $VPID 2>/dev/null

# --- vigil's walk against KVM_TRANSLATE --------------------------------------
if [ -x "$B/tests/kvm_translate_check" ]; then
    "$B/tests/kvm_translate_check" "$IMG" >"$T/kt" 2>&1; rc=$?
    check "page walk agrees with KVM_TRANSLATE" $rc "$(tail -20 "$T/kt")"
    grep '^modes' "$T/kt"
else
    fail "page walk agrees with KVM_TRANSLATE" "no $B/tests/kvm_translate_check (make $B/tests/kvm_translate_check)"
fi

echo "introspect: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
