#!/bin/bash
# The benchmark (`make bench`): vigil beside QEMU on the same work, every
# bench interleaving its VMMs run by run, medians of N with min-max; one
# table at the end with each goal of issue 10 MET / NOT MET / NOT MEASURED,
# and the same as JSON in build/bench/results-<date>-<commit>.json.
#
#   bench/run.sh [-n N] [--lab] [--only SECTIONS]
#     native sections (this host's /dev/kvm, tiny guests; a few minutes):
#       startup   wall and CPU to the first KVM_RUN, peak RSS (bench/startup.py)
#       exitcost  vigil's instructions per denied exit, callgrind (bench/exit_cost.sh)
#       exits     port exits per second vs QEMU microvm (bench/exits.py)
#       policy    exits/s with no policy, 10,000 rules, auditing (bench/policy.py)
#       emit      what one trace event costs the emitting thread (bench/trace_emit; log only)
#       snapshot  restore/create/clones vs QEMU migrate (bench/snapshot.py)
#       density   100 tiny VMs at once, each with a disk and vsock (bench/density.py)
#     lab sections (only with --lab or LAB=1: one L1 boot, many minutes):
#       boot      Debian kernel boot, bzImage and PVH, vs QEMU microvm and pc (bench/boot.py)
#       disk      O_DIRECT throughput and IOPS vs QEMU aio=io_uring (bench/disk.py)
#       net       TCP both ways over TAP and user networking vs QEMU virtio-net, no vhost (bench/net.py)
#     only when asked (--only metal; one L1 boot per round, N capped at 3):
#       metal     vigil-metal beside vigil on KVM in the lab: exits/s, Debian to init (bench/metal.py)
#   Env: N (runs, default 5), LAB=1, SECTIONS="startup exits ...", VMS (density, 100),
#        LAB_BENCH_RUNS (lab rounds, default N capped at 3), LAB_TIMEOUT (s, 5400),
#        LAB_BOOT_TRACE=0 (no traced boots for L1's exit counts), LAB_NET_RUNS (2).
#   Each bench's own output goes to build/bench/run/<section>.log (replaced
#   by every run; the results-*.json files are kept).
#
# Older entry points, kept: bench/run.sh disk | trace | pause | initcalls (one lab bench each;
# initcalls: the guest's initcall timeline beside microvm's, bench/initcalls.py).
# A benchmark, never a test: it exits 0 whatever the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

case ${1:-} in
    disk|trace|pause|initcalls)
        what=$1
        make -s all guests
        lab/build-l1.sh build/lab >/dev/null
        guest/build.sh build/guest >/dev/null
        t=3000; [ "$what" = pause ] && t=1800
        exec env LAB_OUT=build/lab/bench lab/run-l1.sh --timeout $t -- "bench/$what.py" ;;
esac

N=${N:-5}
LAB=${LAB:-0}
SECTIONS=${SECTIONS:-}
while [ $# -gt 0 ]; do
    case $1 in
        -n) N=$2; shift 2 ;;
        --lab) LAB=1; shift ;;
        --only) SECTIONS=$2; shift 2 ;;
        native) LAB=0; shift ;;
        lab) LAB=1; SECTIONS=${SECTIONS:-boot disk net}; shift ;;
        all) LAB=1; shift ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
    esac
done
NATIVE="startup exitcost exits policy emit snapshot density"
LABS="boot disk net"
[ -n "$SECTIONS" ] || { SECTIONS=$NATIVE; [ "$LAB" = 1 ] && SECTIONS="$SECTIONS $LABS"; }
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

B=build
make -s -j2 all guests "$B/bench/startup_probe" "$B/bench/kvm_floor" \
    "$B/bench/tiny-snapcount-pvh.elf" "$B/bench/tiny-idle-pvh.elf" \
    "$B/bench/tiny-pioloop-pvh.elf" "$B/bench/tiny-poweroff-pvh.elf" "$B/bench/netbench"
R=$B/bench/run
rm -rf "$R"
mkdir -p "$R"
why=()

# section NAME CMD...: runs one bench, its output to $R/NAME.log.
section() {
    local name=$1; shift
    if ! want "$name"; then
        why+=(--why-not "$name=not asked for (SECTIONS=\"$SECTIONS\")")
        return
    fi
    local t0=$SECONDS
    printf '%-9s ' "$name"
    if "$@" >"$R/$name.log" 2>&1; then
        echo "done in $((SECONDS - t0)) s ($R/$name.log)"
    else
        echo "FAILED after $((SECONDS - t0)) s, status $? (see $R/$name.log)"
        why+=(--why-not "$name=the bench failed: see $R/$name.log")
    fi
}

echo "bench: N=$N, sections: $SECTIONS"
section startup  env N="$N" bench/startup.py "$B" --json "$R/startup.json"
section exitcost bench/exit_cost.sh "$B" --json "$R/exit_cost.json"
section exits    bench/exits.py "$B" --runs "$N" --json "$R/exits.json"
section policy   env REPS="$N" bench/policy.py "$B" --json "$R/policy.json"
section emit     sh -c "make -s B=$B bench-emit && $B/bench/trace_emit"
section snapshot bench/snapshot.py "$B" --runs "$N" --json "$R/snapshot.json"
section density  bench/density.py "$B" --vms "${VMS:-100}" --json "$R/density.json"
section metal    sh -c "make -s B=$B metal && guest/build.sh $B/guest >/dev/null && nice bench/metal.py $B --runs $(( N < 3 ? N : 3 )) --json $R/metal.json"

lab=()
want boot && lab+=(bench/boot.py)
want disk && lab+=(bench/disk.py)
want net && lab+=(bench/net.py)
want boot && [ "${LAB_BOOT_TRACE:-1}" = 1 ] && lab+=("bench/boot.py --trace-only")
if [ ${#lab[@]} -gt 0 ]; then
    lab/build-l1.sh build/lab >/dev/null
    guest/build.sh build/guest >/dev/null
    runs=${LAB_BENCH_RUNS:-$(( N < 3 ? N : 3 ))}
    job=$(printf '%s; ' "${lab[@]}")
    printf '%-9s ' lab
    t0=$SECONDS
    # One L1 boot for every lab section; each writes its JSON to LAB_RESULTS.
    if LAB_BENCH_RUNS=$runs LAB_OUT="$R/lab" nice lab/run-l1.sh --timeout "${LAB_TIMEOUT:-5400}" \
            -- sh -c "$job" >"$R/lab.log" 2>&1; then
        echo "done in $((SECONDS - t0)) s ($R/lab.log)"
    else
        echo "FAILED after $((SECONDS - t0)) s (see $R/lab.log)"
    fi
fi
for s in $LABS; do
    if [ "$LAB" != 1 ]; then why+=(--why-not "$s=lab not run: LAB=0 (make bench LAB=1)")
    elif ! want $s; then why+=(--why-not "$s=not asked for (SECTIONS=\"$SECTIONS\")")
    elif [ ! -f "$R/lab/$s.json" ]; then why+=(--why-not "$s=the lab wrote no $s.json: see $R/lab.log")
    fi
done

stamp=$(date -u +%Y%m%d-%H%M)-$(git rev-parse --short HEAD 2>/dev/null || echo nogit)
bench/report.py "$R" --out "$B/bench/results-$stamp.json" "${why[@]}"
