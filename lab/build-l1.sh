#!/bin/bash
# Build the L1 initramfs (busybox-static + 9p, kvm_amd, tun modules + lab/l1-init)
# into build/lab/l1-initramfs.cpio.gz. Idempotent. Usage: lab/build-l1.sh [OUTDIR]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-build/lab}
vmlinuz=$(ls /boot/vmlinuz-* | sort -V | tail -n 1)   # never hard-code the version
ver=${vmlinuz#/boot/vmlinuz-}
moddir=/lib/modules/$ver
busybox=/bin/busybox
# It runs as the initramfs' only binary: it must be busybox-static's.
if ldd "$busybox" >/dev/null 2>&1; then
    echo "$busybox is dynamically linked: apt-get install busybox-static" >&2
    exit 1
fi
# virtio-pci transport + 9p for the two shares, then kvm_amd for /dev/kvm;
# tun for the device scenarios' TAP device (lab/devices.py).
modules="virtio_pci 9pnet_virtio 9p kvm-amd tun"
img=$out/l1-initramfs.cpio.gz

stamp="$ver $(stat -c %s:%Y "$busybox") $modules $(cat "$0" "$here/l1-init" | sha256sum)"
if [ -f "$img" ] && [ "$(cat "$out/.l1-stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "l1: up to date: $img"
    exit 0
fi
mkdir -p "$out"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,etc} "$root/lib/modules/$ver"
ln -s bin "$root/sbin"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$here/l1-init" "$root/init"

# modules.dep lists all (transitive) deps of a module, last-to-load first.
declare -A seen=()
: > "$root/etc/modules.load"
for m in $modules; do
    line=$(grep -E "(^|/)$m\.ko:" "$moddir/modules.dep")
    read -r -a deps <<< "${line#*:}"
    for p in $(printf '%s\n' "${deps[@]}" | tac) "${line%%:*}"; do
        [ -n "${seen[$p]:-}" ] && continue
        seen[$p]=1
        mkdir -p "$root/lib/modules/$ver/$(dirname "$p")"
        cp "$moddir/$p" "$root/lib/modules/$ver/$p"
        echo "$p" >> "$root/etc/modules.load"
    done
done

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --quiet) | gzip -n > "$img.tmp"
mv "$img.tmp" "$img"
echo "$stamp" > "$out/.l1-stamp"
echo "l1: built $img ($(wc -l < "$root/etc/modules.load") modules)"
