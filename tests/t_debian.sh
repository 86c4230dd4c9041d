# A real cloud-init guest (slow, about two minutes): a Debian 12 image built
# from Debian packages, served by nginx, booted lazily through the mount with
# `nido spawn` and its own user-data, then reached with ssh as vmuser.
source "$(dirname "$0")/lib.sh"
t_setup

image=$("$T_ROOT/tests/images/build-debian.sh") || { not_ok "build the Debian test image"; t_done; }
mkdir -p "$T_DIR/www"
ln "$image" "$T_DIR/www/debian.qcow2" 2>/dev/null || cp "$image" "$T_DIR/www/debian.qcow2"
start_nginx "$T_DIR/www" || { not_ok "start nginx"; t_done; }
write_catalog "$T_DIR/catalog.json" debian 12 "http://127.0.0.1:$NGINX_PORT/debian.qcow2" \
	"$T_DIR/www/debian.qcow2" bookworm latest
printf 'image = debian:12\nmemory = 1024\ncpus = 2\n' >>"$NIDO_HOME/config"
mnt="$T_DIR/mnt"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "mount"; t_done; }

cat >"$T_DIR/user-data" <<'UD'
#cloud-config
users:
  - name: alice
    shell: /bin/bash
runcmd:
  - [ sh, -c, "echo from-user-data > /tmp/runcmd-ran" ]
UD
check "nido spawn with its own user-data" \
	"$NIDO" spawn deb1 --image debian:bookworm --user-data "$T_DIR/user-data"
t_wait_for "the guest's SSH server" 240 test -e "$mnt/vms/deb1/ready"
check "ready appears once SSH answers" grep -q '^ssh: up' "$mnt/vms/deb1/ready"
ssh_deb1() { "$NIDO" ssh deb1 "$@" </dev/null 2>>"$T_DIR/ssh.err"; }
check "ssh as vmuser: hostname is the VM name" test "$(ssh_deb1 hostname)" = deb1
check "ssh as vmuser: the user is vmuser" test "$(ssh_deb1 id -un)" = vmuser
ssh_deb1 cloud-init status --wait >/dev/null
check "the user-data runcmd ran" test "$(ssh_deb1 cat /tmp/runcmd-ran)" = from-user-data
check "the user-data's own user exists too" ssh_deb1 id alice
check "vmuser may use sudo without a password" test "$(ssh_deb1 sudo -n id -u)" = 0
check "no password is set for vmuser" bash -c "'$NIDO' ssh deb1 sudo -n passwd -S vmuser </dev/null | grep -q ' L '"
t_wait_for "cloud-init's note in ready" 60 grep -q 'cloud-init: done' "$mnt/vms/deb1/ready"
check "ready says cloud-init finished" grep -q 'cloud-init: done' "$mnt/vms/deb1/ready"
check "the guest cannot reach outside (restricted network)" \
	bash -c "! '$NIDO' ssh deb1 'timeout 5 bash -c \"exec 3<>/dev/tcp/10.0.2.2/$NGINX_PORT\"' </dev/null 2>/dev/null"
pid=$(cat "$NIDO_HOME/vms/deb1/qemu.pid")
check "nido rm removes the VM" "$NIDO" rm deb1
check "its QEMU is gone" t_wait_gone "$pid" 20

mkdir "$mnt/vms/deb2"
t_wait_for "SSH of the VM made by mkdir" 240 test -e "$mnt/vms/deb2/ready"
check "mkdir VM: ssh works and hostname is right" test "$("$NIDO" ssh deb2 hostname </dev/null 2>/dev/null)" = deb2
rmdir "$mnt/vms/deb2"
check "rmdir removes the VM" test ! -e "$NIDO_HOME/vms/deb2"
echo "# cached after two boots: $(du -k "$mnt/catalog/debian/12/disk.qcow2" | cut -f1) KiB of $(($(stat -c %s "$T_DIR/www/debian.qcow2") / 1024)) KiB"
t_done
