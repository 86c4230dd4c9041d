# Packed catalog entries (a zstd stream cut in parts, a disk in a .tar.xz, a
# gzip stream): pulled whole on first use, checked, unpacked, then served.
source "$(dirname "$0")/lib.sh"
t_setup

www="$T_DIR/www"
mkdir -p "$www/src"
head -c $((6 * 1048576 + 4321)) /dev/urandom >"$www/src/disk.raw"
cp "$www/src/disk.raw" "$T_DIR/orig.raw"
zstd -q -3 "$www/src/disk.raw" -o "$T_DIR/disk.raw.zst"
split -b 2M -d "$T_DIR/disk.raw.zst" "$www/disk.raw.zst.part"
tar -C "$www/src" -cJf "$www/disk.tar.xz" disk.raw
gzip -c "$www/src/disk.raw" >"$www/disk.raw.gz"
start_nginx "$www" || { not_ok "start nginx"; t_done; }

python3 - "$T_DIR" "$NGINX_PORT" <<'PY'
import glob, hashlib, json, os, sys
d, port = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
parts = sorted(glob.glob(f"{d}/www/disk.raw.zst.part*"))
def image(name, **v):
    v.setdefault("aliases", []); v.setdefault("arch", "amd64"); v.setdefault("format", "raw")
    v.setdefault("checksum_type", "sha256"); v["version"] = "1"
    return {"name": name, "registry": "official", "description": name, "homepage": "", "versions": [v]}
images = [
    image("zparts", url=base + "/disk.raw.zst.part00", part_urls=[base + "/" + os.path.basename(p) for p in parts],
          checksum=sha(f"{d}/disk.raw.zst"), size_bytes=os.path.getsize(f"{d}/disk.raw.zst")),
    image("tarxz", url=base + "/disk.tar.xz", checksum=sha(f"{d}/www/disk.tar.xz"),
          size_bytes=os.path.getsize(f"{d}/www/disk.tar.xz")),
    image("gz", url=base + "/disk.raw.gz", checksum=sha(f"{d}/orig.raw"),
          size_bytes=os.path.getsize(f"{d}/www/disk.raw.gz")),
    image("bad", url=base + "/disk.raw.gz", checksum="0" * 64, size_bytes=1),
]
json.dump({"schema_version": "1", "updated_at": "x", "images": images}, open(f"{d}/catalog.json", "w"))
PY
mnt="$T_DIR/mnt"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "mount"; t_done; }

check "packed entry says it is not pulled yet" grep -q 'not pulled yet' "$mnt/catalog/zparts/1/info"
check "zstd stream in parts: disk read right" cmp "$mnt/catalog/zparts/1/disk.raw" "$T_DIR/orig.raw"
check "zstd stream in parts: size is the disk's once unpacked" \
	test "$(stat -c %s "$mnt/catalog/zparts/1/disk.raw")" = "$(stat -c %s "$T_DIR/orig.raw")"
check "zstd stream in parts: info says verified" grep -q 'pulled, verified and unpacked' "$mnt/catalog/zparts/1/info"
check "zstd stream in parts: listed in images/" bash -c "ls '$mnt/images' | grep -q '^zparts-1-'"
check "disk in a tar.xz: read right" cmp "$mnt/catalog/tarxz/1/disk.raw" "$T_DIR/orig.raw"
check "gzip stream checked against the unpacked disk" cmp "$mnt/catalog/gz/1/disk.raw" "$T_DIR/orig.raw"
if cat "$mnt/catalog/bad/1/disk.raw" >/dev/null 2>"$T_DIR/err"; then
	not_ok "wrong checksum: read fails"
else
	ok "wrong checksum: read fails"
fi
check "wrong checksum: info says why" grep -q 'failed: sha256 mismatch' "$mnt/catalog/bad/1/info"
check "wrong checksum: nothing is kept as complete" bash -c "! ls '$NIDO_HOME'/images/sha256-0000*/disk.raw 2>/dev/null"
umount_nidofs "$mnt"

rm -rf "$NIDO_HOME/images"
cp "$T_DIR/catalog.json" "$NIDO_HOME/catalog.json"
check "nido image pull of a packed entry without a mount" \
	bash -c "'$NIDO' image pull tarxz:1 >'$T_DIR/pull.out' 2>&1 && grep -q 'checksum verified' '$T_DIR/pull.out'"
check "the pulled packed disk is right" cmp "$NIDO_HOME"/images/sha256-*/disk.raw "$T_DIR/orig.raw"
t_done
