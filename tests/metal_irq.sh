#!/bin/bash
# metal_irq — the SVM backend's interrupt path under QEMU's emulated AMD-V:
# tiny-timer programs the 8259 and the PIT and takes ten 100 Hz ticks in
# HLT (vigil run gets the same guest in tests/native.sh), so the PIT model,
# the PIC's virtual wire, injection and the HLT that sleeps until an
# interrupt all have to work; --stats shows the backend's own counts.
# Usage: tests/metal_irq.sh [BUILD_DIR]    Last line: "metal-irq: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
B=${1:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; [ -n "${2:-}" ] && echo "$2" | tail -n 15 | sed 's/^/    /'; fail=$((fail + 1)); }

timeout 60 nice qemu-system-x86_64 -accel tcg -cpu EPYC,+svm,+npt -m 2G -serial stdio -display none -monitor none \
    -no-reboot -kernel "$B/vigil-metal" -append "--mem 64M --stats" -initrd "$B/tests/guests/tiny-timer.bin" \
    </dev/null >"$T/out" 2>&1
rc=$?
out=$(cat "$T/out")
if [ "$rc" = 124 ]; then ko "tiny-timer: QEMU still running after 60 s (no ticks?)" "$out"
else
    grep -q "^tiny: timer ok" "$T/out" && ok "ten PIT ticks through the 8259 wake HLT" || ko "ten PIT ticks through the 8259 wake HLT" "$out"
    grep -qx "vigil-metal: exit 0" "$T/out" && ok "tiny-timer: exit 0" || ko "tiny-timer: exit 0" "$out"
    n=$(grep -o "irq_injected=[0-9]*" "$T/out" | tail -n 1 | cut -d= -f2)
    [ -n "$n" ] && [ "$n" -ge 10 ] && ok "--stats: $n interrupts injected" || ko "--stats: interrupts injected" "$out"
    # the PIC's and PIT's ports are the backend's, as on KVM: not in the core's port table
    ! grep -q "port 0x4[03] \|port 0x2[01] " "$T/out" && ok "--stats: the irqchip's ports are not the core's, as on KVM" ||
        ko "--stats: the irqchip's ports are not the core's" "$(grep port "$T/out")"
fi
echo "metal-irq: $pass passed, $fail failed"
[ "$fail" = 0 ]
