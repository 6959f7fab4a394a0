#!/bin/bash
# Start-up cost on this host's own /dev/kvm, measured on the VMM's own
# process: see bench/startup.py (N=20 by default).
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}
make -s B="$B" "$B/vigil" "$B/bench/startup_probe" "$B/bench/kvm_floor" "$B/tests/guests/tiny-poweroff.bin" "$B/bench/tiny-poweroff-pvh.elf"
exec bench/startup.py "$B" "$@"
