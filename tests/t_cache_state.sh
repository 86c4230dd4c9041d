# The block cache's state across events: crashes of the daemon, a remote file
# replaced under the same URL, many concurrent readers, a full disk.
source "$(dirname "$0")/lib.sh"
t_setup
export NIDO_STALL_TIMEOUT=3

serve_random_blob $((16 * 1048576 + 777))
mnt="$T_DIR/mnt"
disk="$mnt/catalog/blob/1/disk.raw"
want=$(sha256sum <"$T_DIR/orig.raw" | cut -d' ' -f1)

# 1. Crash loop: SIGKILL the daemon at a random point of a slow fetch, remount,
# finish the read; the bytes must always match.
crash_ok=0
runs=20
for ((run = 1; run <= runs; run++)); do
	fault slow rate=4000000
	mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || break
	(cat "$disk" >/dev/null 2>&1 &)
	sleep "0.$((RANDOM % 9 + 1))"
	kill -9 "$NIDOFS_PID"
	t_wait_gone "$NIDOFS_PID" 10
	fusermount3 -uz "$mnt" 2>/dev/null
	fault_clear
	mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || break
	got=$(sha256sum <"$disk" | cut -d' ' -f1)
	[ "$got" = "$want" ] && crash_ok=$((crash_ok + 1))
	fusermount3 -u "$mnt"
	t_wait_gone "$NIDOFS_PID" 10
	# Start the next run from a partial cache: drop the verified file only.
	rm -rf "$NIDO_HOME/images"/*/disk.raw "$NIDO_HOME/images"/*/meta
done
check "crash loop: $crash_ok of $runs runs read the right bytes" test "$crash_ok" -eq "$runs"

# 2. The remote file is replaced under the same URL between two reads.
rm -rf "$NIDO_HOME/images"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"
dd if="$disk" of=/dev/null bs=64k count=1 status=none
head -c $((16 * 1048576 + 777)) /dev/urandom >"$T_DIR/new.raw"
cp "$T_DIR/new.raw" "$T_DIR/www/disk.raw.tmp"
touch -d '+1 hour' "$T_DIR/www/disk.raw.tmp"
mv "$T_DIR/www/disk.raw.tmp" "$T_DIR/www/disk.raw"
cat "$disk" >"$T_DIR/read.raw" 2>/dev/null
if cmp -s "$T_DIR/read.raw" "$T_DIR/orig.raw"; then
	not_ok "replaced file: old bytes served after the change"
elif cmp -s "$T_DIR/read.raw" "$T_DIR/new.raw"; then
	ok "replaced file: the read has the new file only, not a mix"
else
	not_ok "replaced file: the read mixes old and new bytes"
fi
check "replaced file: the change is logged" grep -q 'remote file changed' "$NIDOFS_LOG"
t_wait_for "the checksum verdict" 20 grep -q 'mismatch\|changed' "$mnt/catalog/blob/1/info"
check "replaced file: info tells the user" grep -q 'mismatch\|changed' "$mnt/catalog/blob/1/info"
check "replaced file: not treated as complete" bash -c "! ls '$NIDO_HOME'/images/*/disk.raw 2>/dev/null"
umount_nidofs "$mnt"
cp "$T_DIR/orig.raw" "$T_DIR/www/disk.raw"

# 3. Concurrent readers of one image: right bytes, each block fetched once.
rm -rf "$NIDO_HOME/images"
: >"$FAULT_LOG"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"
pids=()
for ((i = 0; i < 32; i++)); do
	(sha256sum <"$disk" | cut -d' ' -f1 >"$T_DIR/sum.$i") &
	pids+=($!)
done
wait "${pids[@]}"
same=0
for ((i = 0; i < 32; i++)); do
	[ "$(cat "$T_DIR/sum.$i")" = "$want" ] && same=$((same + 1))
done
check "32 concurrent readers: all read the right bytes ($same of 32)" test "$same" -eq 32
fetched=$(awk '$4 == 206 || $4 == 200 { sum += $5 } END { print sum + 0 }' "$FAULT_LOG")
check "32 concurrent readers: every byte fetched once ($fetched bytes)" test "$fetched" -eq "$(stat -c %s "$T_DIR/orig.raw")"
umount_nidofs "$mnt"

