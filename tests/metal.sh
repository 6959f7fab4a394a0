#!/bin/bash
# metal — vigil-metal's scenarios: the multiboot image booted by QEMU's
# software emulation of an AMD-V machine (-cpu EPYC,+svm,+npt), the guest
# given as multiboot modules. Each run is niced and bounded by a timeout;
# each checks the serial output (the guest's and vigil-metal's own
# "vigil-metal:" lines) and that QEMU exited by itself (vigil-metal powered
# the machine off), except the hang, which only the timeout ends.
#  - every tiny guest of the native suite, with vigil run's words and exit
#    status ("vigil-metal: exit N": QEMU's own status is 0 for any ACPI
#    poweroff);
#  - bad input: no kernel, not a kernel, too much --mem, bad options, a bad
#    policy, a CPU without AMD-V or without nested paging, vigil-metal's own
#    failures (--selftest);
#  - a policy module redirecting a port read and denying an MSR read, with
#    --stats, the audit lines and --trace;
#  - Debian's stock kernel (bzImage, then PVH) booted to the default guest's
#    init, reporting its CPUs and memory, reading and writing a RAM disk
#    module through virtio-blk (bzImage), its shell on virtio-console
#    (PVH), a disk policy rule denying a write, on 2 CPUs (--cpus 2, -smp 2),
#    ended by poweroff -f.
# Usage: tests/metal.sh [BUILD_DIR]     Last line: "metal: N passed, N failed".
#   METAL_GUEST=DIR  the default guest's build (default BUILD_DIR/guest)
set -u
cd "$(dirname "$0")/.."
B=${1:-build}
IMG=$B/vigil-metal
G=$B/tests/guests
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; [ -n "${2:-}" ] && echo "$2" | tail -n 15 | sed 's/^/    /'; fail=$((fail + 1)); }

QEMU=${QEMU:-qemu-system-x86_64}
CPU="EPYC,+svm,+npt"
# run NAME TIMEOUT APPEND MODULES [QEMU-ARGS...]; stdin from $STDIN_CMD's
# output when set. Leaves $T/NAME.out and $rc (QEMU's status; 124: timeout).
run() {
    local name=$1 t=$2 append=$3 mods=$4
    shift 4
    local args=(-accel tcg -cpu "$CPU" -m 2G -serial stdio -display none -monitor none -no-reboot
                -kernel "$IMG" -append "$append")
    [ -n "$mods" ] && args+=(-initrd "$mods")
    if [ -n "${STDIN_CMD:-}" ]; then
        bash -c "$STDIN_CMD" | timeout "$t" nice "$QEMU" "${args[@]}" "$@" >"$T/$name.out" 2>&1
        rc=${PIPESTATUS[1]}
    else
        timeout "$t" nice "$QEMU" "${args[@]}" "$@" </dev/null >"$T/$name.out" 2>&1
        rc=$?
    fi
}
has() { grep -qF -- "$2" "$T/$1.out"; }
# expect NAME DESCRIPTION STATUS WORDS GUEST-TEXT APPEND MODULES [QEMU-ARGS...]:
# QEMU exits by itself, vigil-metal says WORDS (a whole line, if not empty),
# "exit STATUS", and the guest printed GUEST-TEXT (if not empty).
expect() {
    local name=$1 desc=$2 status=$3 words=$4 text=$5 append=$6 mods=$7
    shift 7
    run "$name" 60 "$append" "$mods" "$@"
    if [ "$rc" = 124 ]; then ko "$desc" "QEMU still running after 60 s: $(cat "$T/$name.out")"
    elif ! grep -qx "vigil-metal: exit $status" "$T/$name.out"; then ko "$desc" "not 'exit $status': $(cat "$T/$name.out")"
    elif [ -n "$words" ] && ! grep -qx -- "vigil-metal: $words" "$T/$name.out"; then ko "$desc" "no line '$words': $(cat "$T/$name.out")"
    elif [ -n "$text" ] && ! has "$name" "$text"; then ko "$desc" "the guest did not print '$text': $(cat "$T/$name.out")"
    else ok "$desc"; fi
}

