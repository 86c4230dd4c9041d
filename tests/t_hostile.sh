# Hostile input from the product's own sources, case by case: VM names given
# to mkdir and to nido, catalog entries, images that QEMU must never open,
# configuration values and user-data. Each case checks the exact rejection
# and that nothing was created, started or read. The state directory and the
# mount point contain a comma, and one VM boots there to show that the comma
# reaches QEMU only escaped.
source "$(dirname "$0")/lib.sh"
t_setup

# Prints the errno name of a failed mkdir or rmdir of $2, or OK.
try_dir() {
	python3 -c '
import errno, os, sys
try:
    getattr(os, sys.argv[1])(sys.argv[2]); print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])' "$1" "$2"
}

# try_append FILE DATA_FILE [CHUNK]: appends the bytes of DATA_FILE to FILE,
# in writes of CHUNK bytes (default: one write), stops at the first failed
# write and closes the file, like `cat DATA >> FILE` with close checked.
# Prints the errno name of the first failure, or OK.
try_append() {
	python3 - "$1" "$2" "${3:-0}" <<'PY'
import errno, os, sys
data = open(sys.argv[2], "rb").read()
chunk = int(sys.argv[3]) or len(data)
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
    try:
        for off in range(0, len(data), chunk):
            os.write(fd, data[off:off + chunk])
    finally:
        os.close(fd)
    print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
}

# nido_run ARGS...: runs nido with stdout and stderr in $T_DIR/out and
# $T_DIR/err; sets $status.
nido_run() {
	"$NIDO" "$@" </dev/null >"$T_DIR/out" 2>"$T_DIR/err"
	status=$?
}

# Prints the PIDs of processes whose command line mentions this test's
# directory (a QEMU or qemu-img of a VM), other than the servers, the daemon
# and inotifywait that the test started itself.
vm_processes() {
	local p
	for p in /proc/[0-9]*; do
		case " ${T_PIDS[*]} $INOTIFY_PID " in *" ${p#/proc/} "*) continue ;; esac
		tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$T_DIR" && echo "${p#/proc/}"
	done
}

no_vm_processes() { test -z "$(vm_processes)"; }
no_vms() { test -z "$(ls -A "$NIDO_HOME/vms" 2>/dev/null)"; }
daemon_log_has() { grep -qxF -- "nidofs: warning: $1" "$NIDOFS_LOG"; }

# The state directory and the mount point both contain a comma.
comma_dir="$T_DIR/x,y"
mkdir -p "$comma_dir/home"
mv "$NIDO_HOME/config" "$comma_dir/home/config"
export NIDO_HOME="$comma_dir/home"
mnt="$comma_dir/mnt"

image=$(tiny_image) || { not_ok "build the tiny test image"; t_done; }
www="$T_DIR/www"
mkdir -p "$www"
cp "$image" "$www/tiny.qcow2"

# --- images that QEMU must never open ----------------------------------------
# The backing file and the data file are files of this test, watched with
# inotify so that any open or read of them shows.
secret="$T_DIR/secret.raw"
datafile="$T_DIR/data.raw"
head -c 65536 /dev/zero >"$secret"
truncate -s 1M "$datafile"
qemu-img create -q -f qcow2 -b "$secret" -F raw "$www/backing.qcow2" 1M
qemu-img create -q -f qcow2 -o data_file="$datafile" "$www/datafile.qcow2" 1M
qemu-img create -q -f qcow2 --object secret,id=sec0,data=nido-test \
	-o encrypt.format=aes,encrypt.key-secret=sec0 "$www/aes.qcow2" 1M
# qemu-img cannot create LUKS inside qcow2 on some machines ("Unable to get
# accurate CPU usage" while timing the key derivation); the case is skipped then.
qemu-img create -q -f qcow2 --object secret,id=sec0,data=nido-test \
	-o encrypt.format=luks,encrypt.key-secret=sec0 "$www/luks.qcow2" 1M \
	2>"$T_DIR/luks.err" || rm -f "$www/luks.qcow2"
head -c 1048576 /dev/zero >"$www/raw.img"
cp "$www/tiny.qcow2" "$www/tiny-as-raw.img"

check "inspect cases: the backing image names the secret file" \
	bash -c "qemu-img info -U '$www/backing.qcow2' | grep -qF 'backing file: $secret'"
