#!/usr/bin/env bash
# Lazy boot over the shaped link (100 Mbit/s, 20 ms before each response).
# Usage: LINK=shaped boot.sh tiny|debian
#
# Each repetition runs two boots, each with a new state directory:
#   cold          mkdir vms/NAME with nothing cached, until the boot is done.
#   pull + boot   `nido image pull` of the whole image, then the same mkdir.
#                 The boot part alone is the warm boot.
# "Done" is NIDO-TINY-BOOT-OK on the console for tiny, and the `ready` file
# (the guest's SSH server accepts connections) for debian. For debian the run also times
# curl of the whole image on the same link, and traces once (perf record,
# first warm boot) which bytes of the base image QEMU reads, for the ratio
# of bytes fetched to distinct bytes read.
set -u
NAME=$1
source "$(dirname "$0")/lib.sh"
b_setup

image="$BENCH_DIR/www/$NAME.qcow2"
size=$(stat -L -c %s "$image")
if [ "$NAME" = tiny ]; then
	B_VM_MEMORY=256 B_VM_CPUS=1 limit=120
	booted() { grep -q NIDO-TINY-BOOT-OK "$1/console"; }
else
	B_VM_MEMORY=1024 B_VM_CPUS=2 limit=300
	booted() { test -e "$1/ready"; }
fi
b_start_nginx "$BENCH_DIR/www" || exit 1
b_catalog "$B_TMP/catalog.json" "$NAME" 1 "$B_URL/$NAME.qcow2" "$image" qcow2
mkdir -p "$BENCH_OUT/samples"

# boot_vm MOUNT VM: makes the VM and prints the seconds until it booted.
boot_vm() {
	local start
	start=$(b_now)
	mkdir "$1/vms/$2" || return 1
	b_wait_for "the boot of $2" "$limit" booted "$1/vms/$2" || return 1
	b_since "$start"
}

start_sampler() {
	python3 "$B_HERE/sampler.py" "$1" "$2" &
	B_SAMPLER=$!
	B_PIDS+=("$B_SAMPLER")
}

stop_sampler() {
	kill "$B_SAMPLER" && b_wait_gone "$B_SAMPLER" 5
}

# Records every pread64 and preadv in the system with perf: unlike strace it
# does not stop QEMU's threads, so the traced boot runs at full speed.
start_read_trace() {
	perf record -a -m 16M -o "$B_TMP/reads.data" -e syscalls:sys_enter_pread64,syscalls:sys_exit_pread64 \
		-e syscalls:sys_enter_preadv,syscalls:sys_exit_preadv 2>"$B_TMP/perf.err" &
	B_PERF=$!
	B_PIDS+=("$B_PERF")
	b_wait_for "perf record" 10 test -s "$B_TMP/reads.data" || sleep 1
}

# stop_read_trace STATE_VMDIR: ends the trace and prints the distinct bytes
# that the VM's QEMU read from its base image.
stop_read_trace() {
	local pid fd
	pid=$(cat "$1/qemu.pid")
	fd=$(find /proc/"$pid"/fd -lname '*/images/*' -printf '%f\n' | head -1)
	kill -INT "$B_PERF"
	b_wait_gone "$B_PERF" 60
	[ -n "$fd" ] || { b_log "no base image among QEMU's open files"; return 1; }
	python3 "$B_HERE/readtrace.py" -v "$B_TMP/reads.data" "$fd" "$pid" || {
		b_log "perf record: $(tail -3 "$B_TMP/perf.err")"
		return 1
	}
}

cold_boot() {
	local rep=$1 home="$B_TMP/cold$1" mnt="$B_TMP/mnt"
	b_new_home "$home"
	echo "image = $NAME:1" >>"$home/config"
	b_mount_nidofs "$mnt" "$home" "$B_TMP/catalog.json" || return 1
	: >"$B_NGINX_LOG"
	start_sampler "$home" "$BENCH_OUT/samples/$NAME-cold-$rep.txt"
	t=$(boot_vm "$mnt" b1) || { b_log "cold boot of $NAME failed"; tail -5 "$mnt/vms/b1/console" >&2; return 1; }
	read -r requests fetched <<<"$(b_info_fetched "$mnt" "$NAME/1")"
	stop_sampler
	b_record "boot_$NAME" cold seconds "$t" rep="$rep" requests="$requests" fetched="$fetched" \
		served="$(b_nginx_bytes "/$NAME.qcow2")" size="$size"
	b_log "boot $NAME cold rep $rep: $t s, $requests requests, $fetched bytes fetched of $size"
	b_umount "$mnt" "$B_NIDOFS_PID"
	rm -rf "$home"
}

pull_then_boot() {
	local rep=$1 trace=$2 home="$B_TMP/pull$1" mnt="$B_TMP/mnt" start tp tb
	b_new_home "$home"
	echo "image = $NAME:1" >>"$home/config"
	b_mount_nidofs "$mnt" "$home" "$B_TMP/catalog.json" || return 1
	start_sampler "$home" "$BENCH_OUT/samples/$NAME-pull-$rep.txt"
	start=$(b_now)
	NIDO_HOME=$home b_in_client "$NIDO" image pull "$NAME:1" >/dev/null 2>"$B_TMP/pull.err" ||
		{ b_log "nido image pull failed: $(tail -2 "$B_TMP/pull.err")"; return 1; }
	tp=$(b_since "$start")
	[ "$trace" = 1 ] && start_read_trace
	tb=$(boot_vm "$mnt" b1) || { b_log "warm boot of $NAME failed"; return 1; }
	stop_sampler
	# A failed trace costs only its own row of the table.
	if [ "$trace" = 1 ] && distinct=$(stop_read_trace "$home/vms/b1"); then
		b_record "boot_$NAME" guest_reads distinct_bytes "$distinct" size="$size"
		b_log "boot $NAME: QEMU read $distinct distinct bytes of the $size-byte image"
	fi
	b_record "boot_$NAME" pull seconds "$tp" rep="$rep"
	b_record "boot_$NAME" warm seconds "$tb" rep="$rep" traced="$trace"
	b_record "boot_$NAME" pull_then_boot seconds "$(awk -v a="$tp" -v b="$tb" 'BEGIN { print a + b }')" rep="$rep"
	b_log "boot $NAME rep $rep: pull $tp s, then warm boot $tb s"
	b_umount "$mnt" "$B_NIDOFS_PID"
	rm -rf "$home"
}

for rep in $(b_reps "$BENCH_BOOT_REPS"); do
	cold_boot "$rep" || exit 1
	trace=0
	[ "$NAME" = debian ] && [ "$rep" = 1 ] && trace=1
	pull_then_boot "$rep" "$trace" || exit 1
done

if [ "$NAME" = debian ]; then
	for rep in $(b_reps "$BENCH_BOOT_REPS"); do
		t=$(b_curl_time "$B_URL/$NAME.qcow2") || { b_log "curl failed"; exit 1; }
		b_record "boot_$NAME" curl seconds "$t" rep="$rep" size="$size"
		b_log "boot $NAME: curl of the whole image $t s"
	done
fi
