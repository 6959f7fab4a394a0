#!/bin/bash
# Build an ext4 root disk for vigil's default test guest:
#   OUTDIR/rootfs.ext4   64 MiB ext4 with the initramfs' userland (busybox-static,
#                        the virtio/ext4/pvpanic modules, /init, /etc/modules.load)
#                        plus /etc/vigil-rootfs, a marker the lab can look for.
# Boot it with: vigil run --disk path=OUTDIR/rootfs.ext4 --cmdline root=/dev/vda
# (the initramfs loads virtio_blk + ext4 and switch_roots to /dev/vda).
# Usage: guest/build-rootfs.sh [OUTDIR]   (default build/guest). Needs no root and no
# loop mounts: the tree is unpacked from OUTDIR/initramfs.cpio.gz (guest/build.sh
# makes it when missing) and written with mkfs.ext4 -d; owners are set to 0:0 with
# debugfs. Idempotent (skips when nothing changed), reproducible: fixed UUID, hash
# seed and timestamps.
# Debian packages needed: e2fsprogs cpio gzip (and guest/build.sh's, to make the initramfs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-build/guest}
img=$out/rootfs.ext4
initramfs=$out/initramfs.cpio.gz
size=64M
uuid=6f1c0d1e-7a11-4c5e-9b1a-000000000001  # the filesystem's and the hash seed
export PATH=$PATH:/usr/sbin:/sbin           # mkfs.ext4, debugfs for non-root users

for tool in mkfs.ext4 debugfs e2fsck cpio gzip; do
    command -v "$tool" >/dev/null || { echo "rootfs: $tool missing (apt-get install e2fsprogs cpio gzip)" >&2; exit 1; }
done
if [ ! -f "$initramfs" ]; then
    "$here/build.sh" "$out"
fi

# Fast path: nothing the image is made from changed.
stamp="$(sha256sum < "$initramfs") $(sha256sum < "$0") $size $(mke2fs -V 2>&1 | sed -n 1p)"
if [ -f "$img" ] && [ -f "$out/.rootfs.stamp" ] && [ "$(cat "$out/.rootfs.stamp")" = "$stamp" ]; then
    echo "rootfs: up to date: $img"
    exit 0
fi
rm -f "$out/.rootfs.stamp"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree=$work/root
mkdir "$tree"
gzip -dc "$initramfs" | (cd "$tree" && cpio -idm --quiet --no-absolute-filenames)
[ -x "$tree/init" ] && [ -e "$tree/bin/busybox" ] ||
    { echo "rootfs: $initramfs has no /init or /bin/busybox" >&2; exit 1; }
echo "vigil rootfs" > "$tree/etc/vigil-rootfs"
mkdir -p "$tree/mnt"

# Fixed timestamps (the inodes' and, via E2FSPROGS_FAKE_TIME, the superblock's).
find "$tree" -exec touch -h -d @0 {} +
export E2FSPROGS_FAKE_TIME=1 MKE2FS_DEVICE_SECTSIZE=512
truncate -s "$size" "$work/rootfs.ext4"
mkfs.ext4 -q -F -t ext4 -b 4096 -m 0 -L vigil-root -U "$uuid" \
    -E "root_owner=0:0,hash_seed=$uuid,lazy_itable_init=0,nodiscard" \
    -d "$tree" "$work/rootfs.ext4" "$size"

# mkfs -d copies the unpacking user's uid/gid: make everything root's.
(cd "$tree" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\.||') |
    awk '{ printf "sif \"%s\" uid 0\nsif \"%s\" gid 0\n", $0, $0 }' > "$work/owners"
debugfs -w -f "$work/owners" "$work/rootfs.ext4" >/dev/null 2>&1
e2fsck -fn "$work/rootfs.ext4" >/dev/null 2>&1 ||
    { echo "rootfs: e2fsck found errors in the new image" >&2; exit 1; }

mkdir -p "$out"
mv "$work/rootfs.ext4" "$img"
echo "$stamp" > "$out/.rootfs.stamp"
echo "rootfs: built $img"
