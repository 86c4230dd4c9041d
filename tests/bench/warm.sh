#!/usr/bin/env bash
# Reads of a completely cached big.raw on loopback, from the state that
# seqread.sh kept in $BENCH_DIR/warm:
#   warm_seq     sequential read through nidofs, through httpdirfs and of the
#                cache file itself, first with the page cache dropped, then
#                again at once with it warm;
#   rand_4k      fio random 4 KiB reads (direct and buffered) of the same three.
set -u
source "$(dirname "$0")/lib.sh"
b_setup

home="$BENCH_DIR/warm/nidofs-home"
hcache="$BENCH_DIR/warm/httpdirfs-cache"
[ -d "$home" ] && [ -d "$hcache" ] || { b_log "no warm state: run seqread.sh loopback first"; exit 1; }
b_start_nginx "$BENCH_DIR/www" || exit 1
b_catalog "$B_TMP/catalog.json" big 1 "$B_URL/big.raw" "$BENCH_DIR/www/big.raw" raw
b_mount_nidofs "$B_TMP/mnt" "$home" "$B_TMP/catalog.json" || exit 1
b_mount_httpdirfs "$B_URL/big.raw" "$B_TMP/hmnt" "$hcache" || exit 1
size=$(stat -c %s "$BENCH_DIR/www/big.raw")
local_file=$(ls "$home"/images/*/disk.raw)
grep -q 'complete, verified' "$B_TMP/mnt/catalog/big/1/info" || { b_log "nidofs cache is not complete"; exit 1; }

declare -A files=(
	[nidofs]="$B_TMP/mnt/catalog/big/1/disk.raw"
	[httpdirfs]="$B_TMP/hmnt/big.raw"
	[local]="$local_file"
)

: >"$B_NGINX_LOG"
for rep in $(b_reps); do
	for subject in nidofs httpdirfs local; do
		b_drop_caches
		t=$(b_read_time "${files[$subject]}") || { b_log "$subject read failed"; exit 1; }
		b_record warm_seq_dropped "$subject" seconds "$t" bytes="$size" rep="$rep"
		t2=$(b_read_time "${files[$subject]}") || exit 1
		b_record warm_seq_hot "$subject" seconds "$t2" bytes="$size" rep="$rep"
		b_log "warm_seq $subject rep $rep: $t s page cache dropped, $t2 s warm"
	done
done

# fio: 4 KiB random reads, one job, queue depth 1, for a fixed time.
run_fio() {
	local file=$1 direct=$2
	fio --name=rand --filename="$file" --readonly --rw=randread --bs=4k --direct="$direct" \
		--ioengine=psync --numjobs=1 --time_based --runtime="$BENCH_FIO_SECONDS" \
		--randseed=42 --output-format=json 2>>"$B_TMP/fio.err" |
		python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["jobs"][0]["read"]["iops"])'
}

for rep in $(b_reps); do
	for mode in direct buffered; do
		for subject in nidofs httpdirfs local; do
			b_drop_caches
			iops=$(run_fio "${files[$subject]}" "$([ "$mode" = direct ] && echo 1 || echo 0)")
			[ -n "$iops" ] || { b_log "fio on $subject failed: $(tail -3 "$B_TMP/fio.err")"; continue; }
			b_record "rand_4k_$mode" "$subject" iops "$iops" rep="$rep"
			b_log "rand_4k $mode $subject rep $rep: $iops IOPS"
		done
	done
done
requests=$(wc -l <"$B_NGINX_LOG")
[ "$requests" -eq 0 ] || b_log "warm reads made $requests requests to the server"
