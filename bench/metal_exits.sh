#!/bin/bash
# metal_exits — exits per second under vigil-metal: port-hammering tiny
# guests (tiny-hammer: 200,000 reads of an unclaimed, denied port;
# tiny-pioloop: 262,144 reads of COM1's scratch register, served by the
# UART model) run to completion, and vigil-metal's --stats gives the exit
# count and the guest's run time on the TSC ("guest ran N ms"). Under QEMU's
# software emulation of AMD-V, so the figures are emulation figures: compare
# them side by side with vigil on KVM in the lab (the same emulation one
# level down), never with hardware.
# bench/metal.py takes the same figures with vigil on KVM in the lab beside them.
# Usage: bench/metal_exits.sh [BUILD_DIR] [RUNS]    (make metal guests first)
set -u
cd "$(dirname "$0")/.."
B=${1:-build}
RUNS=${2:-3}
printf '%-14s %10s %10s %12s\n' guest exits ms exits/s
for g in hammer pioloop; do
    for _ in $(seq "$RUNS"); do
        out=$(timeout 300 nice qemu-system-x86_64 -accel tcg -cpu EPYC,+svm,+npt -m 2G -serial stdio -display none \
              -monitor none -no-reboot -kernel "$B/vigil-metal" -append "--mem 64M --stats" \
              -initrd "$B/tests/guests/tiny-$g.bin" 2>&1 </dev/null)
        exits=$(sed -n 's/^vigil-metal: total exits: \([0-9]*\).*/\1/p' <<<"$out")
        ms=$(sed -n 's/^vigil-metal: guest ran \([0-9]*\) ms$/\1/p' <<<"$out")
        if [ -z "$exits" ] || [ -z "$ms" ] || [ "$ms" = 0 ]; then
            echo "tiny-$g: no figures" >&2
            continue
        fi
        printf '%-14s %10s %10s %12s\n' "tiny-$g" "$exits" "$ms" $((exits * 1000 / ms))
    done
done