check "inspect cases: the data file image names its data file" \
	bash -c "qemu-img info -U '$www/datafile.qcow2' | grep -qF 'data file: $datafile'"
check "inspect cases: the aes image is encrypted" \
	bash -c "qemu-img info -U '$www/aes.qcow2' | grep -q 'encrypted: yes'"

start_nginx "$www" || { not_ok "start nginx"; t_done; }
url="http://127.0.0.1:$NGINX_PORT"

# --- catalogs ----------------------------------------------------------------
# The script below writes $T_DIR/cases/NN.json (the good image plus one hostile
# case), NN.expect (the exact problem message, or nothing for a case that is
# not a rejection) and NN.name, and $T_DIR/catalog.json with all of them.
mkdir -p "$T_DIR/cases"
python3 - "$T_DIR" "$url" "$www" <<'PY'
import copy, hashlib, json, os, sys

tdir, url, www = sys.argv[1:]

def entry(version, path="tiny.qcow2", fmt="qcow2", **fields):
    data = open(os.path.join(www, path), "rb").read()
    e = {"version": version, "aliases": [], "arch": "amd64", "url": f"{url}/{path}",
         "checksum_type": "sha256", "checksum": hashlib.sha256(data).hexdigest(),
         "size_bytes": len(data), "format": fmt}
    e.update(fields)
    return e

def image(name, versions, **fields):
    img = {"name": name, "registry": "official", "description": "test image",
           "homepage": "http://127.0.0.1/", "versions": versions}
    img.update(fields)
    return img

good = image("tiny", [entry("1.0", aliases=["stable"]), entry("2.0", aliases=["latest"])])
bad_version = "invalid version: use 1-64 of [A-Za-z0-9._+-], not starting with '.' or '-'"
wrong_type = "a field has the wrong type or size_bytes is out of range"
bad_url = "invalid url: expected an http or https URL"
bad_name = "entry rejected: missing or invalid name"
# json.dump writes a NUL in a string as \u0000; cJSON would end the string there.
nul = "a string or member name contains a NUL character (\\u0000)"

