#!/usr/bin/env bash
# The main job on a demo: a test image served by nginx on 127.0.0.1, the
# filesystem mounted, the catalog listed, the image read, a VM booted with
# mkdir and its console shown, then everything removed again.
set -euo pipefail
T_ACCEL=auto
source "$(dirname "$0")/lib.sh"
t_setup
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

echo "The demo image: built from Debian packages on the first run, then cached..."
image=$(tiny_image)
mkdir -p "$T_DIR/www"
cp "$image" "$T_DIR/www/demo.qcow2"
start_nginx "$T_DIR/www" || { not_ok "start nginx"; t_done; }
write_catalog "$T_DIR/catalog.json" demo 1.0 "http://127.0.0.1:$NGINX_PORT/demo.qcow2" \
	"$T_DIR/www/demo.qcow2" latest
echo "image = demo:latest" >>"$NIDO_HOME/config"
mnt="$T_DIR/nido"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"

cd "$mnt"
step "ls -l catalog/demo"
ls -l catalog/demo
step "cat catalog/demo/1.0/info"
cat catalog/demo/1.0/info
step "sha256sum catalog/demo/latest/disk.qcow2    # fetched by range requests, cached"
sha256sum catalog/demo/latest/disk.qcow2
step "grep checksum catalog/demo/1.0/info"
grep checksum catalog/demo/1.0/info
step "du -h catalog/demo/1.0/disk.qcow2"
du -h catalog/demo/1.0/disk.qcow2
step "mkdir vms/demo-vm    # qcow2 overlay, cloud-init seed, QEMU"
mkdir vms/demo-vm
ls vms/demo-vm
t_wait_for "the guest's seed report" 90 grep -q NIDO-HOSTNAME vms/demo-vm/console
step "cat vms/demo-vm/state"
cat vms/demo-vm/state
step "cat vms/demo-vm/console"
tr -d '\r' <vms/demo-vm/console | grep -v '^$' | tail -n 8
step "grep network vms/demo-vm/config    # the guest reaches nothing outside"
grep network vms/demo-vm/config
step "cat vms/demo-vm/ssh    # the command for images with an SSH server (this one has none)"
cat vms/demo-vm/ssh
step "rmdir vms/demo-vm"
rmdir vms/demo-vm
ls vms
cd /
echo
echo "Demo finished: the VM, the mount and the server are gone."
