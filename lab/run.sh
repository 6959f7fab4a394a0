#!/bin/bash
# Host-side entry point of the lab: build what the lab needs (if out of date),
# boot L1 and run the scenarios there. Passes through their result lines and
# exit status.
# Usage: lab/run.sh [SCENARIO...]      Env: VMM=vigil|qemu, LAB_TIMEOUT, ...
set -euo pipefail
cd "$(dirname "$0")/.."   # scenarios use repo-relative paths (build/...)

lab/build-l1.sh build/lab
guest/build.sh build/guest
exec lab/run-l1.sh -- lab/scenarios.py "$@"