if [ ! -f "$IMG" ] || ! command -v "$QEMU" >/dev/null; then
    ko "prerequisites" "need $IMG (make metal) and $QEMU"
    echo "metal: $pass passed, $fail failed"
    exit 1
fi

# ---- the image builds warning-free with both compilers ---------------------
for cc in gcc clang; do
    if make -s B="$B/metal-werror-$cc" METAL_CC=$cc METAL_EXTRA=-Werror "$B/metal-werror-$cc/vigil-metal" >"$T/werror-$cc" 2>&1
    then ok "vigil-metal builds with $cc -Wall -Wextra -Werror"
    else ko "vigil-metal builds with $cc -Wall -Wextra -Werror" "$(cat "$T/werror-$cc")"; fi
done

# ---- the tiny guests, as under vigil run (tests/native.sh) -------------------
expect poweroff "poweroff exits 0" 0 "guest powered off" "tiny: denied ok" "--mem 64M" "$G/tiny-poweroff.bin"
expect kbdreset "i8042 reset exits 2" 2 "guest reset" "tiny: hello" "--mem 64M" "$G/tiny-kbdreset.bin"
expect acpireset "ACPI reset exits 2" 2 "guest reset" "tiny: hello" "--mem 64M" "$G/tiny-acpireset.bin"
expect triple "triple fault exits 3" 3 "guest crashed" "tiny: hello" "--mem 64M" "$G/tiny-triple.bin"
expect panic "pvpanic exits 4" 4 "guest panicked" "tiny: hello" "--mem 64M" "$G/tiny-panic.bin"
STDIN_CMD="sleep 3; echo line-from-stdin-42" \
    expect echo "COM1 input reaches the guest" 0 "guest powered off" "line-from-stdin-42" "--mem 64M" "$G/tiny-echo.bin"
# Output only the guest writes back: the input is not echoed by the host.
if [ "$(grep -c line-from-stdin-42 "$T/echo.out")" = 1 ]; then ok "COM1 input echoed once (by the guest)"
else ko "COM1 input echoed once" "$(cat "$T/echo.out")"; fi

# A guest that spins with interrupts off never ends by itself: only the
# timeout stops QEMU, and nothing of vigil-metal's says it ended.
run hang 10 "--mem 64M" "$G/tiny-hang.bin"
if [ "$rc" = 124 ] && has hang "tiny: hello" && ! grep -q "^vigil-metal: exit" "$T/hang.out"; then ok "hang runs until the timeout"
else ko "hang runs until the timeout" "status $rc: $(cat "$T/hang.out")"; fi
# ... and Ctrl-A x on COM1 stops it as in vigil run (the host tick brings
# the vCPU back to the poll loop while the guest never exits).
STDIN_CMD="sleep 3; printf '\\001x'" \
    expect hangquit "Ctrl-A x stops a spinning guest (exit 5)" 5 "stopped by user" "tiny: hello" "--mem 64M" "$G/tiny-hang.bin"

# Exit storms (a COM1 flood; RDMSR in a loop) take nothing down: vigil-metal
# stays responsive and Ctrl-A x ends them.
for g in flood msrloop; do
    STDIN_CMD="sleep 4; printf '\\001x'" \
        expect "storm-$g" "an exit storm (tiny-$g) stays stoppable: Ctrl-A x, exit 5" 5 "stopped by user" "" "--mem 64M" "$G/tiny-$g.bin"
done

# --stats: the monitor's report, vigil run's lines behind the prefix.
expect stats "--stats" 0 "guest powered off" "" "--mem 64M --stats" "$G/tiny-poweroff.bin"
if grep -Eq '^vigil-metal: vcpu0 port 0x3f8 com1: [1-9]' "$T/stats.out" &&
   grep -Eq '^vigil-metal: vcpu0 port 0x1234 \(unclaimed\): 2 denied=2$' "$T/stats.out" &&
   grep -Eq '^vigil-metal: total denied: [1-9]' "$T/stats.out"; then ok "--stats counts COM1 and the denied port"
else ko "--stats counts COM1 and the denied port" "$(cat "$T/stats.out")"; fi

