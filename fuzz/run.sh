#!/bin/sh
# fuzz/run.sh — runs libFuzzer targets and prints one line of figures per
# target (executions, seconds, exec/s, crashes); exit 1 if any crashed.
#   fuzz/run.sh BUILD_DIR time SECONDS TARGET...   (make fuzz-smoke)
#   fuzz/run.sh BUILD_DIR runs N TARGET...         (make fuzz-long)
# Each target's scratch corpus is BUILD_DIR/fuzz/corpus-NAME, seeded from
# fuzz/corpus-NAME when the tree has one; crash files land in BUILD_DIR/fuzz/.
set -u
B=$1 mode=$2 n=$3
shift 3
case $mode in
time) limit="-max_total_time=$n" ;;
runs) limit="-runs=$n" ;;
*) echo "fuzz/run.sh: mode must be time or runs" >&2; exit 2 ;;
esac
fail=0
summary=""
for t in "$@"; do
	name=${t#fuzz_}
	corpus=$B/fuzz/corpus-$name
	mkdir -p "$corpus"
	seeds=""
	[ -d fuzz/corpus-$name ] && seeds=fuzz/corpus-$name
	log=$B/fuzz/$t.log
	start=$(date +%s)
	"$B/fuzz/$t" $limit -print_final_stats=1 -artifact_prefix="$B/fuzz/$t-" "$corpus" $seeds >"$log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	crashes=0
	if [ $rc -ne 0 ]; then
		crashes=1
		fail=1
		grep -E "ERROR|SUMMARY|runtime error" "$log" | head -5 >&2
	fi
	line=$(printf '%-22s %12s execs %6ss %8s exec/s  %s crashes' "$t" "${execs:-?}" "$secs" "${rate:-?}" "$crashes")
	echo "$line"
	summary="$summary$line
"
done
printf '\n%s' "$summary"
exit $fail
