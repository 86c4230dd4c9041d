#!/bin/bash
# Build a Debian 12 (bookworm) cloud-init VM image for the nidofs test suite
# and print the absolute path of the cached compressed debian.qcow2 on stdout.
#
# The image boots under QEMU with a NoCloud seed (an ISO or disk labeled
# "cidata"), gets an address by DHCP on its first ethernet interface, and
# accepts SSH logins for the users that the seed's user-data creates. It has
# no passwords and no SSH host keys, so every VM makes its own at first boot.
#
# Usage: build-debian.sh          (runs as root, because debootstrap does)
# Environment:
#   NIDO_TEST_CACHE      cache directory (default /var/cache/nidofs-tests)
#   NIDO_DEBIAN_MIRROR   Debian archive URL for debootstrap
#                        (default http://deb.debian.org/debian)
#
# Host packages: debootstrap, e2fsprogs, dosfstools, mtools, syslinux,
# syslinux-common, fdisk, qemu-utils.
#
# Layout of the 2 GiB disk (MBR partition table, built without loop devices
# or mounts):
#   partition 1, FAT, label NIDOBOOT: syslinux, kernel and initrd, mounted
#                at /boot in the guest
#   partition 2, ext4, label nido-root: root file system, which cloud-init's
#                growpart and resizefs grow to the size of the disk

set -euo pipefail