# (name, change, expected message). A change is ("version", entry) for one
# more version of tiny, ("image", image) for one more image, or ("alias",
# alias) for one more alias of tiny:1.0. ("description", text) sets the
# description of tiny, and ("arch", text) the arch of tiny:2.0.
cases = [
    ("version ..", ("version", entry("..")), f"tiny:..: entry rejected: {bad_version}"),
    ("version with a slash", ("version", entry("a/b")), f"tiny:a/b: entry rejected: {bad_version}"),
    ("version with a newline", ("version", entry("3\nrefused for VMs: forged")),
     f"tiny:3\\x0arefused for VMs: forged: entry rejected: {bad_version}"),
    ("version with an escape", ("version", entry("\x1b[31m")), f"tiny:\\x1b[31m: entry rejected: {bad_version}"),
    ("empty version", ("version", entry("")), f"tiny:: entry rejected: {bad_version}"),
    ("version of 65 characters", ("version", entry("v" * 65)), f"tiny:{'v' * 65}: entry rejected: {bad_version}"),
    ("version with a leading -", ("version", entry("-5")), f"tiny:-5: entry rejected: {bad_version}"),
    ("version as a number", ("version", entry(6)), f"tiny:?: entry rejected: {wrong_type}"),
    ("version not an object", ("version", "7"), "tiny:?: entry rejected: not an object"),
    ("version with a NUL", ("version", entry("3\0/../../x")), f"tiny:3: entry rejected: {nul}"),
    ("member name with a NUL", ("version", entry("n1", **{"url\0x": "file:///etc/passwd"})),
     f"tiny:n1: entry rejected: {nul}"),
    ("checksum with a NUL", ("version", entry("n2", checksum="0" * 64 + "\0")), f"tiny:n2: entry rejected: {nul}"),
    ("alias with a NUL", ("version", entry("n3", aliases=["ok\0../x"])), f"tiny:n3: entry rejected: {nul}"),
    ("duplicate tag", ("version", entry("1.0")), "tiny:1.0: entry rejected: duplicate version"),
    ("size 1e30", ("version", entry("s1", size_bytes=1e30)), f"tiny:s1: entry rejected: {wrong_type}"),
    ("size 17 TiB", ("version", entry("s2", size_bytes=17 << 40)), f"tiny:s2: entry rejected: {wrong_type}"),
    ("size -1", ("version", entry("s3", size_bytes=-1)), f"tiny:s3: entry rejected: {wrong_type}"),
    ("size 1.5", ("version", entry("s4", size_bytes=1.5)), f"tiny:s4: entry rejected: {wrong_type}"),
    ("size as a string", ("version", entry("s5", size_bytes="1024")), f"tiny:s5: entry rejected: {wrong_type}"),
    ("size missing", ("version", entry("s6", size_bytes=None)), "tiny:s6: entry rejected: missing size_bytes"),
    ("checksum of 63 digits", ("version", entry("c1", checksum="a" * 63)),
     "tiny:c1: entry rejected: invalid checksum: expected 64 hex digits for sha256"),
    ("checksum not hex", ("version", entry("c2", checksum="z" * 64)),
     "tiny:c2: entry rejected: invalid checksum: expected 64 hex digits for sha256"),
    ("sha512 of 64 digits", ("version", entry("c3", checksum_type="sha512")),
     "tiny:c3: entry rejected: invalid checksum: expected 128 hex digits for sha512"),
    ("checksum type md5", ("version", entry("c4", checksum_type="md5")),
     "tiny:c4: entry rejected: invalid checksum_type: expected sha256, sha512 or empty"),
    ("checksum without type", ("version", entry("c5", checksum_type="")),
     "tiny:c5: entry rejected: checksum given without checksum_type"),
    ("url file:", ("version", entry("u1", url="file:///etc/passwd")), f"tiny:u1: entry rejected: {bad_url}"),
    ("url ftp:", ("version", entry("u2", url="ftp://127.0.0.1/tiny.qcow2")), f"tiny:u2: entry rejected: {bad_url}"),
    ("url gopher:", ("version", entry("u3", url="gopher://127.0.0.1/")), f"tiny:u3: entry rejected: {bad_url}"),
    ("url data:", ("version", entry("u4", url="data:,QFI")), f"tiny:u4: entry rejected: {bad_url}"),
    ("url with a space", ("version", entry("u5", url=f"{url}/a b.qcow2")), f"tiny:u5: entry rejected: {bad_url}"),
    ("url empty", ("version", entry("u6", url="")), f"tiny:u6: entry rejected: {bad_url}"),
    ("part url file:", ("version", entry("u7", part_urls=["file:///etc/passwd"])),
     "tiny:u7: entry rejected: invalid part_urls entry: expected an http or https URL"),
    ("url with a newline beside part_urls",
     ("version", entry("u8", url="http://a/\nrefused for VMs: forged", part_urls=[f"{url}/tiny.qcow2"])),
     f"tiny:u8: entry rejected: {bad_url}"),
    ("format vmdk", ("version", entry("f1", fmt="vmdk")), "tiny:f1: entry rejected: invalid format: expected qcow2 or raw"),
    ("image ..", ("image", image("..", [entry("1")])), f"image ..: {bad_name}"),
    ("image with a slash", ("image", image("a/b", [entry("1")])), f"image a/b: {bad_name}"),
    ("image with a bell", ("image", image("x\x07", [entry("1")])), f"image x\\x07: {bad_name}"),
    ("image with a newline", ("image", image("y\nnidofs: info: forged", [entry("1")])),
     f"image y\\x0anidofs: info: forged: {bad_name}"),
    ("empty image name", ("image", image("", [entry("1")])), f"image ?: {bad_name}"),
    ("image with a NUL", ("image", image("abc\0../x", [entry("1")])), f"image abc: entry rejected: {nul}"),
    ("description with a NUL", ("image", image("d", [entry("1")], description="a\0b")),
     f"image d: entry rejected: {nul}"),
    ("image not an object", ("image", "tiny"), "image ?: entry rejected: not an object"),
    ("image field of a wrong type", ("image", image("w", [entry("1")], homepage=1)),
     "image w: entry rejected: a field has the wrong type"),
    ("duplicate image", ("image", image("tiny", [entry("9")])), "image tiny: entry rejected: duplicate image name"),
    ("versions not a list", ("image", image("nolist", {"version": "1"})),
     "image nolist: entry rejected: versions is not a list of at most 1024 entries"),
    ("alias ../x", ("alias", "../x"), "tiny:1.0: alias rejected: invalid name '../x'"),
    ("alias with a newline", ("alias", "a\nrefused for VMs: forged"),
     "tiny:1.0: alias rejected: invalid name 'a\\x0arefused for VMs: forged'"),
    ("alias with a slash", ("alias", "x/y"), "tiny:1.0: alias rejected: invalid name 'x/y'"),
    ("alias claimed by a higher version", ("alias", "latest"),
     "tiny:1.0: alias 'latest' rejected: also claimed by tiny:2.0, which keeps it"),
    # Not rejections: an alias equal to another version's name is ignored,
    # and control characters in shown text become spaces.
    ("alias equal to another version", ("alias", "2.0"), ""),
    ("description with a newline", ("description", "one\nrefused for VMs: forged"), ""),
    ("arch with a newline", ("arch", "amd64\nrefused for VMs: forged"), ""),
]