# MMIO to empty PCI window space and REP OUTS to a stray port: unclaimed and
# denied, as under vigil run (MMIO decoded from the guest's instruction).
expect wild "stray MMIO and REP OUTS" 0 "guest powered off" "tiny: denied ok" "--mem 64M --stats" "$G/tiny-wild.bin"
if grep -Eq '^vigil-metal: vcpu0 mmio 0xd0000000 \(unclaimed\): 2 denied=2$' "$T/wild.out" &&
   grep -Eq '^vigil-metal: vcpu0 port 0x80 \(unclaimed\): 8 denied=8$' "$T/wild.out"; then ok "stray MMIO and REP OUTS denied and counted"
else ko "stray MMIO and REP OUTS denied and counted" "$(grep -e unclaimed "$T/wild.out")"; fi

# ---- bad input: one line, then the machine powers off ------------------------
echo "this is not a kernel" >"$T/notakernel"
expect nomod "no guest module" 1 "" "" "--mem 64M" ""
has nomod "vigil-metal: no guest kernel" || ko "no guest module: says so" "$(cat "$T/nomod.out")"
expect notkernel "a module that is not a kernel" 1 "kernel is neither a bzImage nor an ELF vmlinux" "" "" "$T/notakernel"
expect bigmem "more --mem than the machine has" 1 "" "" "--mem 900G" "$G/tiny-poweroff.bin"
grep -q "^vigil-metal: --mem 921600 MiB is more than this machine's [0-9]* MiB of free RAM$" "$T/bigmem.out" ||
    ko "more --mem: the line" "$(cat "$T/bigmem.out")"
expect badopt "an unknown option" 1 "" "" "--memory 64M" "$G/tiny-poweroff.bin"
grep -q "^vigil-metal: unknown option '--memory'" "$T/badopt.out" || ko "unknown option: the line" "$(cat "$T/badopt.out")"
expect badmem "a bad --mem" 1 "--mem 'lots': expected a size such as 256M or 2G" "" "--mem lots" "$G/tiny-poweroff.bin"
expect smallmem "--mem below 64M" 1 "--mem 16M is below the minimum of 64M" "" "--mem 16M" "$G/tiny-poweroff.bin"
expect badcondev "a bad --console-device" 1 "--console-device 'vga': expected serial or virtio" "" "--console-device vga" "$G/tiny-poweroff.bin"
expect badcpus "a bad --cpus" 1 "--cpus '0': expected a number from 1 to 64" "" "--cpus 0" "$G/tiny-poweroff.bin"
expect cpus2on1 "--cpus 2 on a machine of one CPU" 1 "--cpus 2: vigil-metal runs one vCPU per host CPU and this machine has 1" "" \
    "--cpus 2" "$G/tiny-poweroff.bin"
expect cpus2 "--cpus 2 on -smp 2: a guest of one CPU ends as before" 0 "guest powered off" "tiny: denied ok" "--cpus 2" \
    "$G/tiny-poweroff.bin" -smp 2
