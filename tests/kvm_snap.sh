#!/bin/bash
# KVM's side of snapshots on this host's /dev/kvm (build/tests/kvm_snap_check
# with the tiny-snap guest: save, restore into a fresh VM over a memory file,
# the dirty log, hostile sections). Usage: tests/kvm_snap.sh BUILD_DIR
# [GUESTS_DIR]. Its last line is "kvm_snap_check: N passed, N failed".
set -u
B=${1:-build}
G=${2:-$B/tests/guests}
if [ ! -x "$B/tests/kvm_snap_check" ] || [ ! -f "$G/tiny-snap.bin" ]; then
    echo "FAIL kvm_snap_check: no $B/tests/kvm_snap_check or $G/tiny-snap.bin (make $B/tests/kvm_snap_check guests)"
    echo "kvm_snap_check: 0 passed, 1 failed"
    exit 1
fi
exec "$B/tests/kvm_snap_check" "$G/tiny-snap.bin"
