#!/usr/bin/env bash
# Time for `mkdir MOUNT/vms/NAME` to return, BENCH_MKDIR_COUNT times, with the
# tiny image completely cached. The comparison does the same steps by hand:
# qemu-img create of the overlay, a NoCloud seed ISO made by xorriso, and QEMU
# started with -daemonize, which returns once the VM runs. Each VM is removed
# before the next one is made, so that no other guest competes for the CPUs.
set -u
source "$(dirname "$0")/lib.sh"
b_setup

image="$BENCH_DIR/www/tiny.qcow2"
b_start_nginx "$BENCH_DIR/www" || exit 1
b_catalog "$B_TMP/catalog.json" tiny 1 "$B_URL/tiny.qcow2" "$image" qcow2
home="$B_TMP/home"
mnt="$B_TMP/mnt"
B_VM_MEMORY=256 B_VM_CPUS=1 b_new_home "$home"
echo 'image = tiny:1' >>"$home/config"
b_mount_nidofs "$mnt" "$home" "$B_TMP/catalog.json" || exit 1
NIDO_HOME=$home "$NIDO" image pull tiny:1 >/dev/null || { b_log "nido image pull failed"; exit 1; }

for ((i = 1; i <= BENCH_MKDIR_COUNT; i++)); do
	start=$(b_now)
	mkdir "$mnt/vms/m$i" || { b_log "mkdir vms/m$i failed"; exit 1; }
	t=$(b_since "$start")
	start=$(b_now)
	rmdir "$mnt/vms/m$i" || b_log "rmdir vms/m$i failed"
	b_record mkdir nidofs seconds "$t" rmdir_seconds="$(b_since "$start")" rep="$i"
	b_log "mkdir nidofs $i: $t s"
done

# By hand, with the arguments nidofs gives QEMU (vmctl/qemu.c) and the cached image.
base=$(ls "$home"/images/*/disk.qcow2)
port=$(b_free_port)
key=$(ls "$home"/*.pub "$home"/.ssh/*.pub 2>/dev/null | head -1)
for ((i = 1; i <= BENCH_MKDIR_COUNT; i++)); do
	d="$B_TMP/hand$i"
	mkdir -p "$d/seed"
	start=$(b_now)
	qemu-img create -q -f qcow2 -b "$base" -F qcow2 "$d/disk.qcow2" || exit 1
	printf 'instance-id: hand-%s\nlocal-hostname: hand%s\n' "$i" "$i" >"$d/seed/meta-data"
	printf '#cloud-config\nusers:\n  - name: vmuser\n    ssh_authorized_keys:\n      - %s\n' \
		"$(cat "$key" 2>/dev/null || echo ssh-ed25519 AAAA)" >"$d/seed/user-data"
	xorriso -as mkisofs -quiet -V cidata -J -R -o "$d/seed.iso" "$d/seed/user-data" \
		"$d/seed/meta-data" 2>/dev/null || exit 1
	qemu-system-x86_64 -name "hand$i" -machine q35,accel=tcg -cpu max -m 256 -smp 1 \
		-nodefaults -no-user-config -display none \
		-drive "file=$d/disk.qcow2,format=qcow2,if=virtio" \
		-drive "file=$d/seed.iso,format=raw,if=virtio,readonly=on" \
		-netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$port-:22,restrict=on" \
		-device virtio-net-pci,netdev=net0 -device virtio-rng-pci \
		-chardev "file,id=console,path=$d/console.log" -serial chardev:console \
		-chardev "socket,id=qmp,path=$d/qmp.sock,server=on,wait=off" -mon chardev=qmp,mode=control \
		-pidfile "$d/qemu.pid" -daemonize || exit 1
	t=$(b_since "$start")
	b_record mkdir by_hand seconds "$t" rep="$i"
	b_log "mkdir by hand $i: $t s"
	pid=$(cat "$d/qemu.pid")
	kill -9 "$pid" && b_wait_gone "$pid" 10
	rm -rf "$d"
done
