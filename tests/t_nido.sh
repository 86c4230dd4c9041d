# The nido command on the daemon's state directory: image list, info and
# update, config, spawn with and without a mount, ls, info, stop, start, rm,
# and exit status with a one-line message for each kind of error.
source "$(dirname "$0")/lib.sh"
t_setup

# nido_run ARGS...: runs nido with stdin from /dev/null, stdout into
# $T_DIR/out and stderr into $T_DIR/err, and sets $status.
nido_run() {
	"$NIDO" "$@" </dev/null >"$T_DIR/out" 2>"$T_DIR/err"
	status=$?
}

one_line_message() { [ "$(wc -l <"$T_DIR/err")" = 1 ] && grep -q '^nido: ' "$T_DIR/err"; }

# expect_error WHAT ARGS...: nido ARGS exits non-zero with one line on stderr.
expect_error() {
	local what=$1
	shift
	nido_run "$@"
	check "$what: exit status is non-zero" test "$status" -ne 0
	check "$what: one-line message on stderr" one_line_message
}

json_ok() { python3 -m json.tool "$T_DIR/out" >/dev/null; }

# json_get EXPRESSION: evaluates a Python expression on the JSON output `d`.
json_get() { python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T_DIR/out" "$1"; }

vmdir() { echo "$NIDO_HOME/vms/$1"; }
qemu_pid() { cat "$(vmdir "$1")/qemu.pid" 2>/dev/null; }
gone() {
	[ ! -e "/proc/$1" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = Z ]
}
alive() { [ -n "$1" ] && ! gone "$1"; }
console_has() { tr -d '\r' <"$(vmdir "$1")/console.log" | grep -qxF -- "$2"; }
wait_console() { t_wait_for "'$2' on the console of $1" "${3:-90}" console_has "$1" "$2"; }
console_value() { tr -d '\r' <"$(vmdir "$1")/console.log" | sed -n "s/^$2 //p" | tail -1; }
qemu_arg() { tr '\0' '\n' <"/proc/$1/cmdline" | grep -A1 -x -- "$2" | tail -1; }
backing_under() {
	local backing
	backing=$(qemu-img info -U "$(vmdir "$1")/disk.qcow2" | sed -n 's/^backing file: //p')
	[[ $backing == "$2"/* ]]
}
differs() { [ -n "$1" ] && [ "$1" != "$2" ]; }

image=$(tiny_image) || { not_ok "build the tiny test image"; t_done; }
www="$T_DIR/www"
mkdir -p "$www"
cp "$image" "$www/tiny.qcow2"
start_nginx "$www" || { not_ok "start nginx"; t_done; }
url="http://127.0.0.1:$NGINX_PORT"

# The catalog has two registries. The "nido" one comes first in the file,
# but the listing shows OFFICIAL first.
write_catalog "$www/catalog.json" tiny 1.0 "$url/tiny.qcow2" "$www/tiny.qcow2" latest
python3 - "$www/catalog.json" <<'PY'
import copy, json, sys
doc = json.load(open(sys.argv[1]))
extra = copy.deepcopy(doc["images"][0])
extra.update(name="tiny2", registry="nido", description="second test image")
extra["versions"][0].update(version="2.0", aliases=["edge"])
doc["images"].insert(0, extra)
json.dump(doc, open(sys.argv[1], "w"), indent=2)
PY
head -c 200 "$www/catalog.json" >"$www/broken.json"
echo '{"schema_version": "1", "updated_at": "2026-12-01T00:00:00Z", "images": []}' >"$www/empty.json"

port=$(t_free_port)
printf 'memory = 256\nport_range = %s-%s\n' "$port" $((port + 20)) >>"$NIDO_HOME/config"

# --- nido image update -------------------------------------------------------
nido_run image update "$url/catalog.json"
check "image update: exit status 0" test "$status" = 0
check "image update: reports the count" grep -q '^catalog updated: 2 images' "$T_DIR/out"
check "image update: installs the catalog" cmp "$NIDO_HOME/catalog.json" "$www/catalog.json"
expect_error "image update with broken JSON" image update "$url/broken.json"
check "image update with broken JSON: catalog unchanged" cmp "$NIDO_HOME/catalog.json" "$www/catalog.json"
expect_error "image update with no images" image update "$url/empty.json"
check "image update with no images: catalog unchanged" cmp "$NIDO_HOME/catalog.json" "$www/catalog.json"
expect_error "image update of a missing URL" image update "$url/missing.json"
check "image update of a missing URL: catalog unchanged" cmp "$NIDO_HOME/catalog.json" "$www/catalog.json"

# A source that is neither an http or https URL nor an existing file is
# rejected before any network traffic: no name in it becomes a host lookup.
not_a_source="not an http or https URL and no such file"
cd "$T_DIR" || exit 1
expect_error "image update of a bare missing name" image update mycat.json
check "image update of a bare missing name: names the cause" \
	grep -qxF "nido: image update: mycat.json: $not_a_source" "$T_DIR/err"
check "image update of a bare missing name: catalog unchanged" cmp "$NIDO_HOME/catalog.json" "$www/catalog.json"
expect_error "image update of a file:// URL" image update "file://$www/catalog.json"
check "image update of a file:// URL: names the cause" grep -qF "$not_a_source" "$T_DIR/err"
check "image update of a file:// URL: catalog unchanged" cmp "$NIDO_HOME/catalog.json" "$www/catalog.json"
expect_error "image update of an ftp:// URL" image update "ftp://127.0.0.1:$NGINX_PORT/catalog.json"
check "image update of an ftp:// URL: names the cause" grep -qF "$not_a_source" "$T_DIR/err"

# strace_update SOURCE: runs `nido image update SOURCE` under strace and
# prints the connect and sendto calls it made. LeakSanitizer cannot run under
# ptrace (make check-asan), so leak checking is off for this run only.
strace_update() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -qq -e trace=connect,sendto -o "$T_DIR/strace.log" \
		"$NIDO" image update "$1" </dev/null >/dev/null 2>&1
	grep -E 'connect\(|sendto\(' "$T_DIR/strace.log"
}
connects_to_loopback() { strace_update "$1" | grep -q 'inet_addr("127.0.0.1")'; }
if command -v strace >/dev/null; then
	# A real update shows that strace records the connections nido makes.
	check "strace records an http update's connection" connects_to_loopback "$url/catalog.json"
	check "image update of a bare missing name: no connection and no DNS query" \
		test -z "$(strace_update mycat.json)"
else
	echo "# strace is not installed: the no-connection check is skipped"
fi

# A local file is read as `nidofs -o catalog=FILE` reads it.
write_catalog "$T_DIR/local.json" tiny3 3.0 "$url/tiny.qcow2" "$www/tiny.qcow2" stable
nido_run image update local.json
check "image update of a local file: exit status 0" test "$status" = 0
check "image update of a local file: installs the catalog" cmp "$NIDO_HOME/catalog.json" "$T_DIR/local.json"
nido_run image list
check "image update of a local file: image list shows its entry" grep -Eq '^  tiny3:3\.0 +\(stable\)' "$T_DIR/out"
cd "$OLDPWD" || exit 1
nido_run image update "$url/catalog.json"
check "image update back to the http catalog" cmp "$NIDO_HOME/catalog.json" "$www/catalog.json"

# --- nido image list and info ------------------------------------------------
nido_run image list
check "image list: exit status 0" test "$status" = 0
check "image list: OFFICIAL: comes first" test "$(sed -n 1p "$T_DIR/out")" = "OFFICIAL:"
check "image list: the official image line" grep -Eq '^  tiny:1\.0 +\(latest\) +10 MB$' <(sed -n 2p "$T_DIR/out")
check "image list: NIDO: comes next" test "$(sed -n 3p "$T_DIR/out")" = "NIDO:"
check "image list: the nido image line" grep -Eq '^  tiny2:2\.0 +\(edge\) +10 MB$' <(sed -n 4p "$T_DIR/out")
check "image list: nothing else" test "$(wc -l <"$T_DIR/out")" = 4
nido_run image list --json
check "image list --json: exit status 0" test "$status" = 0
check "image list --json: parses" json_ok
check "image list --json: lists both tags" test "$(json_get 'sorted(v["tag"] for v in d)')" = "['tiny2:2.0', 'tiny:1.0']"

sha=$(sha256sum <"$www/tiny.qcow2" | cut -d' ' -f1)
nido_run image info tiny:latest
check "image info: exit status 0" test "$status" = 0
check "image info: resolves the alias" grep -qx 'tag: *tiny:1.0' "$T_DIR/out"
check "image info: shows the URL" grep -qx "url: *$url/tiny.qcow2" "$T_DIR/out"
check "image info: shows the checksum" grep -qx "checksum: *sha256:$sha" "$T_DIR/out"
nido_run image info tiny:latest --json
check "image info --json: parses" json_ok
check "image info --json: the tag" test "$(json_get 'd["tag"]')" = tiny:1.0
check "image info --json: not cached yet" test "$(json_get 'd["complete"]')" = False
expect_error "image info of an unknown tag" image info nosuch:1.0

# --- nido config --------------------------------------------------------------
nido_run config
check "config: exit status 0" test "$status" = 0
check "config: shows restricted networking" grep -qx 'network = restricted' "$T_DIR/out"
check "config: the default user is vmuser" grep -qx 'user = vmuser' "$T_DIR/out"
nido_run config user
check "config user: prints vmuser" test "$(cat "$T_DIR/out")" = vmuser
nido_run config memory 512
check "config memory 512: exit status 0" test "$status" = 0
check "config memory 512: written to the file" grep -qx 'memory = 512' "$NIDO_HOME/config"
check "config memory 512: keeps restricted networking" grep -qx 'network = restricted' "$NIDO_HOME/config"
nido_run config memory
check "config memory: prints 512" test "$(cat "$T_DIR/out")" = 512
cp "$NIDO_HOME/config" "$T_DIR/config.before"
expect_error "config memory lots" config memory lots
check "config memory lots: the file is unchanged" cmp "$NIDO_HOME/config" "$T_DIR/config.before"
expect_error "config of an unknown key" config nosuchkey
nido_run config --json
check "config --json: parses" json_ok
check "config --json: memory is 512" test "$(json_get 'd["memory"]')" = 512
image_before=$("$NIDO" config image)
nido_run config image nosuch:1
check "config image nosuch:1: exit status 0" test "$status" = 0
check "config image nosuch:1: warns it is not in the catalog" grep -q "warning: image nosuch:1 is not in the catalog" "$T_DIR/err"
nido_run config image tiny:latest
check "config image of a known tag: no warning" test ! -s "$T_DIR/err"
"$NIDO" config image "$image_before" 2>/dev/null

# --- nido spawn with the mount running ---------------------------------------
mnt="$T_DIR/mnt"
mount_nidofs "$mnt" || { not_ok "mount"; t_done; }
ssh-keygen -q -t ed25519 -N '' -C nido-test-key -f "$T_DIR/key"
printf '#cloud-config\n# the user part of the nido spawn test\nruncmd:\n - echo spawned\n' >"$T_DIR/user-data"
nido_run spawn s1 --image tiny:latest --user-data "$T_DIR/user-data" --memory 300 --ssh-key "$T_DIR/key.pub"
check "spawn: exit status 0" test "$status" = 0
check "spawn: creates the VM" test -d "$(vmdir s1)"
check "spawn: reads the image through the mount" backing_under s1 "$mnt/images"
wait_console s1 NIDO-TINY-IDLE
check "spawn: the VM boots" console_has s1 NIDO-TINY-BOOT-OK
seed="$(vmdir s1)/seed/user-data"
check "spawn: the guest reads the seed's user-data" \
	test "$(console_value s1 NIDO-USERDATA-SHA256)" = "$(sha256sum <"$seed" | cut -d' ' -f1)"
check "spawn: the seed is multipart" grep -q '^Content-Type: multipart/mixed' "$seed"
check "spawn: the seed creates vmuser" grep -qF '"name":"vmuser"' "$seed"
check "spawn: the seed has the --ssh-key key" grep -qF "$(cut -d' ' -f2 "$T_DIR/key.pub")" "$seed"
check "spawn: the seed has the user's part" grep -qF '# the user part of the nido spawn test' "$seed"
check "spawn: default part before the user's part" \
	test "$(grep -n -m1 vmuser "$seed" | cut -d: -f1)" -lt "$(grep -n -m1 'the user part' "$seed" | cut -d: -f1)"
pid=$(qemu_pid s1)
check "spawn: QEMU runs with -m 300" test "$(qemu_arg "$pid" -m)" = 300
check "spawn: QEMU has restricted networking" grep -qa restrict=on "/proc/$pid/cmdline"
check "spawn: the mount lists the VM" bash -c "ls '$mnt/vms' | grep -qx s1"
check "spawn: the mount shows it running" grep -q '^running' "$mnt/vms/s1/state"
expect_error "spawn of an existing VM" spawn s1 --image tiny:latest
check "spawn of an existing VM: names the VM once" bash -c "[ \$(grep -o 'vm s1' '$T_DIR/err' | wc -l) = 1 ]"
check "spawn of an existing VM: the VM keeps running" test "$(qemu_pid s1)" = "$pid"

nido_run ls
check "ls: exit status 0" test "$status" = 0
check "ls: lists s1 running" grep -Eq '^s1 +tiny:latest +[0-9]+ +running' "$T_DIR/out"
nido_run ls --json
check "ls --json: parses" json_ok
check "ls --json: s1 is running" test "$(json_get '[v["state"] for v in d if v["name"] == "s1"]')" = "['running']"
check "ls --json: s1's QEMU pid" test "$(json_get '[v["pid"] for v in d if v["name"] == "s1"][0]')" = "$pid"
check "ls --json: s1's SSH port" \
	test "$(json_get '[v["ssh_port"] for v in d if v["name"] == "s1"][0]')" = "$(sed -n 's/^ssh_port = //p' "$(vmdir s1)/config")"
nido_run info s1
check "info: exit status 0" test "$status" = 0
check "info: state running" grep -qx 'state: *running' "$T_DIR/out"
check "info: the image" grep -qx 'image: *tiny:latest' "$T_DIR/out"
nido_run info s1 --json
check "info --json: parses" json_ok
check "info --json: the name" test "$(json_get 'd["name"]')" = s1

nido_run stop s1
check "stop: exit status 0" test "$status" = 0
check "stop: QEMU is gone" t_wait_for "QEMU $pid to exit" 10 gone "$pid"
check "stop: the guest powered off by ACPI" console_has s1 NIDO-TINY-ACPI-POWEROFF
nido_run info s1
check "stop: info says stopped" grep -qx 'state: *stopped' "$T_DIR/out"
check "stop: the mount says stopped" grep -q '^stopped' "$mnt/vms/s1/state"
started=$SECONDS
expect_error "ssh to a stopped VM" ssh s1 true
check "ssh to a stopped VM: names the VM and its state" \
	grep -qxF "nido: vm s1: not running (state: stopped); start it with 'nido start s1'" "$T_DIR/err"
check "ssh to a stopped VM: fails at once" test $((SECONDS - started)) -lt 10
nido_run start s1
check "start: exit status 0" test "$status" = 0
old=$pid
pid=$(qemu_pid s1)
check "start: a new QEMU runs" differs "$pid" "$old"
check "start: QEMU is alive" alive "$pid"
wait_console s1 NIDO-TINY-IDLE
check "start: the VM boots again" console_has s1 NIDO-TINY-BOOT-OK
expect_error "start while running" start s1
check "start while running: names the VM once" bash -c "[ \$(grep -o 'vm s1' '$T_DIR/err' | wc -l) = 1 ]"
nido_run rm s1
check "rm: exit status 0" test "$status" = 0
check "rm: QEMU is gone" t_wait_for "QEMU $pid to exit" 10 gone "$pid"
check "rm: the VM directory is gone" test ! -e "$(vmdir s1)"
check "rm: the mount no longer lists it" bash -c "! ls '$mnt/vms' | grep -qx s1"
nido_run ls --json
check "rm: ls --json is empty" test "$(json_get 'len(d)')" = 0

# --- errors -------------------------------------------------------------------
expect_error "unknown command" frobnicate
expect_error "unknown image subcommand" image frobnicate
expect_error "info of an unknown VM" info nosuch
expect_error "stop of an unknown VM" stop nosuch
expect_error "rm of an unknown VM" rm nosuch
expect_error "ssh to an unknown VM" ssh nosuch
expect_error "spawn with a bad name" spawn 'a,b' --image tiny:latest
expect_error "spawn with a name starting with -" spawn -x --image tiny:latest
expect_error "spawn with --memory twice" spawn x1 --image tiny:latest --memory 300 --memory 400
expect_error "spawn with --yes twice" spawn x1 --image tiny:latest --yes --yes
expect_error "spawn without a flag value" spawn x1 --image
expect_error "spawn with an invalid memory" spawn x1 --image tiny:latest --memory lots
expect_error "spawn of an unknown image" spawn x1 --image nosuch:1.0
expect_error "ls with --json twice" ls --json --json
check "the failed spawns create nothing" test -z "$(ls "$NIDO_HOME/vms")"

# --- nido spawn without a mount -----------------------------------------------
if umount_nidofs "$mnt"; then
	ok "unmount before spawning without a mount"
else
	not_ok "unmount before spawning without a mount"
	echo "# open in the mount: $(ls -l /proc/[0-9]*/fd 2>/dev/null | grep -F "$mnt/" | tr '\n' ' ')"
fi
check "no mount is recorded after the unmount" test ! -e "$NIDO_HOME/mount"
requests=$(nginx_requests /tiny.qcow2)
expect_error "spawn of an image not cached, no terminal, no --yes" spawn n1 --image tiny:latest
check "spawn without --yes: the message names --yes" grep -q -- '--yes' "$T_DIR/err"
check "spawn without --yes: no VM directory" test ! -e "$(vmdir n1)"
check "spawn without --yes: no download" test "$(nginx_requests /tiny.qcow2)" = "$requests"

nido_run spawn n1 --image tiny:latest --yes
check "spawn --yes: exit status 0" test "$status" = 0
check "spawn --yes: no progress without a terminal" bash -c "! grep -q '%' '$T_DIR/err'"
check "spawn --yes: the image was downloaded" test "$(nginx_requests /tiny.qcow2)" -gt "$requests"
check "spawn --yes: boots from the cache" backing_under n1 "$NIDO_HOME/images"
nido_run image info tiny:latest --json
check "spawn --yes: the image is complete" test "$(json_get 'd["complete"]')" = True
wait_console n1 NIDO-TINY-BOOT-OK
check "spawn --yes: the VM boots" console_has n1 NIDO-TINY-BOOT-OK
expect_error "image rm of an image in use" image rm tiny:latest
nido_run rm n1
check "rm n1: exit status 0" test "$status" = 0

nido_run image rm tiny:latest
check "image rm: exit status 0" test "$status" = 0
nido_run image info tiny:latest --json
check "image rm: the image is no longer complete" test "$(json_get 'd["complete"]')" = False
# On a terminal the pull draws its progress.
script -qec "'$NIDO' spawn n2 --image tiny:latest --yes" /dev/null </dev/null >"$T_DIR/tty.out" 2>&1
status=$?
check "spawn --yes on a terminal: exit status 0" test "$status" = 0
check "spawn --yes on a terminal: shows progress" grep -q '100%' "$T_DIR/tty.out"
check "spawn --yes on a terminal: creates the VM" test -d "$(vmdir n2)"
nido_run rm n2
check "rm n2: exit status 0" test "$status" = 0
check "rm n2: the VM directory is gone" test ! -e "$(vmdir n2)"
t_done
