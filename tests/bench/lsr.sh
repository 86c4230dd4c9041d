#!/usr/bin/env bash
# `ls -lR` of the catalog folder of a catalog with BENCH_LS_ENTRIES versions,
# against `ls -lR` of a copy of the same tree on local disk (folders, sparse
# files of the same sizes, the same symlinks). Both are timed warm: one
# untimed listing of each first, then BENCH_REPS timed ones.
set -u
source "$(dirname "$0")/lib.sh"
b_setup

python3 "$B_HERE/catalog.py" many --out "$B_TMP/catalog.json" --entries "$BENCH_LS_ENTRIES" \
	--url-base "http://127.0.0.1:9/unused"
b_new_home "$B_TMP/home"
start=$(b_now)
b_mount_nidofs "$B_TMP/mnt" "$B_TMP/home" "$B_TMP/catalog.json" || exit 1
b_record ls_lR nidofs mount_seconds "$(b_since "$start")"

# The local copy is built from the first listing, which also warms both sides.
ls -lR --time-style=+%s "$B_TMP/mnt/catalog" >"$B_TMP/listing.mount"
python3 "$B_HERE/lstree.py" "$B_TMP/listing.mount" "$B_TMP/local" || exit 1
ls -lR --time-style=+%s "$B_TMP/local" >"$B_TMP/listing.local"
# Type, file size, name and link target; times, links, owners and folder
# sizes may differ.
same() {
	awk '$1 != "total" && NF >= 7 { t = substr($1, 1, 1); print t, (t == "d" ? "" : $5), $7, $9 }' "$1"
}
if ! cmp -s <(same "$B_TMP/listing.mount") <(same "$B_TMP/listing.local"); then
	b_log "ls_lR: the local copy lists differently from the mount"
	exit 1
fi
entries=$(grep -c '/catalog/[^/]*/[^/]*:$' "$B_TMP/listing.mount")
b_log "ls_lR: $entries version folders, $(wc -l <"$B_TMP/listing.mount") lines of output"
for subject in nidofs local; do
	dir="$B_TMP/mnt/catalog"
	[ "$subject" = local ] && dir="$B_TMP/local"
	for rep in $(b_reps); do
		start=$(b_now)
		ls -lR "$dir" >/dev/null
		t=$(b_since "$start")
		b_record ls_lR "$subject" seconds "$t" entries="$entries" rep="$rep"
		b_log "ls_lR $subject rep $rep: $t s"
	done
done
