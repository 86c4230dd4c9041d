# Shared helpers of the benchmark: timing, result records, nginx, nidofs and
# httpdirfs mounts, and cleanup. Each workload script sources this file, calls
# b_setup, and leaves cleanup to the trap. `run` exports the variables below.
#
#   BENCH_DIR      scratch folder of this run (served files in www/)
#   BENCH_RESULTS  JSON-lines file that every measurement is appended to
#   BENCH_QUICK    1 for the short mode
#   BENCH_REPS     repetitions of each workload
#   BENCH_NETNS_S, BENCH_NETNS_C, BENCH_SHAPED_ADDR
#                  the shaped link's server and client namespaces and the
#                  server's address (see netns.sh)
# shellcheck shell=bash

B_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B_HERE="$B_ROOT/tests/bench"
NIDOFS="$B_ROOT/build/nidofs"
NIDO="$B_ROOT/build/nido"
B_PIDS=()
B_MOUNTS=()

b_setup() {
	B_TMP=$(mktemp -d "$BENCH_DIR/w.XXXXXX")
	chmod 755 "$B_TMP"
	trap b_cleanup EXIT
}

b_cleanup() {
	local m p
	for m in "${B_MOUNTS[@]}"; do
		mountpoint -q "$m" || continue
		b_stop_vms "$m"
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
	done
	for p in "${B_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${B_PIDS[@]}"; do
		b_wait_gone "$p" 10
	done
	b_kill_vm_qemus "$B_TMP"
	rm -rf "$B_TMP"
}

b_log() {
	printf '%s  %s\n' "$(date +%T)" "$*" >&2
}

b_now() { date +%s.%N; }

# b_since START: seconds since START (from b_now), to the millisecond.
b_since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }'; }

b_drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

