# Cache size limits and eviction: cache_max is never exceeded by more than one
# block, old images are evicted first, `rm images/ENTRY` frees space.
# The same limits hold for `nido image pull` without a daemon and for packed
# entries, whose download and unpacked disk both count while both exist.
source "$(dirname "$0")/lib.sh"
t_setup

mkdir -p "$T_DIR/www/src"
head -c $((8 * 1048576)) /dev/urandom >"$T_DIR/www/a.raw"
head -c $((8 * 1048576)) /dev/urandom >"$T_DIR/www/b.raw"
# Two packed entries of one 4 MiB disk of random bytes, a gzip stream and a
# tar.xz archive, are each about as large as the disk. A third, the tar.xz of
# a 6 MiB disk that is mostly zeros, is a 1 MiB download.
head -c $((4 * 1048576)) /dev/urandom >"$T_DIR/www/src/disk.raw"
gzip -c "$T_DIR/www/src/disk.raw" >"$T_DIR/www/c.raw.gz"
tar -C "$T_DIR/www/src" -cJf "$T_DIR/www/c.tar.xz" disk.raw
mkdir -p "$T_DIR/www/zeros"
head -c $((1048576)) /dev/urandom >"$T_DIR/www/zeros/disk.raw"
head -c $((5 * 1048576)) /dev/zero >>"$T_DIR/www/zeros/disk.raw"
tar -C "$T_DIR/www/zeros" -cJf "$T_DIR/www/d.tar.xz" disk.raw
start_nginx "$T_DIR/www" || { not_ok "start nginx"; t_done; }
python3 - "$T_DIR" "$NGINX_PORT" <<'PY'
import hashlib, json, os, sys
d, port = sys.argv[1], sys.argv[2]
def entry(name, file):
    path = f"{d}/www/{file}"
    return {"name": name, "registry": "official", "description": name, "homepage": "",
            "versions": [{"version": "1", "aliases": [], "arch": "amd64",
                          "url": f"http://127.0.0.1:{port}/{file}", "format": "raw",
                          "checksum_type": "sha256",
                          "checksum": hashlib.sha256(open(path, "rb").read()).hexdigest(),
                          "size_bytes": os.path.getsize(path)}]}
images = [entry("a", "a.raw"), entry("b", "b.raw"), entry("pgz", "c.raw.gz"), entry("ptar", "c.tar.xz"),
          entry("pzeros", "d.tar.xz")]
json.dump({"schema_version": "1", "updated_at": "x", "images": images}, open(f"{d}/catalog.json", "w"))
PY
echo "cache_max = 12M" >>"$NIDO_HOME/config"
mnt="$T_DIR/mnt"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "mount"; t_done; }
usage() { du -sk "$NIDO_HOME/images" | cut -f1; }

check "first image reads right" cmp "$mnt/catalog/a/1/disk.raw" "$T_DIR/www/a.raw"
sleep 1.5
check "second image reads right under the limit" cmp "$mnt/catalog/b/1/disk.raw" "$T_DIR/www/b.raw"
check "the older image was evicted" bash -c "! ls '$mnt/images' | grep -q '^a-1-'"
check "the newer image stays" bash -c "ls '$mnt/images' | grep -q '^b-1-'"
check "cache stays within cache_max plus one block ($(usage) KiB)" test "$(usage)" -le $((12 * 1024 + 64))
check "eviction is logged" grep -q 'cache: evicted sha256-' "$NIDOFS_LOG"

entry=$(ls "$mnt/images" | grep '^b-1-')
rm -f "$mnt/images/$entry"
check "rm images/ENTRY removes the entry" bash -c "! ls '$mnt/images' | grep -q '^b-1-'"
check "rm images/ENTRY frees the space" test "$(usage)" -lt 1024
check "an evicted image reads again" cmp "$mnt/catalog/b/1/disk.raw" "$T_DIR/www/b.raw"
umount_nidofs "$mnt"

sed -i 's/^cache_max = .*/cache_max = 2M/' "$NIDO_HOME/config"
rm -rf "$NIDO_HOME/images"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"
if cat "$mnt/catalog/a/1/disk.raw" >/dev/null 2>"$T_DIR/err"; then
	not_ok "an image larger than cache_max fails to read"