expect noarg "an option without its argument" 1 "option '--mem' requires an argument" "" "--mem" "$G/tiny-poweroff.bin"
printf '{"rules":[{"id":"probe",' >"$T/broken.json"
expect badpolicy "a policy that is not JSON" 1 "" "" "--mem 64M" "$G/tiny-poweroff.bin,$T/broken.json policy"
grep -q "^vigil-metal: policy: line 1 column [0-9]*:" "$T/badpolicy.out" || ko "bad policy: the parser's line" "$(cat "$T/badpolicy.out")"
printf '{"rules":[{"id":"x","resource":"pio","ports":"0x3ff-0x3f8","verdict":"deny"}]}\n' >"$T/reversed.json"
expect badrange "a policy with a reversed range" 1 "" "" "--mem 64M" "$G/tiny-poweroff.bin,$T/reversed.json policy"
grep -q '^vigil-metal: policy: rule "x" (#1): ports: ' "$T/badrange.out" || ko "reversed range: the rule's line" "$(cat "$T/badrange.out")"
CPU=qemu64,-svm expect nosvm "a CPU without AMD-V" 1 "" "" "--mem 64M" "$G/tiny-poweroff.bin"
grep -q "^vigil-metal: this CPU has no AMD-V" "$T/nosvm.out" || ko "no AMD-V: the line" "$(cat "$T/nosvm.out")"
CPU=qemu64 expect nonpt "-cpu qemu64: AMD-V without nested paging" 1 "" "" "--mem 64M" "$G/tiny-poweroff.bin"
grep -q "^vigil-metal: this CPU's AMD-V has no nested paging" "$T/nonpt.out" || ko "no NPT: the line" "$(cat "$T/nonpt.out")"
# The libc shim checked on the machine itself (heap reuse, conversions,
# sorting, calendar, timed waits; src/metal/selftest.c).
expect libc "the libc shim's checks" 0 "" "" "--selftest libc" ""
grep -q "^vigil-metal: selftest libc: [1-9][0-9]* checks, 0 failed$" "$T/libc.out" || ko "libc checks: all pass" "$(cat "$T/libc.out")"
# The host's application processors (INIT/SIPI through the trampoline at
# 0x8000): all of QEMU's -smp CPUs come up and a mutex and a condition pass
# between two of them (the lock shim's spinning path).
expect smp2 "-smp 2: the application processor starts" 0 "selftest smp: 2 CPUs online" "" "--selftest smp" "" -smp 2
expect smp4 "-smp 4: three application processors start" 0 "selftest smp: 4 CPUs online" "" "--selftest smp" "" -smp 4
# vigil-metal's own failures: a host fault through its IDT, an abort, a
# wait that nothing on the only CPU could end.
expect fault "a host page fault is a line, not a triple fault" 3 "fatal: host fault" "" "--selftest fault" "$G/tiny-poweroff.bin"
grep -q "^vigil-metal: host fault #14 (page fault) at RIP 0x" "$T/fault.out" || ko "host fault: the line" "$(cat "$T/fault.out")"
expect abort "abort() is a line" 3 "fatal: aborted" "" "--selftest abort" "$G/tiny-poweroff.bin"
expect deadlock "a wait on the only CPU fails loudly" 3 "fatal: deadlock" "" "--selftest deadlock" "$G/tiny-poweroff.bin"
# A VMRUN that fails the architecture's consistency checks (the guest's
# EFER.SVME cleared): a line naming it, "guest crashed" and exit 3, never a hang.
expect vmrun "a VMRUN refused by its consistency checks is a line and exit 3" 3 "guest crashed" "" "--selftest vmrun" "$G/tiny-poweroff.bin"
grep -q "^vigil-metal: vCPU 0: VMRUN refused the VMCB" "$T/vmrun.out" || ko "refused VMRUN: the line" "$(cat "$T/vmrun.out")"

# ---- a policy module: a port read redirected, an MSR read denied ----------
printf '{"rules":[{"id":"probe","resource":"pio","ports":"0x1234","access":"read","verdict":"redirect","value":"0xffff"},{"id":"no-tsc","resource":"msr","msrs":"0x10","access":"read","verdict":"deny"}]}\n' >"$T/policy.json"
expect polpio "policy: port read redirected" 0 "guest powered off" "tiny: denied ok" "--mem 64M --stats" \
    "$G/tiny-poweroff.bin,$T/policy.json policy"
if grep -q '^vigil-metal: policy rule probe (pio redirect): hits=2$' "$T/polpio.out" &&
   grep -Eq '^vigil-metal: vcpu0 port 0x1234 \(unclaimed\): 2$' "$T/polpio.out"; then ok "policy: 2 redirect hits, not denied"
else ko "policy: 2 redirect hits, not denied" "$(grep -e 0x1234 -e policy "$T/polpio.out")"; fi
expect polmsr "policy: MSR read denied, the guest saw #GP" 0 "guest powered off" "tiny: msr read gp" "--mem 64M --stats" \
    "$G/tiny-msr.bin,$T/policy.json policy"
if grep -q '^vigil-metal: policy rule no-tsc (msr deny): hits=1$' "$T/polmsr.out" &&
   grep -q '^vigil-metal: audit {.*"rule":"no-tsc","resource":"msr","verdict":"deny".*"msr":"0x10","access":"read"' "$T/polmsr.out"
