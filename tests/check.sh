#!/bin/bash
# `make check`: every suite in turn, each ending in "<suite>: N passed, N failed";
# the last line sums them as "N passed, N failed". Exit non-zero on any failure.
#   SKIP_LAB=1  leaves out the lab (guest boots under emulation; the slow part)
set -u
cd "$(dirname "$0")/.."
total_p=0 total_f=0

suite() {  # suite NAME CMD...: run, echo, and add up its closing count line
    local name=$1; shift
    echo "=== $name"
    local log; log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line; line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
    local p f
    p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
    f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
    [ -n "$line" ] || { p=0; f=1; echo "$name: no result line (exit $rc)"; }
    [ "$rc" -ne 0 ] && [ "$f" = 0 ] && f=1
    total_p=$((total_p + p)) total_f=$((total_f + f))
    rm -f "$log"
}

warnings() {  # warning-free builds with gcc and clang
    local p=0 f=0
    for cc in gcc clang; do
        if make -s B=build/werror-$cc CC=$cc CFLAGS="-O2 -Werror" build/werror-$cc/vigil build/werror-$cc/libvigil.a >/dev/null; then
            echo "PASS $cc -Wall -Wextra -Werror"; p=$((p + 1))
        else
            echo "FAIL $cc build has warnings or errors"; f=$((f + 1))
        fi
    done
    echo "warnings: $p passed, $f failed"
    [ $f -eq 0 ]
}

native_asan() {  # the native suite against the ASan+UBSan vigil
    make -s B=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
        LDLIBS="-fsanitize=address,undefined" build/asan/vigil guests >/dev/null || return 1
    ASAN_OPTIONS=detect_leaks=0 tests/native.sh build/asan
}

make -s all guests >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
make -s metal >/dev/null || { echo "build failed: vigil-metal (make metal)"; echo "0 passed, 1 failed"; exit 1; }
suite warnings warnings
suite layering tests/layering.sh build
suite metal tests/metal.sh build
suite metal-irq tests/metal_irq.sh build
suite units make -s unit
suite native tests/native.sh build
suite gdb tests/gdb.sh build
suite kvm-policy tests/kvm_policy.sh build
suite native-asan native_asan
suite api tests/api.sh build
suite policy tests/policy.sh build
suite net-policy tests/net_policy.sh build
suite seccomp tests/seccomp.sh build
api_asan() {  # the API suite against the ASan+UBSan vigil (built by native_asan)
    ASAN_OPTIONS=detect_leaks=0 tests/api.sh build/asan
}
suite api-asan api_asan
suite trace tests/trace.sh build
suite jail tests/jail.sh build
trace_asan() {  # the trace suite against the ASan+UBSan vigil (built by native_asan)
    ASAN_OPTIONS=detect_leaks=0 tests/trace.sh build/asan
}
suite trace-asan trace_asan
suite policy-audit tests/policy_audit.sh build/vigil build/tests/guests
policy_audit_asan() {  # the audit trail and live swaps against the ASan+UBSan vigil
    ASAN_OPTIONS=detect_leaks=0 tests/policy_audit.sh build/asan/vigil build/asan/tests/guests
}
suite policy-audit-asan policy_audit_asan
policy_live_tsan() {  # policies swapped live under full-speed exits, vigil under TSan
    make -s B=build/tsan CC=gcc CFLAGS="-O1 -g -fsanitize=thread -Wno-tsan" LDLIBS="-fsanitize=thread" \
        build/tsan/vigil >/dev/null || return 1
    TSAN_OPTIONS="halt_on_error=1 exitcode=66" tests/policy_audit.sh build/tsan/vigil build/tests/guests live
}
suite policy-live-tsan policy_live_tsan
suite ctl python3 tests/ctl_test.py build/vigil
suite snapshot python3 tests/snapshot.py build
snapshot_asan() {  # the snapshot suite against the ASan+UBSan vigil (built by native_asan)
    ASAN_OPTIONS=detect_leaks=0 python3 tests/snapshot.py build/asan
}
suite snapshot-asan snapshot_asan
suite hostile tests/hostile.sh build
suite soak tests/soak.sh build
suite faults tests/faults.sh build
hostile_asan() {  # the hostile guests against the ASan+UBSan vigil (built by native_asan)
    ASAN_OPTIONS=detect_leaks=0 RSS_MAX_KB=400000 CPU_MAX_S=30 tests/hostile.sh build/asan
}
suite hostile-asan hostile_asan
introspect() {  # memory, translations, dumps; the page walk against KVM_TRANSLATE
    make -s build/tests/kvm_translate_check && tests/introspect.sh build
}
suite introspect introspect
kvm_snap() {  # KVM's snapshot state (kvm_snap.c) saved and restored on this host, plain and ASan+UBSan
    make -s build/tests/kvm_snap_check >/dev/null || return 1
    tests/kvm_snap.sh build
}
suite kvm-snap kvm_snap
kvm_snap_asan() {
    make -s B=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
        LDLIBS="-fsanitize=address,undefined" build/asan/tests/kvm_snap_check >/dev/null || return 1
    tests/kvm_snap.sh build/asan build/tests/guests
}
suite kvm-snap-asan kvm_snap_asan
fuzz() {  # the virtqueue walker under libFuzzer, briefly: a crash fails
    if make -s fuzz-smoke; then echo "fuzz: 1 passed, 0 failed"; else echo "fuzz: 0 passed, 1 failed"; return 1; fi
}
suite fuzz fuzz
suite fuzz-campaign tests/fuzz_campaign.sh
if [ -z "${SKIP_LAB:-}" ]; then
    suite lab lab/run.sh
fi
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
