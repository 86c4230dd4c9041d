# Cache size limits and eviction: cache_max is never exceeded by more than one
# request's worth, old images are evicted first, `rm images/ENTRY` frees space.
source "$(dirname "$0")/lib.sh"
t_setup

mkdir -p "$T_DIR/www"
head -c $((8 * 1048576)) /dev/urandom >"$T_DIR/www/a.raw"
head -c $((8 * 1048576)) /dev/urandom >"$T_DIR/www/b.raw"
start_nginx "$T_DIR/www" || { not_ok "start nginx"; t_done; }
python3 - "$T_DIR" "$NGINX_PORT" <<'PY'
import hashlib, json, os, sys
d, port = sys.argv[1], sys.argv[2]
def entry(name):
    path = f"{d}/www/{name}.raw"
    return {"name": name, "registry": "official", "description": name, "homepage": "",
            "versions": [{"version": "1", "aliases": [], "arch": "amd64",
                          "url": f"http://127.0.0.1:{port}/{name}.raw", "format": "raw",
                          "checksum_type": "sha256",
                          "checksum": hashlib.sha256(open(path, "rb").read()).hexdigest(),
                          "size_bytes": os.path.getsize(path)}]}
json.dump({"schema_version": "1", "updated_at": "x", "images": [entry("a"), entry("b")]},
          open(f"{d}/catalog.json", "w"))
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
check "cache stays within cache_max plus one request ($(usage) KiB)" test "$(usage)" -le $((12 * 1024 + 4096 + 64))
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
check "cache never grows past cache_max plus one request" test "$(usage)" -le $((2 * 1024 + 4096 + 64))
t_done
