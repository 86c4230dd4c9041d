# The block cache against a misbehaving server: each fault either yields the
# right bytes or fails the read with EIO within a bound, and the next read
# after the fault clears succeeds.
source "$(dirname "$0")/lib.sh"
t_setup
export NIDO_STALL_TIMEOUT=2

# 24 MiB plus a tail that does not fill a block.
serve_random_blob $((24 * 1048576 + 12345))
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

# A read stuck on a stalled server: the reader can be killed at once, and
# then the mount can be unmounted and the daemon exits. The stall timeout is
# 60 s here, so that waiting for it would show.
main_pid=$NIDOFS_PID
head -c $((4 * 1048576)) /dev/urandom >"$T_DIR/www/stall.raw"
gzip -c "$T_DIR/www/stall.raw" >"$T_DIR/www/stall.raw.gz"
write_catalog_raw "$T_DIR/stall.json" stall 1 "http://127.0.0.1:$FAULT_PORT/stall.raw" "$T_DIR/www/stall.raw"
# A packed entry too, whose first open downloads it whole.
python3 - "$T_DIR/stall.json" "http://127.0.0.1:$FAULT_PORT/stall.raw.gz" "$T_DIR/www/stall.raw.gz" <<'PY'
import copy, hashlib, json, os, sys
path, url, gz = sys.argv[1:]
doc = json.load(open(path))
image = copy.deepcopy(doc["images"][0])
image["name"] = "stallgz"
image["versions"][0].update(url=url, checksum=hashlib.sha256(open(gz, "rb").read()).hexdigest(),
                            size_bytes=os.path.getsize(gz))
doc["images"].append(image)
json.dump(doc, open(path, "w"))
PY
mkdir -p "$T_DIR/stall-home"
cp "$NIDO_HOME/config" "$T_DIR/stall-home/config"
smnt="$T_DIR/smnt"
export NIDO_STALL_TIMEOUT=60
mount_nidofs "$smnt" -o catalog="$T_DIR/stall.json",home="$T_DIR/stall-home" || { not_ok "mount"; t_done; }
export NIDO_STALL_TIMEOUT=2
stall_pid=$NIDOFS_PID
NIDOFS_PID=$main_pid
sdisk="$smnt/catalog/stall/1/disk.raw"

# d_state_pids: the processes of this test (their command line names its
# directory) in uninterruptible sleep.
d_state_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(awk '{ print $3 }' "$p/stat" 2>/dev/null)" = D ] || continue
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$T_DIR" && basename "$p"
	done
	return 0
}
# stuck_reader DD_ARGS...: starts dd on the stalled image; sets READER.
stuck_reader() {
	READER=$(
		dd if="$sdisk" of=/dev/null bs=65536 count=1 status=none "$@" >/dev/null 2>&1 &
		echo $!
	)
	T_PIDS+=("$READER")
	sleep 1
}

fault stall seconds=300
stuck_reader
check "stalled server: the read is stuck" kill -0 "$READER"
start=$(now)
if fusermount3 -u "$smnt" 2>"$T_DIR/err"; then
	not_ok "unmount of the busy mount fails"
else
	ok "unmount of the busy mount fails"
fi
check "unmount of the busy mount fails at once with EBUSY" grep -q 'Device or resource busy' "$T_DIR/err"
check "unmount of the busy mount took at most 2 s" test "$(elapsed_since "$start")" -le 2
kill -KILL "$READER"
check "a stuck reader killed with SIGKILL is gone within 3 s" t_wait_gone "$READER" 3

stuck_reader iflag=direct
check "an O_DIRECT reader waits interruptibly" test "$(awk '{ print $3 }' "/proc/$READER/stat")" = S
kill -TERM "$READER"
check "a stuck O_DIRECT reader killed with SIGTERM is gone within 3 s" t_wait_gone "$READER" 3
opener=$(
	cat "$smnt/catalog/stallgz/1/disk.raw" >/dev/null 2>&1 &
	echo $!
)
T_PIDS+=("$opener")
sleep 1
check "an open waiting for a packed download is stuck" kill -0 "$opener"
kill -KILL "$opener"
check "an open waiting for a packed download, killed, is gone within 3 s" t_wait_gone "$opener" 3
check "the cancelled download is in info" grep -q 'failed: download cancelled' "$smnt/catalog/stallgz/1/info"
check "no process of the test is in uninterruptible sleep" test -z "$(d_state_pids)"
check "once the reader is gone, the unmount works" fusermount3 -u "$smnt"
check "the daemon exits within 10 s of the unmount" t_wait_gone "$stall_pid" 10
fault_clear

for p in "${T_PIDS[@]}"; do
	[ "$p" = "$NIDOFS_PID" ] || kill "$p" 2>/dev/null
done
sleep 0.5
sync; echo 3 >/proc/sys/vm/drop_caches
check "fully cached image reads with the server down" cmp "$disk" "$T_DIR/orig.raw"
t_done
