# `nido umount`: refused while a VM reads its base image through the mount,
# with the VM named; `--stop-vms` stops such VMs first and then unmounts.
source "$(dirname "$0")/lib.sh"
t_setup

serve_tiny_image
mnt="$T_DIR/mnt"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "mount"; t_done; }

# A second daemon on the same state directory is refused, and names the first.
mkdir -p "$T_DIR/mnt2"
timeout 10 "$NIDOFS" -f -o catalog="$T_DIR/catalog.json" "$T_DIR/mnt2" >"$T_DIR/second.out" 2>&1
check "a second mount of the same state fails" test $? -eq 1
check "the refusal names the running daemon" grep -q "is in use by another nidofs (pid and mount point: $NIDOFS_PID $mnt)" "$T_DIR/second.out"
check "the second mount point stays empty" bash -c "! mountpoint -q '$T_DIR/mnt2'"
check "the first mount still works" test -d "$mnt/catalog/tiny"

mkdir "$mnt/vms/u1"
t_wait_for "the boot marker" 60 grep -q NIDO-TINY-IDLE "$mnt/vms/u1/console"
pid=$(cat "$NIDO_HOME/vms/u1/qemu.pid")

"$NIDO" umount >"$T_DIR/out" 2>"$T_DIR/err"
check "umount with a VM on the mount fails" test $? -eq 1
check "umount names the VM that reads through the mount" grep -q 'VM u1 reads its base image through' "$T_DIR/err"
check "the mount is still there" mountpoint -q "$mnt"
check "the VM still runs" kill -0 "$pid"
check "umount --stop-vms succeeds" "$NIDO" umount --stop-vms
check "the VM was stopped" t_wait_gone "$pid" 10
check "the mount is gone" bash -c "! mountpoint -q '$mnt'"
check "the daemon exited" t_wait_gone "$NIDOFS_PID" 10
check "the VM itself is kept" test -d "$NIDO_HOME/vms/u1"
"$NIDO" start u1 >"$T_DIR/out" 2>"$T_DIR/err"
check "nido start with the mount gone fails" test $? -ne 0
check "the error tells how to get the base image back" \
	grep -q "vm u1: base image .* cannot be opened: No such file or directory; if it is read through a nidofs mount, mount it again, else run 'nido image pull tiny:1.0'" "$T_DIR/err"
check "no QEMU was left" bash -c "! test -s '$NIDO_HOME/vms/u1/qemu.pid' || ! kill -0 \$(cat '$NIDO_HOME/vms/u1/qemu.pid')"

# Once the image is fully cached, the next start moves the VM off the mount.
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "remount"; t_done; }
cat "$mnt/catalog/tiny/1.0/disk.qcow2" >/dev/null
t_wait_for "the checksum check" 20 grep -q 'complete, verified' "$mnt/catalog/tiny/1.0/info"
check "nido start after the image is complete" "$NIDO" start u1
check "the overlay now reads the cache file" \
	bash -c "qemu-img info -U '$NIDO_HOME/vms/u1/disk.qcow2' | grep -q 'backing file: $NIDO_HOME/images/sha256-'"
t_wait_for "the boot marker" 60 grep -q NIDO-TINY-BOOT-OK "$mnt/vms/u1/console"
pid=$(cat "$NIDO_HOME/vms/u1/qemu.pid")
check "umount succeeds while that VM runs" "$NIDO" umount
check "the VM runs on without the mount" kill -0 "$pid"
check "nido rm without the mount" "$NIDO" rm u1
check "its QEMU is gone" t_wait_gone "$pid" 10
t_done
