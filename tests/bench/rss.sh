#!/usr/bin/env bash
# Peak resident memory of the nidofs daemon during a cold sequential read of
# huge.raw (2 GiB, 256 MiB in the quick mode) on loopback, until the checksum
# check that follows the last block has finished. The peak is the kernel's
# VmHWM of the daemon. (seqread.sh records httpdirfs's VmHWM for comparison.)
set -u
source "$(dirname "$0")/lib.sh"
b_setup

file="$BENCH_DIR/www/huge.raw"
size=$(stat -c %s "$file")
b_start_nginx "$BENCH_DIR/www" || exit 1
b_catalog "$B_TMP/catalog.json" huge 1 "$B_URL/huge.raw" "$file" raw

hwm_kib() { awk '/^VmHWM:/ { print $2 }' /proc/"$1"/status; }

for rep in $(b_reps); do
	home="$B_TMP/nh$rep"
	mnt="$B_TMP/mnt$rep"
	b_new_home "$home"
	b_drop_caches
	b_mount_nidofs "$mnt" "$home" "$B_TMP/catalog.json" || exit 1
	t=$(b_read_time "$mnt/catalog/huge/1/disk.raw") || { b_log "nidofs read failed"; exit 1; }
	at_end=$(hwm_kib "$B_NIDOFS_PID")
	b_wait_for "the checksum check" 120 grep -q 'complete, verified' "$mnt/catalog/huge/1/info"
	peak=$(hwm_kib "$B_NIDOFS_PID")
	b_record rss nidofs peak_kib "$peak" read_end_kib="$at_end" seconds="$t" bytes="$size" rep="$rep"
	b_log "rss nidofs rep $rep: VmHWM $at_end KiB after the read ($t s), $peak KiB after the checksum check"
	b_umount "$mnt" "$B_NIDOFS_PID"
	rm -rf "$home"
done
