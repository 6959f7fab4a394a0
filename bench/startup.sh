#!/bin/bash
# Start-up cost on this host's own /dev/kvm: exec to exit for the tiny
# poweroff guest (a few dozen guest instructions, so this is the VMM's own
# set-up and tear-down), wall time and peak RSS, median of 20 runs.
# QEMU beside it where it can run: on kvm_pvm hosts it aborts at start-up
# (it cannot set MSR 0x10a), and the table says so.
set -u
cd "$(dirname "$0")/.."
G=build/tests/guests/tiny-poweroff.bin
runs=20
measure() {  # prints "median_ms max_rss_kib status"
    python3 - "$runs" "$@" <<'PY'
import os, subprocess, sys, time, statistics
n = int(sys.argv[1]); argv = sys.argv[2:]
ts, rss, st = [], 0, 0
for _ in range(n):
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    ts.append((time.monotonic() - t0) * 1000); rss = max(rss, ru.ru_maxrss)
    st = st or os.waitstatus_to_exitcode(status)
print(f"{statistics.median(ts):.1f} {rss} {st}")
PY
}
read -r v_ms v_rss v_st < <(measure build/vigil run --kernel "$G" --console none)
read -r q_ms q_rss q_st < <(measure qemu-system-x86_64 -M microvm -enable-kvm -cpu host -m 256 \
    -display none -serial null -monitor none -no-reboot -kernel "$G" \
    -device isa-debug-exit,iobase=0x604,iosize=2)
printf 'start-up, exec to exit of a tiny guest, median of %d (this host: %s)\n' "$runs" \
    "$(build/vigil check | sed -n 's/^kvm module: //p')"
printf '%-14s %10s %12s %s\n' VMM "time (ms)" "peak RSS" status
printf '%-14s %10s %9s KiB %s\n' vigil "$v_ms" "$v_rss" "exit $v_st"
if [ "$q_st" != 0 ]; then
    # isa-debug-exit makes a clean QEMU exit odd, never 0 or a signal.
    case $q_st in -*) why="killed by signal ${q_st#-}" ;; *) why="exit $q_st" ;; esac
    [ $((q_st % 2)) = 1 ] && why="exit $q_st (guest's isa-debug-exit)"
fi
if [ "$q_st" -lt 0 ]; then
    printf '%-14s %10s %12s %s\n' "qemu microvm" "-" "-" "cannot run on this host's KVM ($why)"
else
    printf '%-14s %10s %9s KiB %s\n' "qemu microvm" "$q_ms" "$q_rss" "${why:-exit 0}"
fi
