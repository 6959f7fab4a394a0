#!/bin/bash
# layering — the portable part (src/core, src/virtio, src/devices, src/arch:
# the Makefile's CORE_SRC) must build without the KVM backend and without host
# I/O. Two checks, both over every portable file:
#  (a) includes: no header from src/kvm, src/host, src/vmm, src/api, src/cli,
#      and none of the host-I/O system headers (KVM, sockets, epoll, eventfd,
#      timerfd, fcntl, Unix sockets, getrandom, flock, netinet);
#  (b) symbols: what the portable objects leave undefined (nm -u, less what
#      they define themselves) is pure libc from the allowlist below, plus
#      pthread mutexes, condition variables and pthread_once. Locks are allowed in the
#      portable part on purpose: the bare-metal build shims them (a spinlock
#      and a wait queue). No open/read/write/close, sockets, epoll, eventfd,
#      ioctl, mmap, getrandom, time, clock_gettime or pthread_create: those
#      live behind interfaces (core/exec.h, core/platform.h, core/clock.h,
#      core/entropy.h, devices/*_backend.h) implemented in src/host and src/kvm.
#      One softer class is allowed too: formatted output to a stream the host
#      opened and handed in (fprintf/fputc/fputs/fwrite on vm->trace and the
#      --stats report, src/core/exit.c and monitor.c), never fopen/fclose;
#      a bare-metal build gives them a FILE over its console. It goes when
#      the trace becomes a ring (design review, change 5).
# Usage: tests/layering.sh [BUILD_DIR]   (builds BUILD_DIR's objects first)
# Last line: "layering: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
B=${1:-build}
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }

PORTABLE_DIRS="src/core src/virtio src/devices src/arch"
# Portable sources as the Makefile picks them (CORE_SRC), plus their headers.
mapfile -t SRCS < <(make -s --no-print-directory -f Makefile -f - print-core-src <<<'print-core-src: ; @printf "%s\n" $(CORE_SRC)')
mapfile -t FILES < <(find $PORTABLE_DIRS -name '*.[ch]' | sort)

# ---- (a) includes ------------------------------------------------------------
UPWARD='^[[:space:]]*#[[:space:]]*include[[:space:]]*"(kvm|host|vmm|api|cli)/'
SYSTEM='^[[:space:]]*#[[:space:]]*include[[:space:]]*<(linux/kvm\.h|sys/socket\.h|sys/epoll\.h|sys/eventfd\.h|sys/timerfd\.h|fcntl\.h|sys/un\.h|sys/random\.h|sys/file\.h|netinet/[^>]*)>'
bad=$(grep -nE "$UPWARD|$SYSTEM" "${FILES[@]}")
if [ -z "$bad" ]; then
    ok "includes: ${#FILES[@]} portable files name no host/backend header"
else
    ko "includes: portable files reach up or into host I/O:"
    echo "$bad" | sed 's/^/    /'
fi

# ---- (b) undefined symbols ---------------------------------------------------
# Pure libc: memory, strings, formatting to buffers, conversions (calendar
# too: gmtime_r/timegm are arithmetic), sorting, allocation, aborts and the
# compilers' and sanitizers' own helpers; then locks; then stdio on a stream
# handed in (see above).
ALLOW='^(mem(cpy|move|set|cmp|chr|rchr)|str(len|nlen|cmp|ncmp|casecmp|ncasecmp|chr|rchr|str|cpy|ncpy|cat|ncat|dup|ndup|spn|cspn|pbrk|tol|toul|toll|toull|toumax|error|error_r|tok_r|sep)|__xpg_strerror_r|(v)?s(n)?printf|__(v)?s(n)?printf_chk|__memcpy_chk|__memmove_chk|__memset_chk|__strcpy_chk|__strncpy_chk|__strcat_chk|__strncat_chk|sscanf|__isoc99_sscanf|__isoc23_sscanf|__isoc23_strto(l|ul|ll|ull)|gmtime_r|timegm|malloc|calloc|realloc|free|aligned_alloc|posix_memalign|qsort|bsearch|abort|__assert_fail|__stack_chk_fail|__stack_chk_guard|__ctype_b_loc|__ctype_tolower_loc|__ctype_toupper_loc|tolower|toupper|isspace|isdigit|isxdigit|isalpha|isalnum|isprint|abs|labs|__errno_location|__ubsan_.*|__asan_.*|__sanitizer_.*|__tsan_.*|__msan_.*|_GLOBAL_OFFSET_TABLE_|__dso_handle|__udivti3|__umodti3|__divti3|__modti3|__popcountdi2|__builtin_.*|pthread_mutex_(init|destroy|lock|unlock|trylock)|pthread_cond_(init|destroy|wait|timedwait|signal|broadcast)|pthread_condattr_(init|destroy|setclock)|pthread_mutexattr_(init|destroy|settype)|pthread_once|fprintf|__fprintf_chk|vfprintf|__vfprintf_chk|fputc|fputs|fwrite|putc)$'
OBJS=()
for s in "${SRCS[@]}"; do OBJS+=("$B/obj/${s%.c}.o"); done
if ! make -s B="$B" "${OBJS[@]}" >/dev/null; then
    ko "symbols: the portable objects do not build"
else
    defined=$(nm --defined-only -g "${OBJS[@]}" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u)
    offenders=""
    for o in "${OBJS[@]}"; do
        for sym in $(nm -u "$o" | awk '{ print $2 }' | sed 's/@.*//'); do
            grep -qxF "$sym" <<<"$defined" && continue
            [[ $sym =~ $ALLOW ]] && continue
            offenders+="    ${o#$B/obj/}: $sym"$'\n'
        done
    done
    if [ -z "$offenders" ]; then
        ok "symbols: ${#OBJS[@]} portable objects call only pure libc and locks"
    else
        ko "symbols: portable objects call into the host:"
        printf '%s' "$offenders"
    fi
fi
echo "layering: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
