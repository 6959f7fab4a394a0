#!/bin/bash
# The gdb stub on this host's /dev/kvm with Debian's gdb, in batch mode,
# against the tiny `spin` guest (tests/guests/tiny.S): attach, registers,
# memory, a hardware breakpoint hit, a single step, detach with the guest
# spinning on, --gdb-wait, kill, bad options, and hostile clients
# (tests/gdb_hostile.py) after which gdb still attaches.
# (Software breakpoints and watchpoints are not tried here: this host's
# kvm_pvm emulates guest ring-0 code and neither traps there; see the
# README's gdb section for where each kind was tried.)
# Usage: tests/gdb.sh BUILD_DIR   Prints "gdb: N passed, N failed".
set -u
B=${1:-build}
V=$B/vigil
G=$B/tests/guests
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT
passed=0 failed=0
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

command -v gdb >/dev/null || { echo "gdb not installed (scripts/setup)"; echo "gdb: 0 passed, 1 failed"; exit 1; }
# Addresses in the guest, from its object (.text is loaded at 1 MiB).
sym() { printf '0x%x' $((0x100000 + 0x$(nm "$G/tiny-spin.bin.o" | awk -v s="$1" '$3 == s { print $1 }'))); }
LOOP=$(sym spin_loop) COUNT=$(sym spin_count)

# start NAME ARGS...: vigil in its own session (gdb's terminal signals
# stay away from it); its pid in $VPID.
start() {
    local n=$1; shift
    setsid "$V" run --kernel "$G/tiny-spin.bin" --console "file:$T/$n.con" "$@" >"$T/$n.out" 2>"$T/$n.err" </dev/null &
    VPID=$!
    pids+=("$VPID")
    for _ in $(seq 100); do [ -S "$T/$n.sock" ] && return; sleep 0.1; done
}
# rungdb NAME CMDS...: gdb in batch mode against $T/NAME.sock; output in $T/NAME.gdb.
rungdb() {
    local n=$1; shift
    { echo "set architecture i386:x86-64"; echo "target remote $T/$n.sock"; printf '%s\n' "$@"; } >"$T/$n.cmds"
    timeout 60 gdb -batch -nx -x "$T/$n.cmds" >"$T/$n.gdb" 2>&1
}
grows() { local a b; a=$(stat -c %s "$1"); sleep "${2:-1.5}"; b=$(stat -c %s "$1"); [ "$b" -gt "$a" ]; }

# --- bad options -----------------------------------------------------------
out=$("$V" run --kernel "$G/tiny-spin.bin" --gdb foo:bar 2>&1 >/dev/null); rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q "expected unix:PATH or tcp:" <<<"$out"; then pass "bad --gdb spec"
else fail "bad --gdb spec" "exit $rc: $out"; fi
out=$("$V" run --kernel "$G/tiny-spin.bin" --gdb tcp:localhost:99999 2>&1 >/dev/null); rc=$?
if [ $rc -eq 1 ] && grep -q "tcp:ADDRESS:PORT" <<<"$out"; then pass "bad --gdb port"; else fail "bad --gdb port" "exit $rc: $out"; fi
out=$("$V" run --kernel "$G/tiny-spin.bin" --gdb-wait 2>&1 >/dev/null); rc=$?
if [ $rc -eq 1 ] && grep -q "needs --gdb" <<<"$out"; then pass "--gdb-wait without --gdb"; else fail "--gdb-wait without --gdb" "exit $rc: $out"; fi

# --- a session: registers, memory, hbreak, stepi, detach -------------------
export VIGIL_GDB_TIMEOUT_MS=3000 # a slow client is dropped after 3 s (gdb_hostile.py)
start a --gdb "unix:$T/a.sock"
sleep 0.5
rungdb a "info registers rip" "x/4xb \$rip" "x/gx $COUNT" "hbreak *$LOOP" "continue" "info registers rip" \
    "stepi" "info registers rip" "info registers cr0 cr3 efer fs_base" "delete" "detach"