b_wait_gone() {
	local pid=$1 limit=${2:-10} i
	for ((i = 0; i < limit * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# b_wait_for WHAT SECONDS COMMAND...: polls every 50 ms until COMMAND succeeds.
b_wait_for() {
	local what=$1 limit=$2 i
	shift 2
	for ((i = 0; i < limit * 20; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.05
	done
	b_log "timed out after ${limit}s waiting for $what"
	return 1
}

# b_record WORKLOAD SUBJECT METRIC VALUE [KEY=VALUE...]: appends one measurement.
# Extra pairs are stored as strings (for example rep=2 or link=shaped).
b_record() {
	python3 - "$BENCH_RESULTS" "$@" <<'PY'
import json, sys
out, workload, subject, metric, value, *extra = sys.argv[1:]
rec = {"workload": workload, "subject": subject, "metric": metric, "value": float(value)}
for pair in extra:
    key, _, val = pair.partition("=")
    rec[key] = val
with open(out, "a") as f:
    f.write(json.dumps(rec) + "\n")
PY
}

# b_in_client CMD...: runs CMD on the client side of the shaped link when
# LINK=shaped, else as it is. nsenter keeps the mount namespace, so FUSE
# mounts made there are visible to the rest of the benchmark. Background
# commands use b_client_prefix instead, so that $! is the command's own pid
# (nsenter executes CMD in place).
b_in_client() {
	if [ "${LINK:-loopback}" = shaped ]; then
		nsenter --net="/run/netns/$BENCH_NETNS_C" -- "$@"
	else
		"$@"
	fi
}

b_client_prefix() {
	B_CLIENT=()
	[ "${LINK:-loopback}" = shaped ] && B_CLIENT=(nsenter --net="/run/netns/$BENCH_NETNS_C" --)
	return 0
}

b_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# b_start_nginx ROOT: serves ROOT and sets B_URL (the base URL clients use) and
# B_NGINX_LOG (method, path, status, body bytes, range, request time, end time). On the
# shaped link nginx runs in the server namespace behind the delaying proxy.
b_start_nginx() {
	local root=$1 conf="$B_TMP/nginx.conf" port
	port=$(b_free_port)
	B_NGINX_LOG="$B_TMP/nginx-access.log"
	mkdir -p "$B_TMP/nginx-tmp"
	cat >"$conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $B_TMP/nginx-error.log;
pid $B_TMP/nginx.pid;
events { worker_connections 512; }
http {
    log_format bench '\$request_method \$uri \$status \$body_bytes_sent "\$http_range" \$request_time \$msec';
    access_log $B_NGINX_LOG bench;
    client_body_temp_path $B_TMP/nginx-tmp;
    proxy_temp_path $B_TMP/nginx-tmp;
    fastcgi_temp_path $B_TMP/nginx-tmp;
    uwsgi_temp_path $B_TMP/nginx-tmp;
    scgi_temp_path $B_TMP/nginx-tmp;
    sendfile on;
    keepalive_requests 100000;
    types { application/octet-stream qcow2 img raw; application/json json; }
    server {
        listen 127.0.0.1:$port;
        root $root;
    }
}
CONF
	if [ "${LINK:-loopback}" = shaped ]; then
		local pport
		pport=$(b_free_port)
		ip netns exec "$BENCH_NETNS_S" nginx -c "$conf" -e "$B_TMP/nginx-error.log" &
		B_PIDS+=($!)
		ip netns exec "$BENCH_NETNS_S" python3 "$B_HERE/delayproxy.py" \
			--listen "$BENCH_SHAPED_ADDR:$pport" --upstream "127.0.0.1:$port" --delay-ms 20 &
		B_PIDS+=($!)
		B_URL="http://$BENCH_SHAPED_ADDR:$pport"
		b_wait_for "the delaying proxy" 10 \
			b_in_client bash -c "exec 3<>/dev/tcp/$BENCH_SHAPED_ADDR/$pport" || return 1
	else
		nginx -c "$conf" -e "$B_TMP/nginx-error.log" &
		B_PIDS+=($!)
		B_URL="http://127.0.0.1:$port"
	fi
	# Any HTTP response will do, because the folder itself has no index.
	b_wait_for "nginx" 10 b_in_client curl -s -o /dev/null -I "$B_URL/" || {
		tail -5 "$B_TMP/nginx-error.log" >&2
		return 1
	}
}

# b_nginx_bytes PATH: body bytes nginx sent for PATH so far.
b_nginx_bytes() {
	awk -v p="$1" '$2 == p { s += $4 } END { printf "%d", s }' "$B_NGINX_LOG"
}

# b_new_home DIR: a nidofs state directory; VMs run restricted under TCG and
# are killed 1 s after the ACPI power-down when removed (they are discarded).
b_new_home() {
	mkdir -p "$1"
	printf 'network = restricted\naccel = tcg\nstop_timeout = 1\nmemory = %s\ncpus = %s\n' \
		"${B_VM_MEMORY:-1024}" "${B_VM_CPUS:-1}" >"$1/config"
}

# b_mount_nidofs MOUNTPOINT HOME CATALOG: mounts in the foreground, in the
# background of this shell; sets B_NIDOFS_PID.
b_mount_nidofs() {
	local mnt=$1 home=$2 catalog=$3
	mkdir -p "$mnt"
	b_client_prefix
	B_NIDOFS_PID=$(
		NIDO_HOME=$home "${B_CLIENT[@]}" "$NIDOFS" -f -o catalog="$catalog" "$mnt" \
			>>"$B_TMP/nidofs.log" 2>&1 &
		echo $!
	)
	B_PIDS+=("$B_NIDOFS_PID")
	B_MOUNTS+=("$mnt")
	b_wait_for "the nidofs mount on $mnt" 10 mountpoint -q "$mnt"
}

# b_umount MOUNTPOINT PID: unmounts and waits for the daemon to exit.
b_umount() {
	b_stop_vms "$1"
	fusermount3 -u "$1" || fusermount3 -uz "$1"
	b_wait_gone "$2" 30 || b_log "daemon $2 still runs 30 s after the unmount of $1"
}

# b_mount_httpdirfs URL MOUNTPOINT CACHE_DIR: mounts one file with httpdirfs and
# its disk cache; sets B_HTTPDIRFS_PID. httpdirfs 1.2.5 (Debian 12) concludes
# that nginx 1.22 cannot serve ranges, although nginx returns 206 to its range
# request, so its range check is turned off with its own --no-range-check.
b_mount_httpdirfs() {
	local url=$1 mnt=$2 cache=$3
	mkdir -p "$mnt" "$cache"
	b_client_prefix
	B_HTTPDIRFS_PID=$(
		"${B_CLIENT[@]}" httpdirfs -f --cache --cache-location "$cache" --no-range-check \
			--single-file-mode "$url" "$mnt" >>"$B_TMP/httpdirfs.log" 2>&1 &
		echo $!
	)
	B_PIDS+=("$B_HTTPDIRFS_PID")
	B_MOUNTS+=("$mnt")
	b_wait_for "the httpdirfs mount on $mnt" 10 mountpoint -q "$mnt"
}

b_stop_vms() {
	local d
	for d in "$1"/vms/*/; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
}

# Ends the QEMU of every VM in the state directories under $1, by the pid in its
# pidfile, after checking that the process is that VM's QEMU.
b_kill_vm_qemus() {
	local pf pid
	for pf in "$1"/*/vms/*/qemu.pid "$1"/*/*/vms/*/qemu.pid; do
		[ -f "$pf" ] || continue
		pid=$(cat "$pf")
		if tr '\0' '\n' </proc/"$pid"/cmdline 2>/dev/null | grep -qxF "$pf"; then
			kill -9 "$pid" 2>/dev/null
			b_wait_gone "$pid" 10
		fi
	done
}

# b_catalog OUT NAME VERSION URL FILE FORMAT: a catalog with one entry whose
# checksum is read from FILE.sha256 (written once by `run`).
b_catalog() {
	python3 "$B_HERE/catalog.py" single --out "$1" --name "$2" --version "$3" --url "$4" \
		--file "$5" --format "$6"
}

# b_info_fetched MOUNT TAG_PATH: "requests bytes" from the entry's info file.
b_info_fetched() {
	sed -n 's/^requests: \([0-9]*\) (\([0-9]*\) bytes fetched.*/\1 \2/p' "$1/catalog/$2/info"
}

# b_read_time FILE [MIB]: reads FILE (or its first MIB MiB) sequentially with
# 1 MiB reads; prints the seconds taken.
b_read_time() {
	local start
	start=$(b_now)
	if [ -n "${2:-}" ]; then
		dd if="$1" of=/dev/null bs=1M count="$2" iflag=fullblock status=none || return 1
	else
		dd if="$1" of=/dev/null bs=1M status=none || return 1
	fi
	b_since "$start"
}

# b_curl_time URL [MIB]: downloads URL (or its first MIB MiB) to /dev/null
# with one stream; prints the seconds taken.
b_curl_time() {
	local range=()
	[ -n "${2:-}" ] && range=(-r "0-$(($2 * 1048576 - 1))")
	b_in_client curl -sf "${range[@]}" -o /dev/null -w '%{time_total}\n' "$1"
}

b_reps() { seq 1 "${1:-$BENCH_REPS}"; }
