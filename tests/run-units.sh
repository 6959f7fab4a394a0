#!/bin/bash
# Runs every cmocka unit-test binary in the given directories and sums the
# results. Prints "units: N passed, N failed"; exits non-zero on a failure.
set -u
passed=0 failed=0
for dir in "$@"; do
    for t in "$dir"/test_*; do
        [ -x "$t" ] || continue
        out=$("$t" 2>&1); rc=$?
        # Every group's figures (a binary may run several groups).
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | awk '{ s += $1 } END { if (NR) print s }')
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | awk '{ s += $1 } END { if (NR) print s }')
        p=${p:-0} f=${f:-0}
        # A crash (sanitizer abort, signal) counts as one failure.
        if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
        passed=$((passed + p)) failed=$((failed + f))
        if [ "$f" != 0 ]; then
            echo "FAIL $t"; echo "$out" | tail -n 30
        else
            echo "ok   $t ($p)"
        fi
    done
done
echo "units: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