else
	ok "an image larger than cache_max fails to read"
fi
check "the failure says the cache limit was reached" grep -q 'cache limit reached' "$NIDOFS_LOG"
check "cache never grows past cache_max plus one block ($(usage) KiB)" test "$(usage)" -le $((2 * 1024 + 64))
umount_nidofs "$mnt"

# The cache entry of a file: sha256- and the file's digest.
entry_id() {
	echo "sha256-$(sha256sum "$1" | cut -d' ' -f1)"
}
a_id=$(entry_id "$T_DIR/www/a.raw")
b_id=$(entry_id "$T_DIR/www/b.raw")
pgz_id=$(entry_id "$T_DIR/www/c.raw.gz")
ptar_id=$(entry_id "$T_DIR/www/c.tar.xz")
images="$NIDO_HOME/images"
cached() { test -e "$images/$1/$2"; }
# pull TAG: `nido image pull TAG` without a daemon; output in pull.out and pull.err.
pull() {
	"$NIDO" image pull "$1" >"$T_DIR/pull.out" 2>"$T_DIR/pull.err"
}
# use_image ID: a VM whose overlay names the entry's disk as its base image.
use_image() {
	mkdir -p "$NIDO_HOME/vms/user"
	qemu-img create -q -f qcow2 -b "$images/$1/disk.raw" -F raw "$NIDO_HOME/vms/user/disk.qcow2" 4M
}
# hold_open ID: another process holds the entry's lock, as the daemon or a
# reader of a packed disk does; sets HOLDER.
hold_open() {
	# The subshell becomes sleep, which keeps the locked descriptor.
	(
		exec 9<"$images/$1/lock"
		flock -s 9
		exec sleep 60
	) &
	HOLDER=$!
	T_PIDS+=("$HOLDER")
	t_wait_for "the lock on $1" 5 bash -c "! flock -n -x '$images/$1/lock' true"
}
release() {
	kill "$HOLDER"
	t_wait_gone "$HOLDER" 5
}
# refused NAME TAG EXPECTED: a pull of TAG fails with exactly the message EXPECTED.
refused() {
	local got
	if pull "$2"; then not_ok "$1: pull fails"; else ok "$1: pull fails"; fi
	got=$(cat "$T_DIR/pull.err")
	if [ "$got" = "$3" ]; then ok "$1: message"; else not_ok "$1: message, got: $got"; fi
}

# Lazy entries pulled without a daemon.
rm -rf "$images"
cp "$T_DIR/catalog.json" "$NIDO_HOME/catalog.json"
sed -i 's/^cache_max = .*/cache_max = 12M/' "$NIDO_HOME/config"
check "pull without a daemon: first image" pull a:1
sleep 1.1 # the next image's meta is written a second later, so a is the older
check "pull without a daemon: second image" pull b:1
check "pull without a daemon evicts the older image" test ! -e "$images/$a_id"
check "the pulled image verifies" cmp "$images/$b_id/disk.raw" "$T_DIR/www/b.raw"
check "pull without a daemon stays within cache_max ($(usage) KiB)" test "$(usage)" -le $((12 * 1024 + 64))

use_image "$b_id"
refused "only image used by a VM" a:1 \
	"nido: a:1: cache limit reached: 8.0 MiB more needed, the cache uses 8.0 MiB of cache_max 12.0 MiB; cannot evict b:1 (used by a VM)"
check "only image used by a VM: nothing of the refused image is cached" test ! -e "$images/$a_id"
check "only image used by a VM: it stays intact" cmp "$images/$b_id/disk.raw" "$T_DIR/www/b.raw"
rm -rf "$NIDO_HOME/vms/user"

hold_open "$b_id"
refused "only image held open" a:1 \
	"nido: a:1: cache limit reached: 8.0 MiB more needed, the cache uses 8.0 MiB of cache_max 12.0 MiB; cannot evict b:1 (open)"
check "only image held open: nothing of the refused image is cached" test ! -e "$images/$a_id"
check "only image held open: it stays intact" cmp "$images/$b_id/disk.raw" "$T_DIR/www/b.raw"
release
check "once released, the pull evicts it" pull a:1
check "once released, the older image is gone" test ! -e "$images/$b_id"
check "once released, the pulled image verifies" cmp "$images/$a_id/disk.raw" "$T_DIR/www/a.raw"