# 4. The kernel keeps a verified image's pages across opens, and a catalog
# reload that points the same path at another verified image drops them: the
# next read shows the new image only.
rm -rf "$NIDO_HOME/images"
head -c $((16 * 1048576 + 777)) /dev/urandom >"$T_DIR/www/other.raw" # the same size: a size change alone would drop pages
point_blob_at() {
	write_catalog_raw "$T_DIR/catalog.new" blob 1 "http://127.0.0.1:$FAULT_PORT/$1" "$T_DIR/www/$1"
	mv "$T_DIR/catalog.new" "$T_DIR/catalog.json"
	sleep 1.1 # the daemon looks at the catalog file at most once a second
	ls "$mnt/catalog/blob" >/dev/null
}
point_blob_at other.raw
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"
cat "$disk" >/dev/null
t_wait_for "other.raw verified" 20 grep -q 'verified' "$mnt/catalog/blob/1/info"
point_blob_at disk.raw
cat "$disk" >/dev/null
t_wait_for "disk.raw verified" 20 grep -q 'verified' "$mnt/catalog/blob/1/info"
check "reload: the path reads the image it now names" cmp "$disk" "$T_DIR/orig.raw"
point_blob_at other.raw
check "reload: a verified image's kept pages do not outlive a reload" cmp "$disk" "$T_DIR/www/other.raw"
umount_nidofs "$mnt"
write_catalog_raw "$T_DIR/catalog.json" blob 1 "http://127.0.0.1:$FAULT_PORT/disk.raw" "$T_DIR/www/disk.raw"

# 5. A full cache file system: a clear error, no damage, recovery once space is back.
# Blocks marked in the map before the disk fills must keep their bytes.
durable_blocks_right() {
	python3 - "$NIDO_HOME"/images/*/map "$NIDO_HOME"/images/*/data "$T_DIR/orig.raw" <<'PY'
import sys
mapf, data, orig = sys.argv[1:4]
marks = open(mapf, "rb").read()
bs = 65536
with open(data, "rb") as d, open(orig, "rb") as o:
    for i, m in enumerate(marks):
        if m == 1:
            d.seek(i * bs); o.seek(i * bs)
            if d.read(bs) != o.read(bs):
                sys.exit(f"block {i} differs")
print(f"{sum(1 for m in marks if m == 1)} durable blocks checked")
PY
}
rm -rf "$NIDO_HOME/images"
mkdir -p "$NIDO_HOME/images"
mount -t tmpfs -o size=64m nidofs-test "$NIDO_HOME/images"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"
# Scattered direct reads: no readahead, so most of the image stays to be fetched.
for mib in 0 3 6 9 12 15; do
	dd if="$disk" of=/dev/null bs=64k count=1 skip=$((mib * 16)) iflag=direct status=none
done
umount_nidofs "$mnt"
# Leave about 1 MiB free, then read the whole image.
used=$(du -sk "$NIDO_HOME/images" | cut -f1)
dd if=/dev/zero of="$NIDO_HOME/images/filler" bs=1K count=$((64 * 1024 - used - 1024)) status=none 2>/dev/null
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"
if cat "$disk" >/dev/null 2>"$T_DIR/err"; then
	not_ok "disk full: the read fails"
else
	check "disk full: the read fails with a clear error" grep -q 'No space left\|Input/output error' "$T_DIR/err"
fi
# The worker logs the cause right after it fails the waiting read.
t_wait_for "the cause in the log" 5 grep -q 'No space left on device' "$NIDOFS_LOG"
check "disk full: the error names the cause" grep -q 'No space left on device' "$NIDOFS_LOG"
umount_nidofs "$mnt"
check "disk full: durable blocks keep their bytes" durable_blocks_right
rm -f "$NIDO_HOME/images/filler"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"
check "disk full: works again once space is freed" cmp "$disk" "$T_DIR/orig.raw"
umount_nidofs "$mnt"
umount "$NIDO_HOME/images"
t_done
