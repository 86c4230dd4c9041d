# The life of a VM through the mount. mkdir boots it, and ctl stops, starts,
# restarts and kills it. Its config and user-data are edited while it is
# stopped, and the daemon restarts under it while it runs. rm -rf destroys it.
# Eight mkdirs run at once, and invalid names and images leave nothing behind.
source "$(dirname "$0")/lib.sh"
t_setup

# Prints the errno name of a failed write of $2 to file $1 (open, write and
# close, like `echo TEXT > FILE`, but with close checked), or OK.
try_write() {
	python3 - "$1" "$2" <<'PY'
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, sys.argv[2].encode())
    finally:
        os.close(fd)
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
}

# Prints the errno name of a failed mkdir of $1, or OK.
try_mkdir() {
	python3 -c '
import errno, os, sys
try:
    os.mkdir(sys.argv[1]); print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])' "$1"
}

qemu_pid() { cat "$NIDO_HOME/vms/$1/qemu.pid" 2>/dev/null; }
ssh_port() { sed -n 's/^ssh_port = //p' "$NIDO_HOME/vms/$1/config"; }
vm_state() { cut -d' ' -f1 "$mnt/vms/$1/state"; }

# fake_ready NAME: writes the ready file as the watcher does once SSH responds
# (the tiny guest has no SSH server), and reads it through the mount, so that
# the kernel caches its name and attributes.
fake_ready() {
	printf 'ssh: up\ncloud-init: not finished yet\n' >"$NIDO_HOME/vms/$1/ready"
	grep -q '^ssh: up' "$mnt/vms/$1/ready"
}
no_ready() { [ ! -e "$NIDO_HOME/vms/$1/ready" ] && [ ! -e "$mnt/vms/$1/ready" ]; }

# A QEMU counts as gone once it has exited, even before init reaps it.
gone() {
	[ ! -e "/proc/$1" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = Z ]
}

alive() { [ -n "$1" ] && ! gone "$1"; }

# console_has NAME LINE: the VM's console (in the mount) has the whole line.
console_has() { tr -d '\r' <"$mnt/vms/$1/console" | grep -qxF -- "$2"; }

wait_console() { t_wait_for "'$2' on the console of $1" "${3:-90}" console_has "$1" "$2"; }

# Prints the value of the last "KEY value" marker on the console of VM $1.
console_value() { tr -d '\r' <"$mnt/vms/$1/console" | sed -n "s/^$2 //p" | tail -1; }

instance_id() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["instance-id"])' "$mnt/vms/$1/meta-data"
}

