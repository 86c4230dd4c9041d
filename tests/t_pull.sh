# `nido image pull`: resumes from the cached blocks after being killed, shares
# the cache with lazy reads through the mount, and stays quiet when its
# output is not a terminal.
source "$(dirname "$0")/lib.sh"
t_setup

mkdir -p "$T_DIR/www"
head -c $((12 * 1048576 + 5)) /dev/urandom >"$T_DIR/www/disk.raw"
start_faultserver "$T_DIR/www"
write_catalog_raw "$NIDO_HOME/catalog.json" blob 1 "http://127.0.0.1:$FAULT_PORT/disk.raw" "$T_DIR/www/disk.raw"
size=$(stat -c %s "$T_DIR/www/disk.raw")
fetched() { awk '$4 == 206 || $4 == 200 { s += $5 } END { print s + 0 }' "$FAULT_LOG"; }

fault slow rate=3000000
# Started from a subshell so that killing it prints no job notice.
pid=$(
	"$NIDO" image pull blob:1 >/dev/null 2>&1 &
	echo $!
)
sleep 1.5
kill -9 "$pid"
t_wait_gone "$pid" 10
fault_clear
partial=$(fetched)
check "the killed pull had fetched part of the image" test "$partial" -gt 0 -a "$partial" -lt "$size"
"$NIDO" image pull blob:1 >"$T_DIR/out" 2>"$T_DIR/err"
check "pull resumes and completes" grep -q 'blob:1: pulled, checksum verified' "$T_DIR/out"
check "the resumed pull fetched only missing blocks ($(fetched) of $size bytes)" \
	test "$(fetched)" -le $((size + 4 * 1048576))
check "no progress output when not on a terminal" test ! -s "$T_DIR/err"
check "the pulled image is complete in the cache" cmp "$NIDO_HOME"/images/sha256-*/disk.raw "$T_DIR/www/disk.raw"

# A lazy read through the mount, then a pull through the same cache.
rm -rf "$NIDO_HOME/images"
: >"$FAULT_LOG"
mnt="$T_DIR/mnt"
mount_nidofs "$mnt" || { not_ok "mount"; t_done; }
dd if="$mnt/catalog/blob/1/disk.raw" of=/dev/null bs=1M count=4 status=none
lazy=$(fetched)
"$NIDO" image pull blob:1 >"$T_DIR/out" 2>&1
check "pull through the mount completes" grep -q 'pulled, checksum verified' "$T_DIR/out"
check "pull after a lazy read fetched only the rest" test "$(fetched)" -le $((size + 4 * 1048576))
check "lazy read had fetched part of it first" test "$lazy" -gt 0
t_done
