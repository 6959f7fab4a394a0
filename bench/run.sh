#!/bin/bash
# Benchmarks, each printing vigil's figures beside a peer's.
#   bench/run.sh          both
#   bench/run.sh native   on this host's own KVM (tiny guests): start-up
#                         (bench/startup.py), instructions per denied exit
#                         (bench/exit_cost.sh, callgrind), the cost of one trace
#                         event, the policy's exits/s with no policy, 10,000
#                         rules, and auditing (bench/policy.py), and snapshots
#                         beside QEMU: restore latency, create time and sizes,
#                         100 clones (bench/snapshot.py)
#   bench/run.sh lab      in the lab, vigil vs QEMU: Linux boot to poweroff, and
#                         pause/resume latency of a 4-vCPU guest (API vs QMP)
#   bench/run.sh disk     in the lab: the guest's O_DIRECT disk throughput
#                         and IOPS, vigil (threads, io_uring) vs QEMU
#                         cache=none,aio=io_uring (bench/disk.py)
#   bench/run.sh trace    in the lab: a Linux boot with no trace, everything
#                         traced, and a filtered trace (bench/trace.py)
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
make -s all guests
if [ "$what" = all ] || [ "$what" = native ]; then
    bench/startup.sh
    bench/exit_cost.sh
    make -s bench-emit && build/bench/trace_emit
    bench/policy.py build
    make -s bench-snapshot
fi
if [ "$what" = all ] || [ "$what" = lab ]; then
    lab/build-l1.sh build/lab >/dev/null
    guest/build.sh build/guest >/dev/null
    LAB_OUT=build/lab/bench lab/run-l1.sh -- sh -c 'bench/boot.py && bench/pause.py'
fi
if [ "$what" = disk ]; then
    lab/build-l1.sh build/lab >/dev/null
    guest/build.sh build/guest >/dev/null
    LAB_OUT=build/lab/bench lab/run-l1.sh --timeout 3000 -- bench/disk.py
fi
if [ "$what" = trace ]; then
    lab/build-l1.sh build/lab >/dev/null
    guest/build.sh build/guest >/dev/null
    LAB_OUT=build/lab/bench lab/run-l1.sh --timeout 3000 -- bench/trace.py
fi
