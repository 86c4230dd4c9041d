# Images over 4 GiB (64-bit offsets everywhere) and an entry without a
# checksum: served, with a visible warning, and never called verified.
source "$(dirname "$0")/lib.sh"
t_setup

mkdir -p "$T_DIR/www"
big="$T_DIR/www/big.raw"
truncate -s $((5 * 1024 * 1024 * 1024 + 4096 + 17)) "$big"
printf 'marker-at-4.5G' | dd of="$big" bs=1 seek=$((4608 * 1048576 + 123)) conv=notrunc status=none
printf 'the-last-bytes' | dd of="$big" bs=1 seek=$(($(stat -c %s "$big") - 14)) conv=notrunc status=none
start_faultserver "$T_DIR/www"
python3 - "$T_DIR" "$FAULT_PORT" "$(stat -c %s "$big")" <<'PY'
import json, sys
d, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
v = {"version": "1", "aliases": [], "arch": "amd64", "url": f"http://127.0.0.1:{port}/big.raw",
     "checksum_type": "", "checksum": "", "size_bytes": size, "format": "raw"}
json.dump({"schema_version": "1", "updated_at": "x", "images": [
    {"name": "big", "registry": "official", "description": "big", "homepage": "", "versions": [v]}]},
    open(f"{d}/catalog.json", "w"))
PY
mnt="$T_DIR/mnt"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "mount"; t_done; }
disk="$mnt/catalog/big/1/disk.raw"

check "size over 4 GiB comes from the catalog" test "$(stat -c %s "$disk")" = "$(stat -c %s "$big")"
check "bytes at 4.5 GiB read right" \
	test "$(dd if="$disk" bs=1 skip=$((4608 * 1048576 + 123)) count=14 status=none)" = marker-at-4.5G
check "the last bytes read right" \
	test "$(tail -c 14 "$disk")" = the-last-bytes
check "a read across the end returns only what exists" \
	test "$(dd if="$disk" bs=4096 skip=$(($(stat -c %s "$big") / 4096)) count=4 status=none | wc -c)" = 17
check "no request reaches past the end" bash -c "! grep -q ' 416 ' '$FAULT_LOG'"
check "info warns that there is no checksum" grep -q 'WARNING: the image cannot be verified' "$mnt/catalog/big/1/info"
check "only the blocks read were fetched" \
	test "$(awk '{ s += $5 } END { print s + 0 }' "$FAULT_LOG")" -lt $((64 * 1048576))
t_done