readonly SUITE=bookworm
readonly MIRROR=${NIDO_DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly CACHE_ROOT=${NIDO_TEST_CACHE:-/var/cache/nidofs-tests}

readonly DISK_MIB=2048
readonly BOOT_START_MIB=1
readonly BOOT_MIB=128
readonly ROOT_START_MIB=$((BOOT_START_MIB + BOOT_MIB))
readonly ROOT_MIB=$((DISK_MIB - ROOT_START_MIB))
readonly BOOT_LABEL=NIDOBOOT
readonly ROOT_LABEL=nido-root

# debootstrap installs Depends but not Recommends. It also does not resolve
# virtual packages, so python3-cffi-backend is listed because
# python3-cryptography (needed by cloud-init) depends on a name it provides.
#
# The cloud kernel is Debian's kernel for VMs. Compared with
# linux-image-amd64 it made the qcow2 129 MiB instead of 224 MiB, and the
# first boot reached SSH in about 31 s instead of 39 s (QEMU TCG, 2 vCPUs, on
# a 2-CPU host). It has the drivers for virtio (blk, scsi, net, rng), PIIX
# IDE and NVMe.
# NOTE: it lacks AHCI (the q35 SATA controller) and e1000, so disks must be
# virtio, NVMe or IDE on the pc machine, and the NIC must be virtio.
readonly PACKAGES=(
    linux-image-cloud-amd64
    systemd-sysv
    udev
    dbus
    zstd
    e2fsprogs
    cloud-init
    cloud-guest-utils
    python3-cffi-backend
    openssh-server
    sudo
)

log() {
    echo "build-debian: $*" >&2
}

die() {
    log "error: $*"
    exit 1
}

script_path=$(readlink -f "${BASH_SOURCE[0]}")
key=$(sha256sum "$script_path" | cut -c1-16)
image_dir="$CACHE_ROOT/debian-$key"
image="$image_dir/debian.qcow2"

if [[ -f "$image" ]]; then
    echo "$image"
    exit 0
fi

if [[ $EUID -ne 0 ]]; then
    die "must run as root because debootstrap needs chroot. Rerun it with sudo."
fi

for tool in debootstrap chroot flock mkfs.ext4 mkfs.vfat mcopy syslinux sfdisk qemu-img; do
    command -v "$tool" >/dev/null || die "$tool not found. Install the host packages listed at the top of $script_path."
done
mbr_bin=/usr/lib/syslinux/mbr/mbr.bin
[[ -f "$mbr_bin" ]] || die "$mbr_bin not found. Install syslinux-common."

mkdir -p "$CACHE_ROOT"
# Concurrent runs for the same script wait here, and all but the first find
# the finished image.
exec {lock_fd}>"$CACHE_ROOT/debian-$key.lock"
flock "$lock_fd"
if [[ -f "$image" ]]; then
    echo "$image"
    exit 0
fi

# Deletes a work directory. A failed or killed debootstrap can leave /proc
# and /sys mounted inside its root directory, so this unmounts them, deepest
# first, before deleting.
remove_work_dir() {
    local dir=$1 mount_point
    awk -v prefix="$dir/" 'index($5, prefix) == 1 { print $5 }' /proc/self/mountinfo |
        sort -r |
        while read -r mount_point; do
            umount "$mount_point" 2>/dev/null || umount -l "$mount_point" || true
        done
    rm -rf --one-file-system "$dir"
}

# Work directories of killed runs are stale, because this run holds the lock.
for stale_dir in "$CACHE_ROOT/debian-$key".tmp.*; do
    if [[ -d "$stale_dir" ]]; then
        log "removing $stale_dir, left by an earlier run"
        remove_work_dir "$stale_dir"
    fi
done

# The work directory sits in the cache directory so that the final rename
# stays on one file system.
work=$(mktemp -d "$CACHE_ROOT/debian-$key.tmp.XXXXXX")
trap 'remove_work_dir "$work"' EXIT
trap 'log "error: command failed with status $? at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

rootdir="$work/root"
boot_img="$work/boot.img"
root_img="$work/root.img"
disk_img="$work/disk.img"

# --- Install the packages -------------------------------------------------

log "running debootstrap for $SUITE from $MIRROR (takes a few minutes)"
include=$(IFS=,; echo "${PACKAGES[*]}")
SECONDS=0
debootstrap --variant=minbase --include="$include" "$SUITE" "$rootdir" "$MIRROR" >&2
log "debootstrap finished in ${SECONDS}s"

# --- Configure the guest --------------------------------------------------

log "configuring the guest"

# debootstrap copies the host's hostname and resolv.conf, and the package
# scripts made a machine id and SSH host keys. Each VM must get its own.
echo localhost >"$rootdir/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$rootdir/etc/hosts"
: >"$rootdir/etc/resolv.conf"
: >"$rootdir/etc/machine-id"
rm -f "$rootdir/var/lib/dbus/machine-id" "$rootdir/var/lib/systemd/random-seed"
rm -f "$rootdir"/etc/ssh/ssh_host_*

# debootstrap leaves root with a locked password ("*"). Check it, because
# the image must not contain a usable password.
root_hash=$(awk -F: '$1 == "root" { print $2 }' "$rootdir/etc/shadow")
[[ "$root_hash" == "*" || "$root_hash" == "!"* ]] || die "root has a usable password in $rootdir/etc/shadow, expected a locked one"

cat >"$rootdir/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF

# C.UTF-8 is built into libc. With it set here, cloud-init's locale module
# keeps it instead of running locale-gen for en_US.UTF-8 at first boot.
echo LANG=C.UTF-8 >"$rootdir/etc/default/locale"

cat >"$rootdir/etc/fstab" <<EOF
LABEL=$ROOT_LABEL	/	ext4	errors=remount-ro	0	1
LABEL=$BOOT_LABEL	/boot	vfat	defaults,nofail	0	0
EOF

# Only the NoCloud datasource is tried, so cloud-init never probes network
# metadata services. ds-identify reads datasource_list only from one line.
cat >"$rootdir/etc/cloud/cloud.cfg.d/90-nidofs.cfg" <<'EOF'
# Written by build-debian.sh of the nidofs test suite.
datasource_list: [ NoCloud, None ]
# Map the instance's hostname to 127.0.1.1 so that sudo can resolve it.
manage_etc_hosts: true
# RSA and DSA host keys take seconds to generate under TCG, and SSH waits
# for them, so the VM makes only these two types.
ssh_genkeytypes: [ ed25519, ecdsa ]
# The image boots with syslinux and has no GRUB to configure.
grub_dpkg:
  enabled: false
EOF

# cloud-init writes a systemd-networkd file for the first NIC (DHCP) unless
# the seed gives another network config. This file takes any ethernet
# interface that cloud-init did not configure, but boot does not wait for it.
cat >"$rootdir/etc/systemd/network/99-nidofs-dhcp.network" <<'EOF'
[Match]
Type=ether

[Link]
RequiredForOnline=no

[Network]
DHCP=yes
EOF
chroot "$rootdir" systemctl enable systemd-networkd.service >&2

# --- Make the root file system small --------------------------------------

log "removing docs, translations, package caches and logs"
cat >"$rootdir/etc/dpkg/dpkg.cfg.d/90-nidofs-nodoc" <<'EOF'
# Packages installed later in the guest skip docs and translations too.
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
find "$rootdir/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$rootdir/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$rootdir/usr/share/man" "$rootdir/usr/share/info" -mindepth 1 -delete
find "$rootdir/usr/share/locale" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
find "$rootdir/var/cache/apt" "$rootdir/var/lib/apt/lists" -type f -delete
find "$rootdir/var/log" -type f -delete

# --- Build the boot partition ---------------------------------------------

kernels=("$rootdir"/boot/vmlinuz-*)
[[ ${#kernels[@]} -eq 1 && -f "${kernels[0]}" ]] || die "expected one kernel in $rootdir/boot, found: ${kernels[*]}"
kernel_version=${kernels[0]##*/vmlinuz-}
[[ -f "$rootdir/boot/initrd.img-$kernel_version" ]] || die "initrd.img-$kernel_version missing in $rootdir/boot"
log "building the boot partition with kernel $kernel_version"

# PROMPT 0 boots the default entry at once, and holding Shift or Alt shows
# the boot: prompt. SERIAL makes syslinux itself print on ttyS0.
cat >"$work/syslinux.cfg" <<EOF
SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT debian
LABEL debian
    LINUX /vmlinuz-$kernel_version
    INITRD /initrd.img-$kernel_version
    APPEND root=LABEL=$ROOT_LABEL ro console=tty0 console=ttyS0,115200n8
EOF

# -h sets the hidden sector count in the FAT boot sector to the partition's
# first sector, which FAT boot code uses to find the partition on the disk.
mkfs.vfat -C -n "$BOOT_LABEL" -h $((BOOT_START_MIB * 2048)) "$boot_img" $((BOOT_MIB * 1024)) >&2
syslinux --install "$boot_img"
mcopy -i "$boot_img" "$work/syslinux.cfg" ::/syslinux.cfg
# The FAT partition is /boot in the guest, so the root file system keeps an
# empty /boot as its mount point and the kernel is stored only once.
mcopy -i "$boot_img" "$rootdir"/boot/* ::/
find "$rootdir/boot" -mindepth 1 -delete

# --- Build the root partition ---------------------------------------------

log "building the ext4 root file system"
mkfs.ext4 -q -L "$ROOT_LABEL" -d "$rootdir" "$root_img" "${ROOT_MIB}M" >&2

# --- Assemble the disk and convert it -------------------------------------

log "assembling the disk"
truncate -s "${DISK_MIB}M" "$disk_img"
sfdisk --quiet --wipe never "$disk_img" <<EOF
label: dos
start=${BOOT_START_MIB}MiB, size=${BOOT_MIB}MiB, type=c, bootable
start=${ROOT_START_MIB}MiB, type=83
EOF
# mbr.bin is boot code only (440 bytes), so it leaves the partition table
# alone. It boots the partition marked bootable.
dd if="$mbr_bin" of="$disk_img" bs=440 count=1 conv=notrunc status=none
dd if="$boot_img" of="$disk_img" bs=1M seek="$BOOT_START_MIB" conv=notrunc,sparse status=none
dd if="$root_img" of="$disk_img" bs=1M seek="$ROOT_START_MIB" conv=notrunc,sparse status=none

log "converting to compressed qcow2"
mkdir "$work/result"
qemu-img convert -c -O qcow2 "$disk_img" "$work/result/debian.qcow2"

# rename(2) makes the directory appear complete or not at all.
mv -T "$work/result" "$image_dir"
log "image ready ($(du -h "$image" | cut -f1))"
echo "$image"