# Packed entries: with 8 MiB of a cached, the 4 MiB download of pgz fits
# under 14 MiB, but the download and the 4 MiB disk together do not.
sed -i 's/^cache_max = .*/cache_max = 14M/' "$NIDO_HOME/config"
pzeros_id=$(entry_id "$T_DIR/www/d.tar.xz")
sleep 1.1
check "packed pull without a daemon" pull pgz:1
check "packed pull: the download and the disk both counted, so a was evicted" test ! -e "$images/$a_id"
check "packed pull: the disk is right" cmp "$images/$pgz_id/disk.raw" "$T_DIR/www/src/disk.raw"
check "packed pull: the download is gone" bash -c "! ls '$images/$pgz_id' | grep -q '^part'"
check "packed pull stays within cache_max ($(usage) KiB)" test "$(usage)" -le $((14 * 1024 + 64))

# With a (8 MiB, used by a VM) and pgz (4 MiB) cached, ptar needs 8 MiB and
# evicting pgz frees only 4: refused before anything is evicted or fetched.
check "an image for a VM" pull a:1
use_image "$a_id"
sleep 1.1
refused "packed entry, other images used by a VM or too small" ptar:1 \
	"nido: ptar:1: no room for the download and its unpacked disk: cache limit reached: 8.0 MiB more needed, the cache uses 12.0 MiB of cache_max 14.0 MiB; cannot evict a:1 (used by a VM); evicting every other image frees only 4.0 MiB"
check "refused packed pull leaves only its lock" test "$(ls "$images/$ptar_id")" = lock
check "refused packed pull: the image the VM uses stays intact" cmp "$images/$a_id/disk.raw" "$T_DIR/www/a.raw"
check "refused packed pull: the unused image is not evicted for nothing" cached "$pgz_id" disk.raw

# The 1 MiB download of pzeros fits beside a, its 6 MiB disk does not: the
# pull is refused when unpacking starts and leaves nothing behind.
"$NIDO" image rm pgz:1 >/dev/null
refused "packed entry refused while unpacking" pzeros:1 \
	"nido: pzeros:1: cache limit reached: 6.0 MiB more needed, the cache uses 9.0 MiB of cache_max 14.0 MiB; cannot evict a:1 (used by a VM)"
check "refused while unpacking: only its lock is left" test "$(ls "$images/$pzeros_id")" = lock
check "refused while unpacking: the image the VM uses stays intact" cmp "$images/$a_id/disk.raw" "$T_DIR/www/a.raw"
check "refused while unpacking: within cache_max ($(usage) KiB)" test "$(usage)" -le $((14 * 1024 + 64))
rm -rf "$NIDO_HOME/vms/user"

hold_open "$a_id"
refused "packed entry, only other image held open" ptar:1 \
	"nido: ptar:1: no room for the download and its unpacked disk: cache limit reached: 8.0 MiB more needed, the cache uses 8.0 MiB of cache_max 14.0 MiB; cannot evict a:1 (open)"
check "packed entry, only other image held open: it stays intact" cmp "$images/$a_id/disk.raw" "$T_DIR/www/a.raw"
release
check "once released, the packed pull evicts it" pull ptar:1
check "once released, the image is gone" test ! -e "$images/$a_id"
check "once released, the packed disk is right" cmp "$images/$ptar_id/disk.raw" "$T_DIR/www/src/disk.raw"

# The daemon keeps the limits for a packed entry opened through the mount.
sleep 1.1
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "mount"; t_done; }
"$NIDO" image rm ptar:1 >/dev/null
check "through the mount: an image read first" cmp "$mnt/catalog/a/1/disk.raw" "$T_DIR/www/a.raw"
sleep 1.1
check "through the mount: a packed disk reads right" cmp "$mnt/catalog/pgz/1/disk.raw" "$T_DIR/www/src/disk.raw"
check "through the mount: the older image was evicted" test ! -e "$images/$a_id"
check "through the mount: within cache_max ($(usage) KiB)" test "$(usage)" -le $((14 * 1024 + 64))
umount_nidofs "$mnt"
t_done
