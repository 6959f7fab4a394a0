#!/bin/bash
# Run one command inside the lab's L1 (QEMU TCG emulating an AMD-V host with
# kvm_amd), chrooted into this host's root (read-only), in the current
# directory. Prints the command's output; exits with its exit status.
#
# Usage: lab/run-l1.sh [--interactive] [--timeout SECS] -- COMMAND [ARGS...]
# Env:   LAB_TIMEOUT (s, default 1800), L1_SMP (1), L1_MEM (MiB, 4096),
#        LAB_OUT (results dir, default build/lab/results). VMM and LAB_* are
#        passed on to COMMAND. Inside L1, COMMAND sees LAB_RESULTS, a writable
#        dir that is LAB_OUT on the host (for logs).
# Exit:  COMMAND's status; 124 if L1 timed out; 125 if L1 failed to report.
set -euo pipefail

interactive=0
timeout=${LAB_TIMEOUT:-1800}
while [ $# -gt 0 ]; do
    case $1 in
        --interactive) interactive=1; shift ;;
        --timeout) timeout=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "usage: $0 [--interactive] [--timeout SECS] -- COMMAND..." >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "run-l1: no command" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
initrd=build/lab/l1-initramfs.cpio.gz
"$here/build-l1.sh" build/lab >/dev/null

# Fresh results dir = the L1's writable share.
res=$(realpath -m "${LAB_OUT:-build/lab/results}")
rm -rf "$res"
mkdir -p "$res"

# The job goes through the share as a script, not via the kernel command line
# (quoting and length limits). It runs under the host's bash in the chroot.
{
    echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for v in VMM ${!LAB_*}; do
        [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
    done
    echo "export HOME=/tmp LAB_RESULTS=/tmp/lab-results"
    printf "export LAB_RESULTS_HOST=%q\n" "$res"  # for messages only
    printf 'cd %q || exit 125\n' "$PWD"
    printf 'exec'; printf ' %q' "$@"; echo
} > "$res/job.sh"
printf '%s' "$PWD" > "$res/cwd"
[ $interactive = 1 ] && touch "$res/interactive"

# One L1 vCPU by default: with -smp 2, L1 soft-locked for good in 2 of 6
# full runs (with a second lab running beside it); -smp 1 passed and was faster.
# softlockup_panic: an L1 starved of host CPU (e.g. two labs at once on 2
# cores) was seen soft-locked for good; dying at once beats waiting for the
# timeout. quiet/loglevel keep L1's messages out of the console log.
qemu=(qemu-system-x86_64 -accel tcg -cpu EPYC,+svm,+npt
      -smp "${L1_SMP:-1}" -m "${L1_MEM:-4096}" -no-reboot
      -kernel "$kernel" -initrd "$initrd"
      -append "console=ttyS0 quiet loglevel=3 panic=-1 softlockup_panic=1 watchdog_thresh=30"
      -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
      -virtfs local,path="$res",mount_tag=results,security_model=none
      -virtfs local,path="$PWD",mount_tag=cwd,security_model=none,readonly=on,multidevs=remap)

start=$(date +%s)
rc=0
if [ $interactive = 1 ]; then
    # The L1 console (and so the command) is this terminal; Ctrl-A x quits.
    timeout --foreground -k 10 "$timeout" "${qemu[@]}" -nographic 2> "$res/qemu.log" || rc=$?
else
    # L1's console goes to a log; the command's output is streamed as it is
    # written to the share (9p writes land in the host file directly).
    touch "$res/output"
    timeout -k 10 "$timeout" "${qemu[@]}" -display none -monitor none \
        -serial file:"$res/console.log" < /dev/null 2> "$res/qemu.log" &
    qpid=$!
    # timeout(1) runs in its own process group: stop it (and so L1) if we
    # are interrupted, or L1 would run on until its timeout.
    trap 'kill $qpid 2>/dev/null || true' EXIT
    tail -n +1 -f --pid=$qpid "$res/output" &
    wait $qpid || rc=$?
    wait  # for tail to drain
fi
echo "run-l1: L1 ran $(( $(date +%s) - start )) s; logs in $res" >&2

if [ -f "$res/status" ]; then
    exit "$(cat "$res/status")"
fi
if [ $rc = 124 ] || [ $rc = 137 ]; then
    echo "run-l1: TIMEOUT: L1 killed after ${timeout}s" >&2
    rc=124
else
    echo "run-l1: L1 ended (qemu exit $rc) without reporting a status" >&2
    rc=125
fi
[ -f "$res/console.log" ] && tail -n 20 "$res/console.log" >&2
exit $rc