def apply(doc, change):
    kind, value = change
    tiny = doc["images"][0]
    if kind == "version":
        tiny["versions"].append(value)
    elif kind == "image":
        doc["images"].append(value)
    elif kind == "alias":
        tiny["versions"][0]["aliases"].append(value)
    elif kind == "description":
        tiny["description"] = value
    elif kind == "arch":
        tiny["versions"][1]["arch"] = value

def document(images):
    return {"schema_version": "1", "updated_at": "2026-12-01T00:00:00Z", "images": images}

bad = image("bad", [entry("backing", "backing.qcow2"), entry("datafile", "datafile.qcow2"),
                    entry("aes", "aes.qcow2"), entry("raw-as-qcow2", "raw.img"),
                    entry("qcow2-as-raw", "tiny-as-raw.img", fmt="raw")])
if os.path.exists(os.path.join(www, "luks.qcow2")):
    bad["versions"].append(entry("luks", "luks.qcow2"))

everything = document([copy.deepcopy(good), bad])
for i, (name, change, expect) in enumerate(cases):
    one = document([copy.deepcopy(good)])
    apply(one, change)
    base = os.path.join(tdir, "cases", "%02d" % i)
    json.dump(one, open(base + ".json", "w"))
    open(base + ".expect", "w").write(expect)
    open(base + ".name", "w").write(name)
    apply(everything, copy.deepcopy(change))
json.dump(everything, open(os.path.join(tdir, "catalog.json"), "w"), indent=1)
PY

