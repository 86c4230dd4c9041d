# The block cache against a misbehaving server: each fault either yields the
# right bytes or fails the read with EIO within a bound, and the next read
# after the fault clears succeeds.
source "$(dirname "$0")/lib.sh"
t_setup
export NIDO_STALL_TIMEOUT=2

mkdir -p "$T_DIR/www"
# 24 MiB plus a tail that does not fill a block.
head -c $((24 * 1048576 + 12345)) /dev/urandom >"$T_DIR/www/disk.raw"
cp "$T_DIR/www/disk.raw" "$T_DIR/orig.raw"
start_faultserver "$T_DIR/www"
write_catalog_raw "$T_DIR/catalog.json" blob 1 "http://127.0.0.1:$FAULT_PORT/disk.raw" "$T_DIR/www/disk.raw"
mnt="$T_DIR/mnt"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "mount"; t_done; }
disk="$mnt/catalog/blob/1/disk.raw"

# read_mib N: reads 64 KiB at N MiB through the mount into $T_DIR/got; status of dd.
read_mib() {
	dd if="$disk" of="$T_DIR/got" bs=65536 skip=$(($1 * 16)) count=1 status=none
}
same_mib() {
	dd if="$T_DIR/orig.raw" bs=65536 skip=$(($1 * 16)) count=1 status=none | cmp -s - "$T_DIR/got"
}

# fault_ok NAME MIB FAULT PARAMS...: the read under the fault returns the right bytes.
fault_ok() {
	local name=$1 mib=$2
	shift 2
	fault "$@"
	if read_mib "$mib" && same_mib "$mib"; then ok "$name"; else not_ok "$name"; fi
	fault_clear
}

# fault_eio NAME MIB LIMIT FAULT PARAMS...: the read fails with EIO within LIMIT
# seconds, and succeeds once the fault is cleared.
fault_eio() {
	local name=$1 mib=$2 limit=$3 start took
	shift 3
	fault "$@"
	start=$(now)
	if read_mib "$mib" 2>"$T_DIR/err"; then
		not_ok "$name: read succeeded under the fault"
	else
		took=$(elapsed_since "$start")
		check "$name: EIO" grep -q 'Input/output error' "$T_DIR/err"
		check "$name: failed within ${limit}s (took ${took}s)" test "$took" -le "$limit"
	fi
	fault_clear
	if read_mib "$mib" && same_mib "$mib"; then ok "$name: next read succeeds"; else not_ok "$name: next read succeeds"; fi
}

fault_ok "503 twice, then data" 1 status5xx count=2
start=$(now)
fault_ok "429 with Retry-After" 2 status429 retry_after=2 count=1
check "Retry-After was honoured" test "$(elapsed_since "$start")" -ge 2
fault_ok "connection reset mid-body" 3 reset count=1
fault_ok "body shorter than promised" 4 short count=1
fault_ok "206 at a wrong offset" 5 wrong_range count=1
fault_ok "206 starting earlier than asked" 6 early_range
fault_ok "206 shorter than asked" 7 short_range
fault_ok "redirect" 8 redirect
fault_eio "redirect loop" 9 30 redirect_loop
fault_eio "persistent 503" 10 40 status5xx
fault_eio "stalled server" 11 20 stall seconds=60
fault_ok "slow server" 12 slow rate=200000
fault_ok "ETag differs on every answer" 14 etag_flip
fault_ok "200 to every If-Range with an ETag" 15 ifrange_200
check "unreliable ETags are noticed once" test "$(grep -c 'no longer using its ETags' "$NIDOFS_LOG")" = 1
check "unreliable ETags do not discard the cache" bash -c "! grep -q 'remote file changed' '$NIDOFS_LOG'"

mv "$T_DIR/www/disk.raw" "$T_DIR/www/gone.raw"
fault_eio_404() {
	if read_mib 13 2>"$T_DIR/err"; then not_ok "missing file: EIO"; else ok "missing file: EIO"; fi
}
fault_eio_404
mv "$T_DIR/www/gone.raw" "$T_DIR/www/disk.raw"
check "missing file: next read succeeds" bash -c "dd if='$disk' bs=65536 skip=208 count=1 status=none | cmp -s - <(dd if='$T_DIR/orig.raw' bs=65536 skip=208 count=1 status=none)"
check "the daemon is still up" kill -0 "$NIDOFS_PID"
check "log names image, offset and cause" grep -q 'blob:1: fetch of offset [0-9]* from 127.0.0.1:[0-9]* failed: ' "$NIDOFS_LOG"

: >"$FAULT_LOG"
fault no_range
check "server without ranges: whole image right" cmp "$disk" "$T_DIR/orig.raw"
fault_clear
check "server without ranges: one whole-file answer" test "$(grep -c ' 200 ' "$FAULT_LOG")" -ge 1
check "no request past the end of the file" bash -c "! grep -q ' 416 ' '$FAULT_LOG'"
t_wait_for "the checksum check" 20 grep -q 'verified' "$mnt/catalog/blob/1/info"
check "complete image verified" grep -q 'complete, verified' "$mnt/catalog/blob/1/info"

for p in "${T_PIDS[@]}"; do
	[ "$p" = "$NIDOFS_PID" ] || kill "$p" 2>/dev/null
done
sleep 0.5
sync; echo 3 >/proc/sys/vm/drop_caches
check "fully cached image reads with the server down" cmp "$disk" "$T_DIR/orig.raw"
t_done
