#!/bin/sh
# fuzz/campaign.sh — make fuzz-long: runs libFuzzer targets until each has N
# executions in all, over runs that may be stopped and started again.
#   fuzz/campaign.sh BUILD_DIR STATE_DIR N TARGET...
# Each target keeps, in STATE_DIR/NAME/, the corpus it grows (seeded from
# fuzz/corpus-NAME), one log per run and a ledger: one line per run with
# its date, the tree's commit, its executions, its seconds, how it ended
# (done, stopped, crash) and the start of the binary's SHA-256 (which code
# ran: the tree may have moved on since the build). A run that was killed (a reboot, ^C,
# the end of a session) is counted from its log's last progress line the
# next time, and the next run asks only for what is missing. A crash stops
# the target for good: its input is in STATE_DIR/NAME/, the ledger says
# "crash", and the script exits 1 until the state directory is removed.
# Runs last at most FUZZ_CHUNK_S seconds (900) each, so a kill loses little.
# Only runs of the binary as built now count toward N (a change to the code
# it covers starts the count again). FUZZ_LEDGERS=DIR (make fuzz-long:
# fuzz/ledgers, in the tree) keeps a copy of every ledger line in DIR/NAME:
# a state directory made afresh (a new machine, a clean clone) takes from
# there the runs of the same binary, so a campaign can span sessions.
# Prints one line per target: executions so far, seconds, runs, crashes.
set -u
B=$1 S=$2 N=$3
shift 3

# Appends the run described by $d/running (log, commit, start, binary hash)
# to the ledger; $2 is the run's exit status, if the script saw it end.
settle() {
	d=$1
	[ -f "$d/running" ] || return 0
	read -r log r start rbin <"$d/running"
	rc=${2:-killed}
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -1)
	[ -n "$execs" ] || execs=0
	end=$(stat -c %Y "$log" 2>/dev/null || date +%s)
	how=stopped
	[ "$rc" = 0 ] && how=done
	if ls "$d"/crash-* "$d"/leak-* "$d"/timeout-* "$d"/oom-* >/dev/null 2>&1 ||
		grep -q -E '^==[0-9]+==ERROR|^SUMMARY: |runtime error|^ERROR: libFuzzer' "$log"; then
		how=crash
	elif [ "$rc" = 72 ] && grep -q 'run interrupted' "$log"; then
		how=stopped # libFuzzer's exit on SIGINT/SIGTERM (-interrupted_exitcode)
	elif [ "$rc" != killed ] && [ "$rc" != 0 ] && [ "$rc" -lt 128 ]; then
		how=crash
	fi
	entry="$(date -u -d "@$start" +%FT%TZ) $r $execs $((end - start)) $how $rbin"
	echo "$entry" >>"$d/ledger"
	[ -z "$L" ] || echo "$entry" >>"$L/${d##*/}"
	rm -f "$d/running"
}

# The ledger's lines of binary $2: executions, seconds, runs.
tally() {
	awk -v b="$2" '$6 == b { e += $3; s += $4; n++ } END { print e + 0, s + 0, n + 0 }' "$1"
}

CHUNK=${FUZZ_CHUNK_S:-900}
L=${FUZZ_LEDGERS:-}
[ -z "$L" ] || mkdir -p "$L"
fail=0
summary=""
for t in "$@"; do
	name=${t#fuzz_}
	d=$S/$name
	mkdir -p "$d/corpus"
	bin=$(sha256sum "$B/fuzz/$t" | cut -c1-12)
	# A new state directory starts from the kept ledger (this binary's
	# lines); an existing one was kept in step with it.
	if [ ! -f "$d/ledger" ] && [ -n "$L" ] && [ -f "$L/$name" ]; then
		awk -v b="$bin" '$6 == b' "$L/$name" >"$d/ledger"
	fi
	touch "$d/ledger"
	settle "$d"
	seeds=""
	[ -d fuzz/corpus-$name ] && seeds=fuzz/corpus-$name
	# In runs of at most CHUNK seconds, each ending with libFuzzer's own
	# count: a kill then loses at most what one run did since its last
	# progress line.
	while :; do
		# The run executes a copy of the binary as built now, so that the
		# hash it is counted under is what ran (a rebuild meanwhile
		# starts a new count).
		cp "$B/fuzz/$t" "$d/fuzzer.tmp" && mv "$d/fuzzer.tmp" "$d/fuzzer" || { fail=1; break; }
		bin=$(sha256sum "$d/fuzzer" | cut -c1-12)
		done_=$(tally "$d/ledger" "$bin" | cut -d' ' -f1)
		crashes=$(awk '$5 == "crash"' "$d/ledger" | wc -l)
		[ "$crashes" -eq 0 ] && [ "$done_" -lt "$N" ] || break
		k=$(($(wc -l <"$d/ledger") + 1))
		log=$d/run-$k.log
		rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
		echo "$log $rev $(date +%s) $bin" >"$d/running"
		"$d/fuzzer" -runs=$((N - done_)) -max_total_time="$CHUNK" -print_final_stats=1 \
			-artifact_prefix="$d/" "$d/corpus" $seeds >"$log" 2>&1
		settle "$d" $?
		if [ "$(tail -1 "$d/ledger" | cut -d' ' -f3)" = 0 ]; then
			echo "fuzz/campaign.sh: $t ran no input (see $log)" >&2
			fail=1
			break
		fi
	done
	set -- $(tally "$d/ledger" "$bin")
	secs=$2 runs=$3
	crashes=$(awk '$5 == "crash"' "$d/ledger" | wc -l)
	if [ "$crashes" -ne 0 ]; then
		fail=1
		grep -h -E "ERROR|SUMMARY|runtime error" "$d"/run-*.log | head -5 >&2
	fi
	line=$(printf '%-22s %12s execs %7ss %3s runs  %s crashes  binary %s' "$t" "$done_" "$secs" "$runs" \
		"$crashes" "$bin")
	[ "$done_" -ge "$N" ] || line="$line  (not yet $N)"
	echo "$line"
	summary="$summary$line
"
done
printf '\n%s' "$summary"
exit $fail