# Each case alone: nidofs --check names it, rejects nothing else, and the
# good image stays.
ncase=0
for f in "$T_DIR"/cases/*.json; do
	base=${f%.json}
	name=$(cat "$base.name")
	expect=$(cat "$base.expect")
	"$NIDOFS" --check -o catalog="$f" >"$T_DIR/check.out" 2>"$T_DIR/check.err"
	status=$?
	ncase=$((ncase + 1))
	check "catalog $name: --check exits 0" test "$status" = 0
	if [ -n "$expect" ]; then
		check "catalog $name: rejected with its message" \
			grep -qxF -- "nidofs: warning: catalog $f: $expect" "$T_DIR/check.err"
		check "catalog $name: only this entry rejected" grep -q ': 1 images, 1 entries or aliases rejected;' "$T_DIR/check.out"
	else
		check "catalog $name: nothing rejected" grep -q ': 1 images, 0 entries or aliases rejected;' "$T_DIR/check.out"
	fi
	check "catalog $name: one line per message" \
		test "$(grep -vc '^nidofs: warning: catalog ' "$T_DIR/check.err")" = 0
done
echo "# $ncase catalog cases"

# --- the mount of all cases at once ------------------------------------------
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "mount with a comma in its path"; t_done; }
ok "mount with a comma in its path"
check "catalog lists only the valid images" test "$(ls "$mnt/catalog" | tr '\n' ' ')" = "bad tiny "
check "tiny lists its valid versions and aliases" \
	test "$(ls "$mnt/catalog/tiny" | tr '\n' ' ')" = "1.0 2.0 latest stable "
check "a shared alias points to the highest version" test "$(readlink "$mnt/catalog/tiny/latest")" = 2.0
check "an alias equal to a version name is that version" test -d "$mnt/catalog/tiny/2.0" -a ! -L "$mnt/catalog/tiny/2.0"
info="$mnt/catalog/tiny/1.0/info"
check "info of tiny:1.0 is readable" grep -qx 'tag: tiny:1.0' "$info"
check "info lists only the aliases not rejected" grep -qx 'aliases: stable 2.0' "$info"
check "description with a newline is one line" grep -qx 'description: one refused for VMs: forged' "$info"
check "arch with a newline is one line" \
	grep -qx 'arch: amd64 refused for VMs: forged' "$mnt/catalog/tiny/2.0/info"
for v in 1.0 2.0; do
	check "info of tiny:$v has no forged line" bash -c "! grep -q '^refused for VMs' '$mnt/catalog/tiny/$v/info'"
done
for f in "$T_DIR"/cases/*.json; do
	base=${f%.json}
	expect=$(cat "$base.expect")
	[ -n "$expect" ] || continue
	check "mount log: $(cat "$base.name")" daemon_log_has "catalog $T_DIR/catalog.json: $expect"
done
check "mount log: no forged line" bash -c "! grep -q -e '^refused for VMs' -e '^nidofs: info: forged' '$NIDOFS_LOG'"
check "the valid image reads through the mount" cmp "$mnt/catalog/tiny/1.0/disk.qcow2" "$www/tiny.qcow2"

# --- VM names ----------------------------------------------------------------
# name|errno of mkdir: '/' makes a path whose parent does not exist, and the
# names "" and ".." are existing directories to the kernel.
long64=$(printf 'a%.0s' {1..64})
names=(
	'a,b|EINVAL' 'a b|EINVAL' 'a/b|ENOENT' '..|EEXIST' '.|EEXIST' '|EEXIST'
	$'a\x01b|EINVAL' $'a\nb|EINVAL' $'a\x1b[31m|EINVAL' "$long64|EINVAL" '-x|EINVAL'
	'a_b|EINVAL' 'a.b|EINVAL' $'\xc3\xa9|EINVAL' 'a=b|EINVAL'
)
for item in "${names[@]}"; do
	name=${item%|*}
	want=${item##*|}
	shown=$(printf '%q' "$name")
	check "mkdir vms/$shown: $want" test "$(try_dir mkdir "$mnt/vms/$name")" = "$want"
	check "mkdir vms/$shown: no VM directory" no_vms
done
check "invalid names: no QEMU started" no_vm_processes
check "invalid names: logged escaped" daemon_log_has \
	"vms/a\\x0ab: invalid VM name: use 1-63 letters, digits and '-', not starting with '-'"
check "invalid names: no raw escape in the log" bash -c "! grep -q $'\x1b' '$NIDOFS_LOG'"

# A sentinel beside vms/ shows that `nido rm ../NAME` removes nothing.
mkdir -p "$NIDO_HOME/vms" "$NIDO_HOME/keep"
nido_names=('../keep' '../images' 'a,b' 'a b' '' '..' '-x' $'a\nb' "$long64" '/tmp')
for name in "${nido_names[@]}"; do
	shown=$(printf '%q' "$name")
	for cmd in rm info start stop ssh; do
		nido_run "$cmd" "$name"
		check "nido $cmd $shown: rejected" test "$status" = 1
		check "nido $cmd $shown: one-line message" bash -c \
			"[ \"\$(wc -l <'$T_DIR/err')\" = 1 ] && grep -q '^nido: invalid VM name' '$T_DIR/err'"
	done
	if [ "${name:0:1}" != - ]; then # else parsed as a flag by spawn, see below
		nido_run spawn "$name" --image tiny:1.0
		check "nido spawn $shown: rejected" test "$status" = 1
		check "nido spawn $shown: invalid name message" grep -q '^nido: invalid VM name' "$T_DIR/err"
	fi
	check "nido with $shown: the sentinel stays" test -d "$NIDO_HOME/keep"
	check "nido with $shown: images stays" test -d "$NIDO_HOME/images"
	check "nido with $shown: no VM" no_vms
done
nido_run spawn -x --image tiny:1.0
check "nido spawn -x: rejected as a flag" grep -qxF "nido: unexpected argument '-x'" "$T_DIR/err"
# nido_escaped MESSAGE ARGS...: nido names the argument escaped, on one line.
nido_escaped() {
	local expect=$1 shown
	shift
	shown=$(printf '%q ' "$@")
	nido_run "$@"
	check "nido ${shown% }: escaped message" grep -qxF -- "nido: $expect" "$T_DIR/err"
	check "nido ${shown% }: one line" test "$(wc -l <"$T_DIR/err")" = 1
}
nido_escaped "unexpected argument '\\x1b[31m-y'" spawn sp $'\e[31m-y'
nido_escaped "unexpected argument 'b\\x0anido: forged'" spawn sp $'b\nnido: forged'
nido_escaped "unknown command 'x\\x0anido: forged'; run 'nido help' to list the commands" $'x\nnido: forged'
nido_escaped "unknown configuration key 'k\\x07'; run 'nido config' to list them" config $'k\a'
nido_escaped "unknown image command 's\\x1b'; expected list, pull, update, info or rm" image $'s\e'
nido_escaped "image tiny:\\x0a: invalid tag (expected NAME:VERSION or NAME:ALIAS); see 'nido image list'" \
	image info $'tiny:\n'
nido_escaped "$T_DIR/ud\\x0ax: cannot read user-data: No such file or directory" \
	spawn sp --image tiny:1.0 --user-data "$T_DIR/ud"$'\nx'
check "nido with invalid names: no QEMU started" no_vm_processes
rmdir "$NIDO_HOME/keep"

# --- images that must not reach QEMU -----------------------------------------
inotifywait -m -e open,access,modify --format '%w %e' "$secret" "$datafile" \
	>"$T_DIR/inotify.log" 2>"$T_DIR/inotify.err" &
INOTIFY_PID=$!
T_PIDS+=("$INOTIFY_PID")
t_wait_for "inotify watches" 10 grep -q 'Watches established' "$T_DIR/inotify.err"
cp "$NIDO_HOME/config" "$T_DIR/config.base"
inspect_cases=(
	'backing|qcow2 image names a backing file: refused'
	'datafile|qcow2 image uses an external data file: refused'
	'aes|encrypted qcow2 image: refused'
	'raw-as-qcow2|the catalog says qcow2, but the image is not qcow2: refused'
	'qcow2-as-raw|the catalog says raw, but the image is qcow2: refused'
)
if [ -f "$www/luks.qcow2" ]; then
	inspect_cases+=('luks|encrypted qcow2 image: refused')
else
	echo "# skipped the LUKS case: qemu-img cannot create it here: $(head -1 "$T_DIR/luks.err")"
fi
n=0
for item in "${inspect_cases[@]}"; do
	version=${item%%|*}
	reason=${item#*|}
	n=$((n + 1))
	vm="inspect$n"
	{ cat "$T_DIR/config.base"; echo "image = bad:$version"; } >"$NIDO_HOME/config"
	check "mkdir from bad:$version: EINVAL" test "$(try_dir mkdir "$mnt/vms/$vm")" = EINVAL
	check "bad:$version: info names the reason" \
		grep -qxF "refused for VMs: $reason" "$mnt/catalog/bad/$version/info"
	check "bad:$version: the log names the reason" daemon_log_has "vms/$vm: cannot create: $reason"
	check "bad:$version: no VM directory" test ! -e "$NIDO_HOME/vms/$vm"
	check "bad:$version: no VM was begun" bash -c "! grep -q 'vm $vm: creating' '$NIDOFS_LOG'"
	check "bad:$version: no QEMU started" no_vm_processes
	nido_run spawn "s$vm" --image "bad:$version"
	check "nido spawn from bad:$version: rejected with the reason" \
		grep -qxF "nido: image bad:$version: $reason" "$T_DIR/err"
	check "nido spawn from bad:$version: no VM directory" test ! -e "$NIDO_HOME/vms/s$vm"
done
cp "$T_DIR/config.base" "$NIDO_HOME/config"
check "rejected images: no overlay" test -z "$(find "$NIDO_HOME/vms" -name disk.qcow2)"
check "rejected images: no VM" no_vms
check "rejected images: backing and data files unread" test ! -s "$T_DIR/inotify.log"

# --- configuration values ----------------------------------------------------
# key|value: each is rejected by `nido config`, by a write to MOUNT/config
# (EINVAL), and as a flag of `nido spawn` where one exists.
config_cases=(
	'memory|63' 'memory|1048577' 'memory|-1' 'memory|1e3' 'memory|' 'cpus|0' 'cpus|257'
	'port_range|80-90' 'port_range|1023-2000' 'port_range|60000-50000' 'port_range|50000-70000'
	'user|root' 'user|a b' 'user|Vmuser' 'user|-x' 'user|aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
	'stop_timeout|0' 'network|none' 'accel|hvf' 'cache_max|1Q' 'ssh_port|65536'
)
cp "$NIDO_HOME/config" "$T_DIR/config.before"
for item in "${config_cases[@]}"; do
	key=${item%%|*}
	value=${item#*|}
	nido_run config "$key" "$value"
	check "nido config $key '$value': rejected" test "$status" = 1
	check "nido config $key '$value': message names the key" grep -q "^nido: invalid value for $key" "$T_DIR/err"
	printf '%s = %s\n' "$key" "$value" >"$T_DIR/line"
	check "MOUNT/config $key '$value': EINVAL" test "$(try_append "$mnt/config" "$T_DIR/line")" = EINVAL
	check "$key '$value': the config file is unchanged" cmp -s "$NIDO_HOME/config" "$T_DIR/config.before"
	case $key in memory | cpus)
		nido_run spawn sp --image tiny:1.0 "--$key" "$value"
		check "nido spawn --$key '$value': rejected" grep -q "^nido: invalid value for $key" "$T_DIR/err"
		check "nido spawn --$key '$value': no VM" no_vms
		;;
	esac
done
printf 'memory = 512\nuser = root\n' >"$T_DIR/lines"
check "MOUNT/config with a valid and an invalid line: EINVAL" \
	test "$(try_append "$mnt/config" "$T_DIR/lines")" = EINVAL
check "a partly valid edit changes nothing" cmp -s "$NIDO_HOME/config" "$T_DIR/config.before"
# 70 KiB of valid comment lines in 4 KiB writes: the write past 64 KiB fails,
# and the 64 KiB before it must not be saved either.
python3 -c 'import sys; sys.stdout.write(("#" * 63 + "\n") * 1120)' >"$T_DIR/comments"
check "MOUNT/config over 64 KiB in 4 KiB writes: EFBIG" \
	test "$(try_append "$mnt/config" "$T_DIR/comments" 4096)" = EFBIG
check "an edit over 64 KiB changes nothing" cmp -s "$NIDO_HOME/config" "$T_DIR/config.before"
printf 'user = root\n' >>"$NIDO_HOME/config"
check "mkdir with user = root in the config file: EINVAL" test "$(try_dir mkdir "$mnt/vms/rootuser")" = EINVAL
check "user = root: no VM" no_vms
cp "$T_DIR/config.before" "$NIDO_HOME/config"

# --- user-data given to nido spawn -------------------------------------------
printf '#cloud-config\n\0\1\2' >"$T_DIR/binary"
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' 'x' >"$T_DIR/big"
nido_run spawn ud1 --image tiny:1.0 --user-data "$T_DIR/binary"
check "spawn with binary user-data: rejected" \
	grep -qxF "nido: $T_DIR/binary: user-data is binary; expected text" "$T_DIR/err"
nido_run spawn ud2 --image tiny:1.0 --user-data "$T_DIR/big"
check "spawn with user-data over 1 MiB: rejected" \
	grep -qxF "nido: $T_DIR/big: user-data larger than 1048576 bytes" "$T_DIR/err"
nido_run spawn ud3 --image tiny:1.0 --user-data "$T_DIR/none"
check "spawn with missing user-data: rejected" grep -q "^nido: $T_DIR/none: cannot read user-data" "$T_DIR/err"
check "rejected user-data: no VM" no_vms
check "rejected user-data: no QEMU started" no_vm_processes

# --- a VM in the state directory with a comma ---------------------------------
{ cat "$T_DIR/config.base"; echo "image = tiny:1.0"; } >"$NIDO_HOME/config"
check "mkdir vms/c1 in a state directory with a comma" test "$(try_dir mkdir "$mnt/vms/c1")" = OK
pid=$(cat "$NIDO_HOME/vms/c1/qemu.pid" 2>/dev/null)
check "c1: QEMU runs" test -n "$pid" -a -e "/proc/$pid"
# Every option string that names a file of the VM carries the path with the
# comma doubled, so QEMU's option parser finds exactly the keys nido wrote.
python3 - "/proc/$pid/cmdline" "$NIDO_HOME/vms/c1" >"$T_DIR/cmdline.check" <<'PY'
import sys
args = open(sys.argv[1], "rb").read().split(b"\0")[:-1]
args = [a.decode() for a in args]
vmdir = sys.argv[2]
allowed = {
    "-drive": {"file", "format", "if", "readonly"},
    "-chardev": {"file", "socket", "id", "path", "server", "wait"},
    "-netdev": {"user", "id", "hostfwd", "restrict"},
}
problems = []
for flag, value in zip(args, args[1:]):
    if flag in allowed:
        # QEMU splits option strings at single commas; ",," is a literal comma.
        for part in value.replace(",,", "\0").split(","):
            key, _, val = part.partition("=")
            if key not in allowed[flag]:
                problems.append(f"{flag} {value}: unexpected key {key!r}")
            if key in ("file", "path") and val.replace("\0", ",").startswith("/"):
                if not val.replace("\0", ",").startswith(vmdir + "/"):
                    problems.append(f"{flag} {value}: {key} outside {vmdir}")
    if flag == "-pidfile" and value != vmdir + "/qemu.pid":
        problems.append(f"-pidfile {value}")
escaped = vmdir.replace(",", ",,")
if not any(f"file={escaped}/disk.qcow2," in a for a in args):
    problems.append("no -drive with the escaped overlay path")
print("\n".join(problems) or "ok")
PY
check "c1: QEMU's options keep the comma escaped" test "$(cat "$T_DIR/cmdline.check")" = ok
[ "$(cat "$T_DIR/cmdline.check")" = ok ] || sed 's/^/# /' "$T_DIR/cmdline.check"
check "c1: the overlay lies in the state directory" test -f "$NIDO_HOME/vms/c1/disk.qcow2"
t_wait_for "the boot marker of c1" 60 grep -q NIDO-TINY-BOOT-OK "$mnt/vms/c1/console"
check "c1: the guest boots" grep -q NIDO-TINY-BOOT-OK "$mnt/vms/c1/console"
check "c1: no file outside the VM directory named after the comma" test ! -e "$T_DIR/x"

# --- edits of a stopped VM's files --------------------------------------------
echo kill >"$mnt/vms/c1/ctl"
t_wait_gone "$pid" 10
sha() { sha256sum <"$1" | cut -d' ' -f1; }
before_config=$(sha "$NIDO_HOME/vms/c1/config")
before_ud=$(sha "$NIDO_HOME/vms/c1/user-data")
before_seed=$(sha "$NIDO_HOME/vms/c1/seed.iso")
for line in 'memory = 10' 'cpus = 0' 'user = root' 'user = a b' 'port_range = 22-80'; do
	echo "$line" >"$T_DIR/line"
	check "vms/c1/config '$line': EINVAL" test "$(try_append "$mnt/vms/c1/config" "$T_DIR/line")" = EINVAL
done
check "vms/c1/config: unchanged" test "$(sha "$NIDO_HOME/vms/c1/config")" = "$before_config"
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' 'x' >"$T_DIR/big"
check "vms/c1/user-data over 1 MiB: EFBIG" test "$(try_append "$mnt/vms/c1/user-data" "$T_DIR/big")" = EFBIG
check "vms/c1/user-data over 1 MiB in 64 KiB writes: EFBIG" \
	test "$(try_append "$mnt/vms/c1/user-data" "$T_DIR/big" 65536)" = EFBIG
check "vms/c1/user-data: unchanged" test "$(sha "$NIDO_HOME/vms/c1/user-data")" = "$before_ud"
check "vms/c1: the seed is unchanged" test "$(sha "$NIDO_HOME/vms/c1/seed.iso")" = "$before_seed"
check "vms/c1: still stopped" no_vm_processes

check "rmdir vms/c1" test "$(try_dir rmdir "$mnt/vms/c1")" = OK
check "no VM left" no_vms
check "no QEMU left" no_vm_processes
kill "$INOTIFY_PID" 2>/dev/null
t_done