if grep -Eq '^rip +0x10[0-9a-f]{4} ' "$T/a.gdb"; then pass "info registers shows rip in the guest"
else fail "info registers shows rip in the guest" "$(head -c 600 "$T/a.gdb")"; fi
if grep -Eq '^0x10[0-9a-f]{4}:(\s+0x[0-9a-f]{2}){4}$' "$T/a.gdb"; then pass "x/4xb \$rip reads guest memory"
else fail "x/4xb \$rip reads guest memory" "$(head -c 600 "$T/a.gdb")"; fi
if grep -q "Breakpoint 1, 0x0*${LOOP#0x} in" "$T/a.gdb" && grep -Eq "^rip +$LOOP " "$T/a.gdb"; then
    pass "hbreak at spin_loop ($LOOP) is hit"
else fail "hbreak at spin_loop ($LOOP) is hit" "$(cat "$T/a.gdb")"; fi
after=$(grep -E '^rip ' "$T/a.gdb" | sed -n 3p | awk '{print $2}')
if [ -n "$after" ] && [ "$after" != "$LOOP" ] && [ $((after)) -gt $((LOOP)) ] && [ $((after)) -lt $((LOOP + 16)) ]; then
    pass "stepi moves rip ($LOOP -> $after)"
else fail "stepi moves rip" "rip after stepi: '$after'; $(cat "$T/a.gdb")"; fi
if grep -Eq '^cr0 +0x[0-9a-f]*[13579bdf]' "$T/a.gdb" && grep -Eq '^efer +0x[0-9a-f]*5[0-9a-f]{2} ' "$T/a.gdb"; then
    pass "control registers (cr0.PE, efer.LMA) through the target description"
else fail "control registers" "$(grep -E '^(cr|efer|fs_base)' "$T/a.gdb")"; fi
if grep -q "detached" "$T/a.gdb" && grows "$T/a.con" 4; then pass "after detach the guest spins on"
else fail "after detach the guest spins on" "console $(stat -c %s "$T/a.con") bytes; $(tail -3 "$T/a.gdb")"; fi

# --- hostile clients, then gdb again ----------------------------------------
python3 tests/gdb_hostile.py "$T/a.sock" "$T/a.con" >"$T/hostile" 2>&1
while read -r l; do
    case $l in PASS*) pass "hostile: ${l#PASS }" ;; FAIL*) fail "hostile: ${l#FAIL }" "" ;; esac
done <"$T/hostile"
grep -q "hostile: .* passed" "$T/hostile" || fail "hostile client script" "$(tail -5 "$T/hostile")"
if kill -0 "$VPID" 2>/dev/null; then pass "vigil survives hostile clients"; else fail "vigil survives hostile clients" "$(cat "$T/a.err")"; fi
rungdb a "x/gx $COUNT" "kill"
wait "$VPID"; rc=$?
if grep -Eq "^$COUNT:\s+0x[0-9a-f]+" "$T/a.gdb"; then pass "gdb attaches again after hostile clients"
else fail "gdb attaches again after hostile clients" "$(cat "$T/a.gdb")"; fi
if [ $rc -eq 5 ]; then pass "kill stops the VM (exit 5)"; else fail "kill stops the VM" "exit $rc; $(cat "$T/a.err")"; fi

# --- --gdb-wait: not a single instruction before gdb -------------------------
start w --gdb "unix:$T/w.sock" --gdb-wait --stats
sleep 2
if [ ! -s "$T/w.con" ]; then pass "--gdb-wait: the guest waits"; else fail "--gdb-wait: the guest waits" "console: $(head -c 100 "$T/w.con")"; fi
rungdb w "info registers rip" "x/gx $COUNT" "detach"
start_rip=$(printf '0x%x' $((0x100000 + 0x$(nm "$G/tiny-spin.bin.o" | awk '$3 == "_start" { print $1 }'))))
if grep -Eq "^rip +$start_rip " "$T/w.gdb" && grep -Eq "^$COUNT:\s+0x0+$" "$T/w.gdb"; then
    pass "--gdb-wait: gdb finds rip at _start ($start_rip), the counter zero"
else fail "--gdb-wait: gdb finds rip at _start" "$(cat "$T/w.gdb")"; fi
if grows "$T/w.con" 2; then pass "--gdb-wait: runs once gdb detaches"; else fail "--gdb-wait: runs once gdb detaches" "$(cat "$T/w.err")"; fi
kill -TERM "$VPID"; wait "$VPID"

echo "gdb: $passed passed, $failed failed"
[ $failed -eq 0 ]
