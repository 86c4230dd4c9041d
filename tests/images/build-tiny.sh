#!/usr/bin/env bash
# Build the tiny test VM image (syslinux, the Debian kernel and a busybox
# initramfs) that reports its NoCloud seed on the serial console.
#
# Usage: build-tiny.sh
#   Prints the absolute path of the compressed qcow2 image on stdout. Progress
#   and errors go to stderr. The image is cached in
#   ${NIDO_TEST_CACHE:-/var/cache/nidofs-tests}/tiny-<key>/tiny.qcow2, where
#   <key> is a hash of this script and the kernel version, so later runs only
#   print the path. NIDO_TINY_KERNEL=<version> selects a kernel from /boot.
#   The default is the newest /boot/vmlinuz-* that has /lib/modules/<version>.
#
# Needs: bash, coreutils, util-linux (flock), kmod (modprobe), busybox-static,
# linux-image-amd64, syslinux, mtools, dosfstools, cpio, qemu-utils.
set -euo pipefail

export LC_ALL=C
export PATH="$PATH:/usr/sbin:/sbin"

# Modules that /init loads, by group. modprobe adds their dependencies.
readonly DISK_MODULES="virtio_pci virtio_blk isofs"
readonly CDROM_MODULES="virtio_scsi ata_piix ahci sr_mod"
readonly POWER_MODULES="button evdev"

readonly KERNEL_CMDLINE="console=ttyS0 quiet panic=-1"

# stdout is reserved for the image path, so every command writes to stderr.
exec 3>&1 1>&2

log() {
    printf 'build-tiny: %s\n' "$*" >&2
}

# Exits the script, or only the subshell when called inside $(...).
die() {
    printf 'build-tiny: error: %s\n' "$*" >&2
    exit 1
}

require_commands() {
    local command_name
    for command_name in "$@"; do
        command -v "$command_name" >/dev/null ||
            die "command '$command_name' not found (install the packages listed at the top of $0)"
    done
}

# Print the kernel version to boot: $NIDO_TINY_KERNEL, or the newest kernel in
# /boot whose modules are installed.
select_kernel_version() {
    local version

    if [[ -n ${NIDO_TINY_KERNEL:-} ]]; then
        printf '%s\n' "$NIDO_TINY_KERNEL"
        return
    fi

    version=$(
        for kernel in /boot/vmlinuz-*; do
            version=${kernel#/boot/vmlinuz-}
            if [[ -f /lib/modules/$version/modules.dep ]]; then
                printf '%s\n' "$version"
            fi
        done | sort -V | tail -n 1
    )
    [[ -n $version ]] ||
        die "no kernel found in /boot with modules in /lib/modules (install linux-image-amd64)"
    printf '%s\n' "$version"
}

# Copy the modules of kernel version $1 named in $3 (separated by spaces) and
# their dependencies, uncompressed, into directory $2, and write the file names
# in load order to $2/$4.order. Modules built into the kernel are skipped.
copy_modules() {
    local kernel_version=$1 module_dir=$2 modules=$3 group=$4
    local module kind path file_name
    local order_file="$module_dir/$group.order"

    : >"$order_file"
    for module in $modules; do
        # modprobe prints one "insmod <path> [options]" or "builtin <name>"
        # line per module, dependencies and softdeps first.
        modprobe --set-version "$kernel_version" --show-depends "$module" >"$module_dir/.depends" ||
            die "module '$module' not found for kernel $kernel_version"

        while read -r kind path _; do
            [[ $kind == insmod ]] || continue

            file_name=${path##*/}
            case $file_name in
                *.ko) cp "$path" "$module_dir/$file_name" ;;
                *.ko.xz) file_name=${file_name%.xz}; xz -dc "$path" >"$module_dir/$file_name" ;;
                *.ko.zst) file_name=${file_name%.zst}; zstd -q -dc "$path" >"$module_dir/$file_name" ;;
                *.ko.gz) file_name=${file_name%.gz}; gzip -dc "$path" >"$module_dir/$file_name" ;;
                *) die "unsupported module file '$path'" ;;
            esac

            # Softdeps can list a module twice, so only the first is kept.
            if ! grep -qxF "$file_name" "$order_file"; then
                printf '%s\n' "$file_name" >>"$order_file"
            fi
        done <"$module_dir/.depends"
    done
    rm -f "$module_dir/.depends"
}

