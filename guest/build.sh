#!/bin/bash
# Build vigil's default test guest from Debian packages:
#   OUTDIR/vmlinuz            the distribution bzImage (linux-image-amd64)
#   OUTDIR/vmlinux            the ELF vmlinux inside it (for PVH boot)
#   OUTDIR/initramfs.cpio.gz  busybox-static + virtio/ext4/pvpanic modules + guest/init
#   and guest/tools/*.c (lab helpers, e.g. vsock), built gcc -static into /bin
# Usage: guest/build.sh [OUTDIR]   (default build/guest). Reproducible and idempotent.
# Debian packages needed: linux-image-amd64 busybox-static cpio xz-utils gzip python3
# gcc libc6-dev (static libc, linux/vm_sockets.h)
# (plus zstd/lz4/bzip2/lzop only if a future kernel payload uses that compression).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-build/guest}

# The kernel version changes with Debian updates: take the newest installed one.
vmlinuz=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)
ver=${vmlinuz#/boot/vmlinuz-}
moddir=/lib/modules/$ver
busybox=/bin/busybox
# It runs as the initramfs' only binary: it must be busybox-static's.
if ldd "$busybox" >/dev/null 2>&1; then
    echo "$busybox is dynamically linked: apt-get install busybox-static" >&2
    exit 1
fi

# Modules the guest loads (names as in modules.dep); dependencies are added.
# crc32c_generic: ext4 needs a crc32c (a modules.softdep, not in modules.dep).
# msr: /dev/cpu/N/msr, how the lab's msr-redirect scenario reads an MSR.
modules="virtio_ring virtio virtio_pci virtio_mmio virtio_blk virtio_net
  virtio_console virtio-rng vmw_vsock_virtio_transport crc32c_generic ext4 pvpanic-mmio pvpanic-pci msr"

# Fast path: skip the build when nothing it depends on changed.
stamp="$ver $(stat -c %s:%Y "$vmlinuz" "$busybox" | tr '\n' ' ')
$modules $(cat "$0" "$here/init" "$here/extract-vmlinux.py" "$here"/tools/*.c | sha256sum)"
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
    echo "guest: up to date in $out"
    exit 0
fi
mkdir -p "$out"
rm -f "$out/.stamp"

cp "$vmlinuz" "$out/vmlinuz"
python3 "$here/extract-vmlinux.py" "$vmlinuz" "$out/vmlinux"

# --- initramfs tree ---
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,root} "$root/lib/modules/$ver"
ln -s bin "$root/sbin"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$here/init" "$root/init"

# Lab helpers: one static program per guest/tools/NAME.c, as /bin/NAME.
for src in "$here"/tools/*.c; do
    [ -e "$src" ] || continue
    tool=$(basename "$src" .c)
    gcc -static -O2 -s -Wall -o "$root/bin/$tool" "$src" ||
        { echo "guest: cannot build $src (apt-get install gcc libc6-dev)" >&2; exit 1; }
done

# Resolve load order from modules.dep. A line is "path: dep1 dep2 ...", where
# the deps (all of them, transitively) are listed so that the LAST must be
# loaded first (that is how modprobe reads it). Emit each path once.
declare -A seen=()
order=()
add() {  # add PATH: append a module path to the load order, once
    [ -n "${seen[$1]:-}" ] && return
    seen[$1]=1
    order+=("$1")
}
for m in $modules; do
    line=$(grep -E "(^|/)$m\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep") ||
        { echo "guest: module $m not in $moddir/modules.dep" >&2; exit 1; }
    read -r -a deps <<< "${line#*:}"
    for ((i = ${#deps[@]} - 1; i >= 0; i--)); do add "${deps[i]}"; done
    add "${line%%:*}"
done
: > "$root/etc/modules.load"
for p in "${order[@]}"; do
    dst=$root/lib/modules/$ver/${p%.ko*}.ko
    mkdir -p "$(dirname "$dst")"
    case $p in  # busybox insmod wants a plain .ko
        *.ko.xz)  xz -dc "$moddir/$p" > "$dst" ;;
        *.ko.zst) zstd -dcq "$moddir/$p" > "$dst" ;;
        *.ko.gz)  gzip -dc "$moddir/$p" > "$dst" ;;
        *)        cp "$moddir/$p" "$dst" ;;
    esac
    echo "${p%.ko*}.ko" >> "$root/etc/modules.load"
done

# Reproducible archive: fixed mtimes and owners, sorted names, no gzip timestamp.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9 -n > "$out/initramfs.cpio.gz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"

echo "$stamp" > "$out/.stamp"
echo "guest: built $out (kernel $ver, ${#order[@]} modules)"
