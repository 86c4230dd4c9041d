# The main job end to end: mount a catalog served by nginx, list it, read an
# image through the mount (lazily, then from the cache), boot a VM with mkdir
# and destroy it with rmdir.
T_ACCEL=auto
source "$(dirname "$0")/lib.sh"
t_setup

serve_tiny_image latest stable
echo "image = tiny:latest" >>"$NIDO_HOME/config"
mnt="$T_DIR/mnt"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "mount"; t_done; }
ok "mount"

check "ls catalog lists the image" bash -c "ls '$mnt/catalog' | grep -qx tiny"
check "alias is a symlink to its version" test "$(readlink "$mnt/catalog/tiny/latest")" = 1.0
check "image size comes from the catalog" \
	test "$(stat -c %s "$mnt/catalog/tiny/1.0/disk.qcow2")" = "$(stat -c %s "$T_DIR/www/tiny.qcow2")"
check "listing makes no request" test "$(nginx_requests /tiny.qcow2)" = 0
check "info describes the entry" grep -q '^tag: tiny:1.0' "$mnt/catalog/tiny/1.0/info"

check "whole image read through the mount is identical" \
	cmp "$mnt/catalog/tiny/1.0/disk.qcow2" "$T_DIR/www/tiny.qcow2"
first=$(nginx_requests /tiny.qcow2)
check "the read used range requests" grep -q '^GET /tiny.qcow2 206 .*"bytes=' "$NGINX_LOG"
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
check "a second read is identical" cmp "$mnt/catalog/tiny/1.0/disk.qcow2" "$T_DIR/www/tiny.qcow2"
check "a second read makes no request" test "$(nginx_requests /tiny.qcow2)" = "$first"
check "images lists the cached image" bash -c "ls '$mnt/images' | grep -q '^tiny-1.0-.*\.qcow2$'"
check "du shows the cached bytes" test "$(du -k "$mnt/catalog/tiny/1.0/disk.qcow2" | cut -f1)" -gt 0
t_wait_for "the checksum check" 20 grep -q 'verified' "$mnt/catalog/tiny/1.0/info"
check "complete image is verified" grep -q 'complete, verified' "$mnt/catalog/tiny/1.0/info"

mkdir "$mnt/vms/t1"
check "mkdir vms/t1 succeeds" test -d "$NIDO_HOME/vms/t1"
t_wait_for "the boot marker" 60 grep -q NIDO-TINY-BOOT-OK "$mnt/vms/t1/console"
check "console shows the boot marker" grep -q NIDO-TINY-BOOT-OK "$mnt/vms/t1/console"
t_wait_for "the user-data hash" 30 grep -q NIDO-USERDATA-SHA256 "$mnt/vms/t1/console"
want=$(sha256sum <"$mnt/vms/t1/user-data" | cut -d' ' -f1)
check "guest sees the generated user-data" grep -q "NIDO-USERDATA-SHA256 $want" "$mnt/vms/t1/console"
iid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["instance-id"])' "$mnt/vms/t1/meta-data")
check "guest sees the instance-id" grep -q "NIDO-INSTANCE-ID $iid" "$mnt/vms/t1/console"
check "guest gets the VM name as hostname" grep -q "NIDO-HOSTNAME t1" "$mnt/vms/t1/console"
check "state says running" grep -q '^running' "$mnt/vms/t1/state"
check "ssh file names the forwarded port" grep -q -- '-p [0-9][0-9]* .*vmuser@127.0.0.1' "$mnt/vms/t1/ssh"
check "overlay is backed by the image" bash -c "qemu-img info -U '$NIDO_HOME/vms/t1/disk.qcow2' | grep -q 'backing file format: qcow2'"
pid=$(cat "$NIDO_HOME/vms/t1/qemu.pid")
check "QEMU runs with restricted networking" bash -c "tr '\0' ' ' </proc/$pid/cmdline | grep -q restrict=on"

rmdir "$mnt/vms/t1"
check "rmdir removes the VM directory" test ! -e "$NIDO_HOME/vms/t1"
check "rmdir leaves no QEMU process" t_wait_gone "$pid" 10
check "vms is empty again" test -z "$(ls "$mnt/vms")"

# A fresh state directory: the VM boots while the image is fetched lazily.
umount_nidofs "$mnt"
check "unmount ends the daemon" test ! -e /proc/"$NIDOFS_PID"
export NIDO_HOME="$T_DIR/home2"
mkdir -p "$NIDO_HOME"
printf 'network = restricted\naccel = tcg\nimage = tiny:1.0\n' >"$NIDO_HOME/config"
before=$(nginx_requests /tiny.qcow2)
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"
mkdir "$mnt/vms/lazy"
t_wait_for "the lazy boot marker" 60 grep -q NIDO-TINY-BOOT-OK "$mnt/vms/lazy/console"
check "VM boots from an image that was not downloaded" grep -q NIDO-TINY-BOOT-OK "$mnt/vms/lazy/console"
check "the boot fetched by range" test "$(nginx_requests /tiny.qcow2)" -gt "$before"
echo "# cached after boot: $(du -k "$mnt/catalog/tiny/1.0/disk.qcow2" | cut -f1) KiB of $(($(stat -c %s "$T_DIR/www/tiny.qcow2") / 1024)) KiB"
rmdir "$mnt/vms/lazy"
check "rmdir of the lazy VM" test ! -e "$NIDO_HOME/vms/lazy"
t_done