then ok "policy: MSR denial counted and audited"
else ko "policy: MSR denial counted and audited" "$(grep -e msr -e policy -e audit "$T/polmsr.out")"; fi
# Without the policy the same guest reads the TSC: the #GP was the policy's.
expect nopolmsr "no policy: the MSR read succeeds" 0 "guest powered off" "tiny: msr read 0x" "--mem 64M" "$G/tiny-msr.bin"
printf '{"rules":[{"id":"vig1","resource":"cpuid","leaf":"0x40000010","verdict":"redirect","registers":{"eax":"0x76696731"}}]}\n' >"$T/cpuid.json"
expect polcpuid "policy: a CPUID leaf redirected" 0 "guest powered off" "tiny: cpuid redirect ok" "--mem 64M" \
    "$G/tiny-cpuid.bin,$T/cpuid.json policy"
grep -q '^vigil-metal: audit {.*"rule":"vig1","resource":"cpuid","verdict":"redirect".*"leaf":"0x40000010"' "$T/polcpuid.out" &&
    ok "policy: the CPUID redirect audited once at build" || ko "policy: the CPUID redirect audited" "$(grep audit "$T/polcpuid.out")"
expect trace "--trace: JSON lines on COM1" 0 "guest powered off" "" "--mem 64M --trace -" \
    "$G/tiny-poweroff.bin,$T/policy.json policy"
grep -q '^vigil-metal: trace {"t":[0-9]*,"vcpu":0,"kind":"pio","addr":"0x1234","len":1,"write":false,"value":"0xff","device":null,"verdict":"redirect","rule":"probe"}$' "$T/trace.out" &&
    ok "--trace: the redirected read's record" || ko "--trace: the redirected read's record" "$(grep 0x1234 "$T/trace.out")"

# ---- Debian's stock kernel to the default guest's init ----------------------
# bzImage and the PVH entry of its ELF vmlinux, with the busybox initramfs
# (guest/build.sh: make guests); the guest reports its CPUs and memory and
# `poweroff -f` ends QEMU.
GUEST=${METAL_GUEST:-$B/guest}
# A 1 MiB RAM disk module for the bzImage run: virtio-blk over it.
python3 -c "import sys; d = bytearray(1 << 20); d[0:16] = b'vigil-metal-disk'; open(sys.argv[1], 'wb').write(d)" "$T/disk.img"
if [ -f "$GUEST/vmlinuz" ] && [ -f "$GUEST/vmlinux" ] && [ -f "$GUEST/initramfs.cpio.gz" ]; then
    printf '{"rules":[{"id":"no-write-7","resource":"disk","drive":"drive0","access":"write","sectors":"7-7","verdict":"deny"}]}\n' \
        >"$T/disk-policy.json"
    # bzImage: COM1 console and a RAM disk; PVH: virtio-console (hvc0);
    # bzImage again with a policy module denying a write to the disk.
    # bzImage on 2 CPUs with the RAM disk (--cpus 2 on -smp 2: one vCPU per host
    # CPU; its MSI-X names vCPUs by logical destination).
    for k in vmlinuz:256 vmlinux:512 vmlinuz-policy:256 vmlinuz-smp2:256; do
        kernel=${k%%:*} disk=$T/disk.img opts= pol= cpus=1
        [ "$kernel" = vmlinux ] && disk= opts="--console-device virtio"
        [ "$kernel" = vmlinuz-policy ] && kernel=vmlinuz pol=$T/disk-policy.json
        [ "$kernel" = vmlinuz-smp2 ] && kernel=vmlinuz cpus=2
        METAL_CPUS=$cpus METAL_OPTS=$opts python3 tests/metal_linux.py "$IMG" "$GUEST/$kernel" "$GUEST/initramfs.cpio.gz" "${k#*:}" 300 \
            $disk $pol >"$T/linux" 2>&1
        while read -r verdict what; do
            case $verdict in
                PASS) ok "${k%%:*}: $what" ;;
                FAIL) ko "${k%%:*}: $what" "$(grep '^    ' "$T/linux")" ;;
            esac
        done < <(grep -E '^(PASS|FAIL) ' "$T/linux")
        grep -qE '^(PASS|FAIL) ' "$T/linux" || ko "${k%%:*}: Debian's kernel" "$(cat "$T/linux")"
    done
else
    ko "Debian's kernel" "no default guest in $GUEST (make guests)"
fi

echo "metal: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
