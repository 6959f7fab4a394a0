#!/bin/sh
# tests/fuzz_campaign.sh — fuzz/campaign.sh (make fuzz-long) against a fake
# fuzzer: runs add up to N, a killed run is counted from its log and the next
# asks only for the rest, a crash stops the target with exit 1, only the
# current binary's runs count, and a fresh state directory takes them from
# the ledgers kept in FUZZ_LEDGERS.
set -u
cd "$(dirname "$0")/.."
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/b/fuzz"
# At most 1,000 executions a run; FAKE=hang waits to be killed after its
# progress line, FAKE=crash reports an ASan error.
cat >"$t/b/fuzz/fuzz_fake" <<'F'
#!/bin/sh
for a in "$@"; do case $a in -runs=*) runs=${a#-runs=} ;; esac; done
n=$((runs > 1000 ? 1000 : runs))
echo "#$n	pulse  cov: 1"
case ${FAKE:-} in
hang) exec sleep 60 ;;
term) echo "==1== libFuzzer: run interrupted; exiting"; exit 72 ;;
crash) echo "==1==ERROR: AddressSanitizer: heap-buffer-overflow"; exit 1 ;;
esac
echo "stat::number_of_executed_units: $n"
F
chmod +x "$t/b/fuzz/fuzz_fake"
p=0 f=0
check() { # check NAME CONDITION...
	name=$1; shift
	if "$@"; then echo "PASS $name"; p=$((p + 1)); else echo "FAIL $name"; f=$((f + 1)); fi
}
execs() { awk '{ s += $3 } END { print s + 0 }' "$t/s/fake/ledger"; }

fuzz/campaign.sh "$t/b" "$t/s" 2500 fuzz_fake >"$t/out" 2>&1
check "runs add up to N" [ "$(execs)" = 2500 ]
check "three runs in the ledger" [ "$(wc -l <"$t/s/fake/ledger")" = 3 ]
check "summary line" grep -q 'fuzz_fake  *2500 execs .* 3 runs  0 crashes  binary [0-9a-f]\{12\}$' "$t/out"

rm -rf "$t/s"
FAKE=hang timeout -s KILL 3 fuzz/campaign.sh "$t/b" "$t/s" 2500 fuzz_fake >/dev/null 2>&1
pkill -f "$t/b/fuzz/fuzz_fake" 2>/dev/null; pkill -f "$t/s/fake/fuzzer" 2>/dev/null
pkill -f 'sleep 60' 2>/dev/null
check "a killed run is left marked running" [ -f "$t/s/fake/running" ]
fuzz/campaign.sh "$t/b" "$t/s" 2500 fuzz_fake >"$t/out" 2>&1
check "the killed run counted as stopped" grep -q ' 1000 [0-9]* stopped ' "$t/s/fake/ledger"
check "the rest asked for, no more" [ "$(execs)" = 2500 ]

rm -rf "$t/s"
FAKE=crash fuzz/campaign.sh "$t/b" "$t/s" 2500 fuzz_fake >"$t/out" 2>&1
rc=$?
check "a crash exits 1" [ $rc = 1 ]
check "a crash is in the ledger" grep -q ' crash ' "$t/s/fake/ledger"
fuzz/campaign.sh "$t/b" "$t/s" 2500 fuzz_fake >"$t/out" 2>&1
rc=$?
check "a crashed target is not run again" [ $rc = 1 ] && [ "$(wc -l <"$t/s/fake/ledger")" = 1 ]

rm -rf "$t/s"
FUZZ_LEDGERS=$t/L fuzz/campaign.sh "$t/b" "$t/s" 2500 fuzz_fake >/dev/null 2>&1
check "the ledger kept in FUZZ_LEDGERS" [ "$(wc -l <"$t/L/fake")" = 3 ]
rm -rf "$t/s"
FUZZ_LEDGERS=$t/L fuzz/campaign.sh "$t/b" "$t/s" 2500 fuzz_fake >"$t/out" 2>&1
check "a fresh state takes the kept runs, runs no more" [ "$(wc -l <"$t/L/fake")" = 3 ] &&
	[ "$(wc -l <"$t/s/fake/ledger")" = 3 ] && grep -q 'fuzz_fake  *2500 execs .* 3 runs  0 crashes' "$t/out"
echo "# another build" >>"$t/b/fuzz/fuzz_fake"
FUZZ_LEDGERS=$t/L fuzz/campaign.sh "$t/b" "$t/s" 2500 fuzz_fake >"$t/out" 2>&1
check "another binary counts from 0" [ "$(wc -l <"$t/s/fake/ledger")" = 6 ] &&
	grep -q 'fuzz_fake  *2500 execs .* 3 runs  0 crashes' "$t/out"
rm -rf "$t/s"
FUZZ_LEDGERS=$t/L fuzz/campaign.sh "$t/b" "$t/s" 2500 fuzz_fake >/dev/null 2>&1
check "only the same binary's runs are taken" [ "$(wc -l <"$t/s/fake/ledger")" = 3 ] &&
	[ "$(wc -l <"$t/L/fake")" = 6 ]
rm -rf "$t/s"
FAKE=term fuzz/campaign.sh "$t/b" "$t/s" 1000 fuzz_fake >/dev/null 2>&1
check "a fuzzer stopped by a signal (libFuzzer's exit 72) is no crash" grep -q ' stopped ' "$t/s/fake/ledger" &&
	! grep -q ' crash ' "$t/s/fake/ledger"

rm -rf "$t/s"
FAKE=hang timeout -s KILL 3 fuzz/campaign.sh "$t/b" "$t/s" 2500 fuzz_fake >/dev/null 2>&1
pkill -f "$t/b/fuzz/fuzz_fake" 2>/dev/null; pkill -f "$t/s/fake/fuzzer" 2>/dev/null
pkill -f 'sleep 60' 2>/dev/null
echo "# a third build" >>"$t/b/fuzz/fuzz_fake"
fuzz/campaign.sh "$t/b" "$t/s" 2500 fuzz_fake >"$t/out" 2>&1
check "a killed run of an old binary, then a new one: the new counts from 0" \
	[ "$(wc -l <"$t/s/fake/ledger")" = 4 ] && grep -q 'fuzz_fake  *2500 execs .* 3 runs  0 crashes' "$t/out"
echo "fuzz-campaign: $p passed, $f failed"
[ $f -eq 0 ]