# No socket listens on the port, and a new listener can bind it with
# SO_REUSEADDR as QEMU's forward does, so a connection in TIME_WAIT does not count.
port_free() {
	[ -z "$(ss -Hltn "sport = :$1")" ] && python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

# port_served_by PORT PID: PID listens on 127.0.0.1:PORT and a TCP connect succeeds.
port_served_by() {
	ss -Hltnp "sport = :$1" | grep -q "pid=$2," && timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1"
}

# backing_under NAME DIR: the VM's overlay has its base image under DIR.
backing_under() {
	local backing
	backing=$(qemu-img info -U "$NIDO_HOME/vms/$1/disk.qcow2" | sed -n 's/^backing file: //p')
	[[ $backing == "$2"/* ]]
}

# ctl NAME COMMAND: writes the command to the VM's ctl file, as a user would.
ctl() { { echo "$2" >"$mnt/vms/$1/ctl"; } 2>/dev/null; }

# Succeeds when $1 is set and differs from $2.
differs() { [ -n "$1" ] && [ "$1" != "$2" ]; }

all_gone() {
	local p
	for p in "$@"; do
		t_wait_for "QEMU $p to exit" 10 gone "$p" || return 1
	done
}

listed() { ls "$mnt/vms" | grep -qx -- "$1"; }
unlisted() { ! listed "$1"; }

# qemu_arg PID OPTION: prints the argument after OPTION on QEMU's command line.
qemu_arg() { tr '\0' '\n' <"/proc/$1/cmdline" | grep -A1 -x -- "$2" | tail -1; }

image=$(tiny_image) || { not_ok "build the tiny test image"; t_done; }
mkdir -p "$T_DIR/www"
cp "$image" "$T_DIR/www/tiny.qcow2"
start_nginx "$T_DIR/www" || { not_ok "start nginx"; t_done; }
write_catalog "$T_DIR/catalog.json" tiny 1.0 "http://127.0.0.1:$NGINX_PORT/tiny.qcow2" \
	"$T_DIR/www/tiny.qcow2" latest

# Another program listens on the first port of the SSH port range for the whole test.
python3 -c '
import signal, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
signal.pause()' "$T_DIR/held.port" &
T_PIDS+=($!)
t_wait_for "the port holder" 10 test -s "$T_DIR/held.port" || { not_ok "hold a port"; t_done; }
held=$(cat "$T_DIR/held.port")
printf 'image = tiny:latest\nmemory = 256\nport_range = %s-%s\n' "$held" $((held + 40)) >>"$NIDO_HOME/config"

mnt="$T_DIR/mnt"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "mount"; t_done; }

# --- mkdir boots; ctl stop, start, restart, kill ---------------------------
check "mkdir vms/v1 succeeds" mkdir "$mnt/vms/v1"
wait_console v1 NIDO-TINY-IDLE
check "v1: console shows the boot marker" console_has v1 NIDO-TINY-BOOT-OK
check "v1: state is running" test "$(vm_state v1)" = running
pid=$(qemu_pid v1)
check "v1: QEMU runs" alive "$pid"
check "v1: QEMU has restricted networking" grep -qa restrict=on "/proc/$pid/cmdline"
check "v1: reads its base image through the mount" backing_under v1 "$mnt/images"
check "v1: the held port is skipped" test "$(ssh_port v1)" != "$held"
check "v1: start while running fails with EALREADY" test "$(try_write "$mnt/vms/v1/ctl" start)" = EALREADY

check "v1: ready shows through the mount" fake_ready v1
check "v1: ctl stop succeeds" ctl v1 stop
check "v1: ready is gone when the stop returns" no_ready v1
check "v1: stop leaves no QEMU" t_wait_for "QEMU $pid to exit" 10 gone "$pid"
check "v1: state is stopped" test "$(vm_state v1)" = stopped
check "v1: the guest powered off by ACPI" console_has v1 NIDO-TINY-ACPI-POWEROFF

check "v1: ctl start succeeds" ctl v1 start
wait_console v1 NIDO-TINY-IDLE
check "v1: boots again after start" console_has v1 NIDO-TINY-BOOT-OK
old=$pid
pid=$(qemu_pid v1)
check "v1: start runs a new QEMU" differs "$pid" "$old"
check "v1: state is running after start" test "$(vm_state v1)" = running

check "v1: ready shows before the restart" fake_ready v1
check "v1: ctl restart succeeds" ctl v1 restart
check "v1: ready is gone when the restart returns" no_ready v1
check "v1: restart ends the old QEMU" t_wait_for "QEMU $pid to exit" 10 gone "$pid"
check "v1: restart powered the guest off first" \
	bash -c "tr -d '\r' <'$NIDO_HOME/vms/v1/console.log.1' | grep -qx NIDO-TINY-ACPI-POWEROFF"
wait_console v1 NIDO-TINY-IDLE
old=$pid
pid=$(qemu_pid v1)
check "v1: restart runs a new QEMU" differs "$pid" "$old"
check "v1: boots again after restart" console_has v1 NIDO-TINY-BOOT-OK

check "v1: ready shows before the kill" fake_ready v1
check "v1: ctl kill succeeds" ctl v1 kill
check "v1: ready is gone when the kill returns" no_ready v1
check "v1: kill leaves no QEMU" t_wait_for "QEMU $pid to exit" 10 gone "$pid"
check "v1: state is stopped after kill" test "$(vm_state v1)" = stopped
check "v1: kill skips the ACPI power-down" bash -c "! grep -q NIDO-TINY-ACPI-POWEROFF '$mnt/vms/v1/console'"
check "v1: an unknown ctl command fails with EINVAL" test "$(try_write "$mnt/vms/v1/ctl" frobnicate)" = EINVAL
check "v1: an unknown ctl command starts nothing" test "$(vm_state v1)" = stopped

# --- editing config and user-data ------------------------------------------
cp "$NIDO_HOME/vms/v1/config" "$T_DIR/config.before"
check "v1: memory = lots fails with EINVAL" test "$(try_write "$mnt/vms/v1/config" "memory = lots
")" = EINVAL
check "v1: the rejected config is unchanged" cmp "$NIDO_HOME/vms/v1/config" "$T_DIR/config.before"

old_iid=$(instance_id v1)
sed 's/^memory = .*/memory = 300/' "$T_DIR/config.before" >"$T_DIR/config.new"
check "v1: writing memory = 300 while stopped succeeds" test "$(try_write "$mnt/vms/v1/config" "$(cat "$T_DIR/config.new")
")" = OK
check "v1: the config has memory = 300" grep -qx 'memory = 300' "$NIDO_HOME/vms/v1/config"
user_data=$'#cloud-config\n# lifecycle test, edited while stopped\nwrite_files:\n - path: /etc/nido-lifecycle\n   content: edited\n'
check "v1: writing user-data while stopped succeeds" test "$(try_write "$mnt/vms/v1/user-data" "$user_data")" = OK
check "v1: user-data reads back as written" cmp "$mnt/vms/v1/user-data" <(printf '%s' "$user_data")
check "v1: the seed contains the new user-data" grep -qF 'edited while stopped' "$NIDO_HOME/vms/v1/seed/user-data"
new_iid=$(instance_id v1)
check "v1: new user-data gets a new instance-id" differs "$new_iid" "$old_iid"

ctl v1 start
wait_console v1 NIDO-TINY-IDLE
want=$(sha256sum <"$NIDO_HOME/vms/v1/seed/user-data" | cut -d' ' -f1)
check "v1: the guest reads the new user-data" test "$(console_value v1 NIDO-USERDATA-SHA256)" = "$want"
check "v1: the guest gets the new instance-id" test "$(console_value v1 NIDO-INSTANCE-ID)" = "$new_iid"
pid=$(qemu_pid v1)
check "v1: QEMU runs with -m 300" test "$(qemu_arg "$pid" -m)" = 300

cp "$NIDO_HOME/vms/v1/config" "$T_DIR/config.running"
cp "$NIDO_HOME/vms/v1/user-data" "$T_DIR/user-data.running"
check "v1: writing config while running fails with EBUSY" test "$(try_write "$mnt/vms/v1/config" "memory = 512
")" = EBUSY
check "v1: writing user-data while running fails with EBUSY" \
	test "$(try_write "$mnt/vms/v1/user-data" $'#cloud-config\n')" = EBUSY
check "v1: a shell redirection to config fails while running" \
	bash -c "! { echo 'memory = 512' >'$mnt/vms/v1/config'; } 2>/dev/null"
check "v1: config is unchanged while running" cmp "$NIDO_HOME/vms/v1/config" "$T_DIR/config.running"
check "v1: user-data is unchanged while running" cmp "$NIDO_HOME/vms/v1/user-data" "$T_DIR/user-data.running"
check "v1: instance-id is unchanged while running" test "$(instance_id v1)" = "$new_iid"

# --- the daemon restarts under a running VM ---------------------------------
# v1 reads its base image through the mount, so the kernel refuses a plain
# unmount. The daemon unmounts on SIGTERM, and if the mount is still there
# after it exits, the test detaches it.
check "unmount is refused while v1 reads through the mount" bash -c "! fusermount3 -u '$mnt' 2>/dev/null"
kill -TERM "$NIDOFS_PID"
check "SIGTERM ends the daemon" t_wait_gone "$NIDOFS_PID" 15
mountpoint -q "$mnt" && fusermount3 -uz "$mnt"
check "v1: QEMU outlives the daemon" alive "$pid"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"
check "remount after SIGTERM" mountpoint -q "$mnt"
check "v1: listed after the remount" listed v1
check "v1: running after the remount" test "$(vm_state v1)" = running
check "v1: ctl stop works after the remount" ctl v1 stop
check "v1: no QEMU after the stop" t_wait_for "QEMU $pid to exit" 10 gone "$pid"
check "v1: powered off by ACPI after the remount" console_has v1 NIDO-TINY-ACPI-POWEROFF
ctl v1 start
wait_console v1 NIDO-TINY-IDLE
check "v1: boots through the new mount" console_has v1 NIDO-TINY-BOOT-OK

# --- rm -rf destroys --------------------------------------------------------
pid=$(qemu_pid v1)
v1_port=$(ssh_port v1)
check "v1: its port is served by its QEMU" port_served_by "$v1_port" "$pid"
check "rm -rf vms/v1 succeeds on a running VM" rm -rf "$mnt/vms/v1"
check "v1: no QEMU after rm -rf" t_wait_for "QEMU $pid to exit" 10 gone "$pid"
check "v1: no state directory after rm -rf" test ! -e "$NIDO_HOME/vms/v1"
check "v1: not listed after rm -rf" unlisted v1
check "v1: its port is free again" port_free "$v1_port"

# --- the mount goes while a VM runs from the cache ---------------------------
# A VM on a complete, verified image uses the cache file, so the mount can go.
cat "$mnt/catalog/tiny/1.0/disk.qcow2" >/dev/null
t_wait_for "the checksum check" 30 grep -q 'complete, verified' "$mnt/catalog/tiny/1.0/info"
mkdir "$mnt/vms/v2"
check "v2: boots from the cache file" backing_under v2 "$NIDO_HOME/images"
wait_console v2 NIDO-TINY-IDLE
v2_pid=$(qemu_pid v2)
check "unmount succeeds while v2 runs from the cache" umount_nidofs "$mnt"
check "v2: QEMU outlives the unmount" alive "$v2_pid"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"
check "v2: listed after the remount" listed v2
check "v2: running after the remount" test "$(vm_state v2)" = running
check "v2: ctl stop works after the remount" ctl v2 stop
check "v2: no QEMU after the stop" t_wait_for "QEMU $v2_pid to exit" 10 gone "$v2_pid"
check "v2: powered off by ACPI" console_has v2 NIDO-TINY-ACPI-POWEROFF

# --- the guest powers off by itself -----------------------------------------
try_write "$mnt/vms/v2/user-data" $'#cloud-config\nnido-test: poweroff\n' >/dev/null
ctl v2 start
v2_pid=$(qemu_pid v2)
wait_console v2 NIDO-TINY-POWEROFF
check "v2: the guest powers off by itself" console_has v2 NIDO-TINY-POWEROFF
check "v2: QEMU exits with the guest" t_wait_for "QEMU $v2_pid to exit" 15 gone "$v2_pid"
check "v2: state is stopped after the guest's power-off" test "$(vm_state v2)" = stopped
check "v2: ctl stop on a stopped VM succeeds" ctl v2 stop

check "rm -rf vms/v2 succeeds on a stopped VM" rm -rf "$mnt/vms/v2"
check "v2: no state directory after rm -rf" test ! -e "$NIDO_HOME/vms/v2"

# --- eight mkdirs at once ---------------------------------------------------
mkdir_pids=()
for i in 1 2 3 4 5 6 7 8; do
	mkdir "$mnt/vms/p$i" &
	mkdir_pids+=($!)
done
failed=0
for p in "${mkdir_pids[@]}"; do
	wait "$p" || failed=$((failed + 1))
done
check "8 concurrent mkdirs succeed" test "$failed" = 0
check "8 VMs are listed" test "$(ls "$mnt/vms" | grep -c '^p[1-8]$')" = 8
ports=$(for i in 1 2 3 4 5 6 7 8; do ssh_port "p$i"; done)
check "8 VMs have 8 distinct SSH ports" test "$(sort -u <<<"$ports" | grep -c '^[0-9][0-9]*$')" = 8
check "no VM got the held port" bash -c "! grep -qx '$held' <<<'$ports'"
check "the port of the removed v1 is given out again" grep -qx "$v1_port" <<<"$ports"
for i in 1 2 3 4 5 6 7 8; do
	check "p$i: its port accepts TCP and belongs to its QEMU" port_served_by "$(ssh_port "p$i")" "$(qemu_pid "p$i")"
done
pids=$(for i in 1 2 3 4 5 6 7 8; do qemu_pid "p$i"; done)
rm_pids=()
for i in 1 2 3 4 5 6 7 8; do
	rm -rf "$mnt/vms/p$i" &
	rm_pids+=($!)
done
failed=0
for p in "${rm_pids[@]}"; do
	wait "$p" || failed=$((failed + 1))
done
check "8 concurrent rm -rf succeed" test "$failed" = 0
# shellcheck disable=SC2086 # one pid per word
check "8 QEMUs are gone" all_gone $pids
check "vms is empty after the rm -rf" test -z "$(ls "$mnt/vms")"

# --- invalid names and images -----------------------------------------------
long63=$(printf 'a%.0s' $(seq 63))
for name in 'a,b' '-x' "${long63}b"; do
	check "mkdir '$name' fails with EINVAL" test "$(try_mkdir "$mnt/vms/$name")" = EINVAL
	check "mkdir '$name' leaves nothing" test -z "$(ls "$NIDO_HOME/vms")"
done
check "a 63-character name is accepted" test "$(try_mkdir "$mnt/vms/$long63")" = OK
check "rm -rf of the 63-character VM" rm -rf "$mnt/vms/$long63"

sed -i 's/^image = .*/image = nosuch:1.0/' "$NIDO_HOME/config"
check "mkdir with an unknown image fails" test "$(try_mkdir "$mnt/vms/u1")" = ENOENT
check "the failed mkdir leaves no state directory" test ! -e "$NIDO_HOME/vms/u1"
check "the failed mkdir leaves no directory in the mount" test ! -e "$mnt/vms/u1"
check "the failed mkdir is logged" grep -q 'vms/u1: cannot create: image nosuch:1.0' "$NIDOFS_LOG"
sed -i 's/^image = .*/image = tiny:latest/' "$NIDO_HOME/config"
check "a retry with the same name succeeds" mkdir "$mnt/vms/u1"
wait_console u1 NIDO-TINY-IDLE
check "u1: boots after the retry" console_has u1 NIDO-TINY-BOOT-OK

# --- a VM re-created under an old name --------------------------------------
first_iid=$(instance_id u1)
check "u1: the guest sees its instance-id" test "$(console_value u1 NIDO-INSTANCE-ID)" = "$first_iid"
rm -rf "$mnt/vms/u1"
mkdir "$mnt/vms/u1"
second_iid=$(instance_id u1)
check "u1: re-created under the old name gets a new instance-id" differs "$second_iid" "$first_iid"
wait_console u1 NIDO-TINY-IDLE
check "u1: the guest sees the new instance-id" test "$(console_value u1 NIDO-INSTANCE-ID)" = "$second_iid"
rm -rf "$mnt/vms/u1"
check "u1: removed" test ! -e "$NIDO_HOME/vms/u1"
t_done
