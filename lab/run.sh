#!/bin/bash
# Host-side entry point of the lab: build what the lab needs (if out of date),
# boot L1 once and run the scenarios there: lab/scenarios.py's and
# lab/devices.py's, with one closing "lab: N passed, N failed" line. Passes
# through their result lines and exit status.
# Usage: lab/run.sh [SCENARIO...]      Env: VMM=vigil|qemu, LAB_TIMEOUT, ...
set -euo pipefail
cd "$(dirname "$0")/.."   # scenarios use repo-relative paths (build/...)

lab/build-l1.sh build/lab
guest/build.sh build/guest
guest/build-rootfs.sh build/guest   # root-disk scenario
exec lab/run-l1.sh -- lab/devices.py --all "$@"
