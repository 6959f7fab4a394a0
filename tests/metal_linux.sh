#!/bin/bash
# metal_linux — Debian's stock kernel booted under vigil-metal to its init
# (issue 12), with vigil's busybox initramfs (guest/build.sh, built by
# scripts/setup into build/guest), on QEMU's software emulation of an AMD-V
# machine. What it takes: the SVM backend's interrupt controller models
# (PIT calibration and jiffies, the IOAPIC's timer pin, the LAPIC's
# TSC-deadline timer), MMIO decoding, the CPUID table and the MSR models.
#  - boot to init, the guest reporting its CPU count, the kernel its memory
#    (--mem 256M), and vigil.run=poweroff ending QEMU with exit 0;
#  - the busybox shell on COM1: `poweroff -f` typed into it ends QEMU.
# Usage: tests/metal_linux.sh [BUILD_DIR]   Last line: "metal-linux: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
B=${1:-build}
IMG=$B/vigil-metal
KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
INITRD=$B/guest/initramfs.cpio.gz
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; [ -n "${2:-}" ] && echo "$2" | tail -n 20 | sed 's/^/    /'; fail=$((fail + 1)); }
finish() { echo "metal-linux: $pass passed, $fail failed"; [ "$fail" = 0 ]; exit; }

if [ ! -f "$IMG" ] || [ -z "$KERNEL" ] || [ ! -f "$INITRD" ]; then
    ko "prerequisites" "need $IMG (make metal), /boot/vmlinuz-* and $INITRD (scripts/setup)"
    finish
fi
QEMU=(nice qemu-system-x86_64 -accel tcg -cpu EPYC,+svm,+npt -m 2G -serial stdio -display none -monitor none
      -no-reboot -kernel "$IMG" -initrd "$KERNEL,$INITRD")

# 1: to init and off again
timeout 300 "${QEMU[@]}" -append "--mem 256M --cmdline 'console=ttyS0 vigil.run=poweroff'" </dev/null >"$T/boot.out" 2>&1
rc=$?
out=$(cat "$T/boot.out")
if [ "$rc" = 124 ]; then ko "Debian's kernel under vigil-metal: QEMU still running after 300 s" "$out"
else
    grep -q "^vigil guest: ready" "$T/boot.out" && ok "Debian's kernel reaches init" || ko "Debian's kernel reaches init" "$out"
    grep -q "^vigil guest: kernel .*, 1 cpus" "$T/boot.out" && ok "the guest counts 1 CPU" ||
        ko "the guest counts 1 CPU" "$out"
    # "Memory: 200128K/261752K available": the total is the 256 MiB given, less the holes
    tot=$(sed -n 's/.*Memory: [0-9]*K\/\([0-9]*\)K available.*/\1/p' "$T/boot.out" | head -n 1)
    if [ -n "$tot" ] && [ "$tot" -gt 250000 ] && [ "$tot" -le 262144 ]; then ok "the kernel sees --mem 256M (${tot}K)"
    else ko "the kernel sees --mem 256M" "$(grep -i 'Memory:' "$T/boot.out")"; fi
    grep -qx "vigil-metal: exit 0" "$T/boot.out" && ok "poweroff from init: exit 0" || ko "poweroff from init: exit 0" "$out"
    grep -q "Calibrating delay loop\|lpj=" "$T/boot.out" && grep -q "TSC deadline timer available" "$T/boot.out" &&
        ok "timers: jiffies tick (PIT through the IOAPIC), TSC-deadline offered" ||
        ko "timers: jiffies tick, TSC-deadline offered" "$(grep -i 'timer\|tsc\|calibrat' "$T/boot.out")"
fi

# 2: the shell on COM1; `poweroff -f` typed once the banner is out
( for _ in $(seq 1 240); do grep -q "^vigil guest: ready" "$T/shell.out" 2>/dev/null && break; sleep 1; done
  sleep 3; printf 'echo metal-$((6*7))\n'; sleep 3; printf 'poweroff -f\n'
  for _ in $(seq 1 60); do grep -q '^vigil-metal: exit' "$T/shell.out" && break; sleep 1; done ) |
    timeout 300 "${QEMU[@]}" -append "--mem 256M --cmdline 'console=ttyS0'" >"$T/shell.out" 2>&1
rc=${PIPESTATUS[1]}
out=$(cat "$T/shell.out")
if [ "$rc" = 124 ]; then ko "poweroff -f in the shell: QEMU still running after 300 s" "$out"
else
    grep -q "^metal-42" "$T/shell.out" && ok "the shell runs what COM1 types" || ko "the shell runs what COM1 types" "$out"
    grep -qx "vigil-metal: exit 0" "$T/shell.out" && ok "poweroff -f ends QEMU: exit 0" || ko "poweroff -f ends QEMU: exit 0" "$out"
fi
finish