# Write one header and name of an SVR4 "newc" cpio archive entry that has no
# data: $1 name, $2 inode, $3 mode (octal), $4 and $5 device major and minor.
write_newc_entry() {
    local name=$1 inode=$2 mode=$3 major=$4 minor=$5
    local name_size=$((${#name} + 1))

    # Fields: inode, mode, uid, gid, nlink, mtime, file size, device major
    # and minor of the file system, major and minor of the node, name size
    # and checksum.
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        "$inode" "$((8#$mode))" 0 0 1 0 0 0 0 "$major" "$minor" "$name_size" 0
    printf '%s\0' "$name"

    # The 110-byte header plus the name is padded to a multiple of 4 bytes.
    head -c $(((4 - (110 + name_size) % 4) % 4)) /dev/zero
}

# Write a cpio archive with /dev and the /dev/console node. GNU cpio only
# archives files that exist, and creating a device node needs root, so the
# archive is written by hand. The kernel opens /dev/console as stdin, stdout
# and stderr of /init. Without the node, /init starts without them.
write_console_cpio() {
    write_newc_entry dev 1 040755 0 0
    write_newc_entry dev/console 2 020600 5 1
    write_newc_entry 'TRAILER!!!' 0 0 0 0
}

write_init() {
    cat <<'INIT'
#!/bin/sh
# /init of the nidofs tiny test VM. It reads the NoCloud seed (an ISO 9660
# file system labeled "cidata"), prints NIDO-* marker lines on the serial
# console and then powers off or waits for the ACPI power button.
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() {
    printf '%s\n' "$*"
}

idle_forever() {
    while :; do
        sleep 3600
    done
}

say NIDO-TINY-BOOT-OK

# Insert the modules listed in /lib/modules/$1.order, in that order.
load_modules() {
    while read -r file_name; do
        name=$(printf '%s' "${file_name%.ko}" | tr - _)
        if [ ! -d "/sys/module/$name" ]; then
            insmod "/lib/modules/$file_name" || say "nido-tiny: insmod $file_name failed"
        fi
    done <"/lib/modules/$1.order"
}

# Print the volume identifier of the ISO 9660 file system on device $1, or
# fail if the device contains none. The primary volume descriptor is sector 16
# (2048-byte sectors). Its bytes 1-5 are "CD001" and bytes 40-71 are the
# volume identifier, padded with spaces.
iso9660_label() {
    magic=$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null) || return 1
    [ "$magic" = CD001 ] || return 1
    dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | sed 's/ *$//'
}

# Mount the first device whose ISO 9660 label is "cidata" (any case, as
# cloud-init accepts) on /seed and store its path in seed_device.
mount_seed() {
    for device in /dev/vd* /dev/sr*; do
        [ -b "$device" ] || continue
        label=$(iso9660_label "$device") || continue
        label=$(printf '%s' "$label" | tr '[:upper:]' '[:lower:]')
        [ "$label" = cidata ] || continue
        if mount -t iso9660 -o ro "$device" /seed; then
            seed_device=$device
            return 0
        fi
    done
    return 1
}

# Print the value of key $1 in /seed/meta-data, which is JSON
# ({"instance-id": "abc"}) or YAML (instance-id: abc). Prints nothing if the
# key is missing.
# NOTE: this is a line-based match, not a parser. JSON escapes such as \" are
# not decoded, and YAML block scalars and flow mappings are not supported.
meta_data_value() {
    [ -f /seed/meta-data ] || return 0

    value=$(tr -d '\r' </seed/meta-data |
        sed -n -E 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"([^"]*)".*/\1/p' | head -n 1)
    if [ -z "$value" ]; then
        # A JSON number or other bare value.
        value=$(tr -d '\r' </seed/meta-data |
            sed -n -E 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*([^",}[:space:]]+).*/\1/p' | head -n 1)
    fi
    if [ -z "$value" ]; then
        # YAML: strip quotes, or a trailing comment from an unquoted value.
        value=$(tr -d '\r' </seed/meta-data |
            sed -n -E 's/^[[:space:]]*'"$1"'[[:space:]]*:[[:space:]]*//p' | head -n 1 |
            sed -E -e 's/^"([^"]*)".*/\1/' -e t -e "s/^'([^']*)'.*/\\1/" -e t \
                -e 's/[[:space:]]+#.*//' -e 's/[[:space:]]+$//')
    fi
    printf '%s' "$value"
}

# Block devices can appear after insmod returns, so poll for about 10 s. The
# CD-ROM drivers are only loaded if no virtio disk contains the seed, so that
# the common case skips ATA and SCSI probing.
load_modules disk
seed_device=
if ! mount_seed; then
    load_modules cdrom
    tries=0
    while ! mount_seed; do
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || break
        sleep 0.1
    done
fi

if [ -z "$seed_device" ]; then
    say NIDO-NO-SEED
else
    say "NIDO-SEED-DEVICE $seed_device"
    if [ -f /seed/user-data ]; then
        checksum=$(sha256sum /seed/user-data)
        say "NIDO-USERDATA-SHA256 ${checksum%% *}"
    else
        say "NIDO-USERDATA-SHA256 missing"
    fi
    say "NIDO-INSTANCE-ID $(meta_data_value instance-id)"
    say "NIDO-HOSTNAME $(meta_data_value local-hostname)"

    if [ -f /seed/user-data ] && tr -d '\r' </seed/user-data |
        grep -q -E '^[[:space:]]*nido-test:[[:space:]]*poweroff[[:space:]]*$'; then
        say NIDO-TINY-POWEROFF
        umount /seed
        poweroff -f
        say "nido-tiny: poweroff -f failed"
        idle_forever
    fi
fi

# The ACPI button driver reports the power button as an input device, and
# acpid runs /etc/acpi/PWRF/00000080 when that device reports KEY_POWER.
# acpid opens /dev/input/event* only at startup, so wait up to 2 s for the
# nodes first.
load_modules power
tries=0
while [ ! -c /dev/input/event0 ] && [ "$tries" -lt 20 ]; do
    tries=$((tries + 1))
    sleep 0.1
done
acpid -f -c /etc/acpi -l /dev/null -p /run/acpid.pid &

# acpid writes its PID file after it has opened the input devices, so a power
# button press after NIDO-TINY-IDLE is not lost.
tries=0
while [ ! -s /run/acpid.pid ] && [ "$tries" -lt 20 ]; do
    tries=$((tries + 1))
    sleep 0.1
done
if [ ! -s /run/acpid.pid ]; then
    say "nido-tiny: acpid did not start, so the ACPI power button will not work"
fi

say NIDO-TINY-IDLE
idle_forever
INIT
}

write_power_button_action() {
    cat <<'ACTION'
#!/bin/sh
# Run by busybox acpid when the ACPI power button is pressed.
echo NIDO-TINY-ACPI-POWEROFF >/dev/console
poweroff -f
ACTION
}

# Build the initramfs for kernel $1 into file $2, using directory $3 as the
# staging area.
build_initramfs() {
    local kernel_version=$1 output=$2 root=$3
    local busybox applet

    busybox=$(command -v busybox)
    # ldd succeeds only for dynamically linked programs.
    if ldd "$busybox" >/dev/null 2>&1; then
        die "$busybox is dynamically linked (install busybox-static)"
    fi

    mkdir -p "$root"/{bin,etc/acpi/PWRF,lib/modules,proc,run,seed,sys}
    cp "$busybox" "$root/bin/busybox"
    for applet in $("$busybox" --list); do
        if [[ $applet != busybox ]]; then
            ln -s busybox "$root/bin/$applet"
        fi
    done

    write_init >"$root/init"
    write_power_button_action >"$root/etc/acpi/PWRF/00000080"
    chmod 0755 "$root/init" "$root/etc/acpi/PWRF/00000080"

    copy_modules "$kernel_version" "$root/lib/modules" "$DISK_MODULES" disk
    copy_modules "$kernel_version" "$root/lib/modules" "$CDROM_MODULES" cdrom
    copy_modules "$kernel_version" "$root/lib/modules" "$POWER_MODULES" power

    # The kernel unpacks concatenated cpio archives in order.
    {
        write_console_cpio
        (cd "$root" && find . -mindepth 1 | sort |
            cpio --quiet --create --format=newc --owner=0:0 --reproducible)
    } | gzip -9 -n >"$output"
}

# Write a FAT file system with syslinux, the kernel $2 and the initramfs $3 to
# the disk image $1. The FAT file system fills the disk with no partition
# table (a "superfloppy"), which the SeaBIOS of QEMU 7.2 boots like any disk.
build_disk() {
    local disk=$1 kernel=$2 initramfs=$3 work_dir=$4
    local size_mib

    # Disk size: the payload plus 4 MiB for syslinux and FAT metadata.
    size_mib=$((($(stat -c %s "$kernel") + $(stat -c %s "$initramfs")) / 1048576 + 4))
    truncate -s "${size_mib}M" "$disk"
    mkfs.fat --invariant -n NIDOTINY "$disk" >/dev/null

    cat >"$work_dir/syslinux.cfg" <<EOF
DEFAULT tiny
PROMPT 0
TIMEOUT 0
LABEL tiny
    LINUX /vmlinuz
    INITRD /initrd.img
    APPEND $KERNEL_CMDLINE
EOF
    mcopy -i "$disk" "$kernel" ::vmlinuz
    mcopy -i "$disk" "$initramfs" ::initrd.img
    mcopy -i "$disk" "$work_dir/syslinux.cfg" ::syslinux.cfg
    syslinux --install "$disk"
}

main() {
    local script cache_root kernel_version kernel key final_dir final_image lock_fd stale_dir

    script=$(realpath "${BASH_SOURCE[0]}")
    cache_root=$(realpath -m "${NIDO_TEST_CACHE:-/var/cache/nidofs-tests}")
    kernel_version=$(select_kernel_version)
    kernel=/boot/vmlinuz-$kernel_version
    key=$({ cat "$script"; printf '%s\n' "$kernel_version"; } | sha256sum | cut -c 1-16)
    final_dir=$cache_root/tiny-$key
    final_image=$final_dir/tiny.qcow2

    if [[ -f $final_image ]]; then
        printf '%s\n' "$final_image" >&3
        return
    fi

    require_commands modprobe busybox cpio gzip mkfs.fat mcopy syslinux qemu-img flock
    [[ -r $kernel ]] ||
        die "cannot read $kernel (install linux-image-amd64, or set NIDO_TINY_KERNEL to a version in /boot)"
    [[ -f /lib/modules/$kernel_version/modules.dep ]] ||
        die "modules of kernel $kernel_version not found in /lib/modules/$kernel_version"
    mkdir -p "$final_dir" ||
        die "cannot create cache directory $final_dir (set NIDO_TEST_CACHE to a writable directory)"

    # Concurrent runs for the same key wait here, and then find the image.
    exec {lock_fd}<"$final_dir"
    flock "$lock_fd"
    if [[ -f $final_image ]]; then
        printf '%s\n' "$final_image" >&3
        return
    fi

    # Remove build directories left by killed runs. While this run holds the
    # lock, no other run uses them.
    for stale_dir in "$final_dir"/.build.*; do
        if [[ -d $stale_dir ]]; then
            rm -rf -- "$stale_dir"
        fi
    done

    # The build directory is inside final_dir so that the last mv is a rename
    # within one file system, which readers never see half done.
    build_dir=$(mktemp -d "$final_dir/.build.XXXXXX")

    log "building the tiny image with kernel $kernel_version in $build_dir"
    build_initramfs "$kernel_version" "$build_dir/initrd.img" "$build_dir/root"
    build_disk "$build_dir/disk.img" "$kernel" "$build_dir/initrd.img" "$build_dir"
    qemu-img convert -c -O qcow2 "$build_dir/disk.img" "$build_dir/tiny.qcow2"
    mv "$build_dir/tiny.qcow2" "$final_image"
    log "wrote $final_image ($(stat -c %s "$final_image") bytes)"

    printf '%s\n' "$final_image" >&3
}

build_dir=
remove_build_dir() {
    local status=$?
    if [[ -n $build_dir ]]; then
        rm -rf -- "$build_dir"
        if ((status != 0)); then
            log "error: build failed with exit status $status, removed $build_dir"
        fi
    fi
}
trap remove_build_dir EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

main "$@"
