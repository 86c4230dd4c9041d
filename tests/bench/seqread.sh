#!/usr/bin/env bash
# Cold sequential read of big.raw: curl to /dev/null, nidofs and httpdirfs,
# each with an empty cache, BENCH_REPS times.
# Usage: seqread.sh loopback|shaped
# On the shaped link only the first BENCH_SHAPED_MIB MiB are read, which keeps
# the run short. At 100 Mbit/s the rate is steady after the first second.
# On loopback the last repetition's nidofs state directory and httpdirfs
# cache are kept in $BENCH_DIR/warm for warm.sh.
set -u
LINK=$1
source "$(dirname "$0")/lib.sh"
b_setup

file="$BENCH_DIR/www/big.raw"
size=$(stat -c %s "$file")
mib=""
bytes=$size
if [ "$LINK" = shaped ]; then
	mib=$BENCH_SHAPED_MIB
	bytes=$((mib * 1048576))
fi
b_start_nginx "$BENCH_DIR/www" || exit 1
b_catalog "$B_TMP/catalog.json" big 1 "$B_URL/big.raw" "$file" raw

# The server's copy stays in the page cache: "cold" is about the client side.
cold() {
	b_drop_caches
	cat "$file" >/dev/null
}

for rep in $(b_reps); do
	cold
	t=$(b_curl_time "$B_URL/big.raw" "$mib") || { b_log "curl failed"; exit 1; }
	b_record cold_seq curl seconds "$t" bytes="$bytes" link="$LINK" rep="$rep"
	b_log "cold_seq $LINK curl rep $rep: $t s"
done

for rep in $(b_reps); do
	home="$B_TMP/nh$rep"
	mnt="$B_TMP/mnt$rep"
	b_new_home "$home"
	cold
	b_mount_nidofs "$mnt" "$home" "$B_TMP/catalog.json" || exit 1
	: >"$B_NGINX_LOG"
	t=$(b_read_time "$mnt/catalog/big/1/disk.raw" "$mib") || { b_log "nidofs read failed"; exit 1; }
	read -r requests fetched <<<"$(b_info_fetched "$mnt" big/1)"
	served=$(b_nginx_bytes /big.raw)
	cpu=$(awk '{ printf "%.2f", ($14 + $15) / 100 }' /proc/"$B_NIDOFS_PID"/stat)
	hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/"$B_NIDOFS_PID"/status)
	b_record cold_seq nidofs seconds "$t" bytes="$bytes" link="$LINK" rep="$rep" \
		requests="$requests" fetched="$fetched" served="$served" cpu="$cpu" peak_kib="$hwm"
	b_log "cold_seq $LINK nidofs rep $rep: $t s, $requests requests, $fetched bytes fetched, cpu $cpu s"
	awk '$2 == "/big.raw" { print $4 }' "$B_NGINX_LOG" | sort -n | uniq -c | sort -rn | head -3 |
		awk -v r="$rep" -v l="$LINK" '{ printf "   request sizes (%s rep %s): %d x %d bytes\n", l, r, $1, $2 }' >&2
	if [ "$LINK" = loopback ] && [ "$rep" = "$BENCH_REPS" ]; then
		# Complete and verified before it is kept for the warm workloads.
		b_wait_for "the checksum check" 120 grep -q 'complete, verified' "$mnt/catalog/big/1/info"
	fi
	b_umount "$mnt" "$B_NIDOFS_PID"
	if [ "$LINK" = loopback ] && [ "$rep" = "$BENCH_REPS" ]; then
		rm -rf "$BENCH_DIR/warm/nidofs-home" && mkdir -p "$BENCH_DIR/warm"
		mv "$home" "$BENCH_DIR/warm/nidofs-home"
	else
		rm -rf "$home"
	fi
done

for rep in $(b_reps); do
	mnt="$B_TMP/hmnt$rep"
	cache="$B_TMP/hcache$rep"
	cold
	b_mount_httpdirfs "$B_URL/big.raw" "$mnt" "$cache" || exit 1
	t=$(b_read_time "$mnt/big.raw" "$mib") || { b_log "httpdirfs read failed"; exit 1; }
	hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/"$B_HTTPDIRFS_PID"/status)
	b_record cold_seq httpdirfs seconds "$t" bytes="$bytes" link="$LINK" rep="$rep" peak_kib="$hwm"
	b_log "cold_seq $LINK httpdirfs rep $rep: $t s"
	fusermount3 -u "$mnt"
	b_wait_gone "$B_HTTPDIRFS_PID" 30
	if [ "$LINK" = loopback ] && [ "$rep" = "$BENCH_REPS" ]; then
		rm -rf "$BENCH_DIR/warm/httpdirfs-cache"
		mv "$cache" "$BENCH_DIR/warm/httpdirfs-cache"
	else
		rm -rf "$cache"
	fi
done
