# Shared helpers for the shell tests: temporary state, an nginx server on
# 127.0.0.1, a nidofs mount, the test image, and `ok`/`not ok` reporting.
# Every test sources this file, calls t_setup, and leaves cleanup to the trap.
# shellcheck shell=bash

T_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T_BUILD=${BUILD:-build}
NIDOFS="$T_ROOT/$T_BUILD/nidofs"
NIDO="$T_ROOT/$T_BUILD/nido"
T_PIDS=()
T_MOUNTS=()
T_FAILED=0

t_setup() {
	T_DIR=$(mktemp -d /tmp/nidofs-test.XXXXXX)
	chmod 755 "$T_DIR"
	export NIDO_HOME="$T_DIR/home"
	mkdir -p "$NIDO_HOME"
	# Every VM a test boots is cut off from the outside and runs under TCG.
	printf "network = restricted\naccel = %s\nstop_timeout = 5\n" "${T_ACCEL:-tcg}" >"$NIDO_HOME/config"
	trap t_cleanup EXIT
}

t_cleanup() {
	local m p
	set +e # cleanup runs to the end even in scripts that use set -e
	for m in "${T_MOUNTS[@]}"; do
		t_stop_vms "$m"
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
	done
	for p in "${T_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${T_PIDS[@]}"; do
		t_wait_gone "$p" 10
	done
	t_kill_vm_qemus
	rm -rf "$T_DIR"
}

# Ends the QEMU of every VM under $NIDO_HOME by the pid in its pidfile, after
# checking that the process is that VM's QEMU.
t_kill_vm_qemus() {
	local pf pid
	for pf in "$NIDO_HOME"/vms/*/qemu.pid; do
		[ -f "$pf" ] || continue
		pid=$(cat "$pf")
		if tr '\0' '\n' </proc/"$pid"/cmdline 2>/dev/null | grep -qxF "$pf"; then
			kill -9 "$pid" 2>/dev/null
			t_wait_gone "$pid" 10
		fi
	done
}

t_stop_vms() {
	local d
	for d in "$1"/vms/*/; do
		if [ -d "$d" ]; then rmdir "$d" 2>/dev/null; fi
	done
	return 0
}

t_wait_gone() {
	local pid=$1 limit=${2:-10} i
	for ((i = 0; i < limit * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

ok() { echo "ok $*"; }
not_ok() { echo "not ok $*"; T_FAILED=$((T_FAILED + 1)); }

# check NAME COMMAND...: runs the command and reports its outcome as NAME.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# Waits up to $2 seconds for the command "$3..." to succeed.
t_wait_for() {
	local what=$1 limit=$2 i
	shift 2
	for ((i = 0; i < limit * 10; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# timed out after ${limit}s waiting for $what" >&2
	return 1
}

t_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_nginx ROOT: serves ROOT on 127.0.0.1; sets NGINX_PORT and NGINX_LOG
# (one line per request: method, path, status, bytes, range).
start_nginx() {
	local root=$1 conf="$T_DIR/nginx.conf"
	NGINX_PORT=$(t_free_port)
	NGINX_LOG="$T_DIR/nginx-access.log"
	mkdir -p "$T_DIR/nginx-tmp"
	cat >"$conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $T_DIR/nginx-error.log;
pid $T_DIR/nginx.pid;
events { worker_connections 256; }
http {
    log_format nido '\$request_method \$uri \$status \$body_bytes_sent "\$http_range"';
    access_log $T_DIR/nginx-access.log nido;
    client_body_temp_path $T_DIR/nginx-tmp;
    proxy_temp_path $T_DIR/nginx-tmp;
    fastcgi_temp_path $T_DIR/nginx-tmp;
    uwsgi_temp_path $T_DIR/nginx-tmp;
    scgi_temp_path $T_DIR/nginx-tmp;
    types { application/octet-stream qcow2 img raw; application/json json; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $root;
    }
}
CONF
	nginx -c "$conf" -e "$T_DIR/nginx-error.log" &
	T_PIDS+=($!)
	t_wait_for "nginx on port $NGINX_PORT" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NGINX_PORT" || {
		cat "$T_DIR/nginx-error.log" >&2
		return 1
	}
}

# Counts the GET requests for a path in the nginx log.
nginx_requests() {
	grep -c "^GET $1 " "$NGINX_LOG" 2>/dev/null || true
}

# mount_nidofs MOUNTPOINT [OPTIONS...]: mounts in the foreground, in the background
# of this shell; sets NIDOFS_PID and NIDOFS_LOG.
mount_nidofs() {
	local mnt=$1
	shift
	mkdir -p "$mnt"
	NIDOFS_LOG="$T_DIR/nidofs.log"
	# Started from a subshell so that killing it in a test prints no job notice.
	NIDOFS_PID=$(
		"$NIDOFS" -f "$@" "$mnt" >>"$NIDOFS_LOG" 2>&1 &
		echo $!
	)
	T_PIDS+=("$NIDOFS_PID")
	T_MOUNTS+=("$mnt")
	t_wait_for "the mount on $mnt" 10 mountpoint -q "$mnt"
}

umount_nidofs() {
	fusermount3 -u "$1" && t_wait_gone "$NIDOFS_PID" 10
}

# The tiny test image: built once from Debian packages and cached.
tiny_image() {
	"$T_ROOT/tests/images/build-tiny.sh"
}

# write_catalog FILE NAME VERSION URL FILE_ON_DISK [ALIAS...]: a catalog with one entry.
write_catalog() {
	local out=$1 name=$2 version=$3 url=$4 file=$5
	shift 5
	python3 - "$out" "$name" "$version" "$url" "$file" "$@" <<'PY'
import hashlib, json, os, sys
out, name, version, url, path, *aliases = sys.argv[1:]
digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
entry = {"version": version, "aliases": aliases, "arch": "amd64", "url": url,
         "checksum_type": "sha256", "checksum": digest,
         "size_bytes": os.path.getsize(path), "format": "qcow2"}
doc = {"schema_version": "1", "updated_at": "2026-12-01T00:00:00Z",
       "images": [{"name": name, "registry": "official", "description": "test image",
                   "homepage": "http://127.0.0.1/", "versions": [entry]}]}
json.dump(doc, open(out, "w"), indent=2)
PY
}

t_done() {
	exit $((T_FAILED > 0))
}

# start_faultserver ROOT: the fault-injecting server on 127.0.0.1; sets FAULT_PORT
# and FAULT_LOG (one line per request: method, target, range, status, bytes, fault).
start_faultserver() {
	FAULT_LOG="$T_DIR/fault-requests.log"
	python3 "$T_ROOT/tests/faultserver.py" --root "$1" --port 0 --port-file "$T_DIR/fault.port" \
		--log "$FAULT_LOG" >/dev/null 2>>"$T_DIR/faultserver.err" &
	T_PIDS+=($!)
	t_wait_for "the fault server" 10 test -s "$T_DIR/fault.port"
	FAULT_PORT=$(cat "$T_DIR/fault.port")
}

# fault NAME [PARAM=VALUE...]: switches the fault server's fault.
fault() {
	local name=$1 query
	shift
	query="fault=$name"
	for p in "$@"; do query="$query&$p"; done
	curl -sf -o /dev/null "http://127.0.0.1:$FAULT_PORT/_ctl/set?$query"
}

fault_clear() {
	curl -sf -o /dev/null "http://127.0.0.1:$FAULT_PORT/_ctl/clear"
}

# write_catalog_raw FILE NAME VERSION URL FILE_ON_DISK: one raw entry.
write_catalog_raw() {
	write_catalog "$@"
	sed -i 's/"format": "qcow2"/"format": "raw"/' "$1"
}

now() { date +%s.%N; }
elapsed_since() { python3 -c "import sys,time; print(int(time.time() - float(sys.argv[1])))" "$1"; }

# serve_random_blob BYTES: a file of BYTES random bytes served by the fault
# server from $T_DIR/www/disk.raw as raw catalog entry blob:1 in
# $T_DIR/catalog.json, with a copy in $T_DIR/orig.raw.
serve_random_blob() {
	mkdir -p "$T_DIR/www"
	head -c "$1" /dev/urandom >"$T_DIR/www/disk.raw"
	cp "$T_DIR/www/disk.raw" "$T_DIR/orig.raw"
	start_faultserver "$T_DIR/www"
	write_catalog_raw "$T_DIR/catalog.json" blob 1 "http://127.0.0.1:$FAULT_PORT/disk.raw" "$T_DIR/www/disk.raw"
}

# serve_tiny_image [ALIAS...]: the tiny test image served by nginx from
# $T_DIR/www as catalog entry tiny:1.0 in $T_DIR/catalog.json, booted by
# mkdir (image = tiny:1.0). Reports not ok and ends the test on failure.
serve_tiny_image() {
	local image
	image=$(tiny_image) || { not_ok "build the tiny test image"; t_done; }
	mkdir -p "$T_DIR/www"
	cp "$image" "$T_DIR/www/tiny.qcow2"
	start_nginx "$T_DIR/www" || { not_ok "start nginx"; t_done; }
	write_catalog "$T_DIR/catalog.json" tiny 1.0 "http://127.0.0.1:$NGINX_PORT/tiny.qcow2" \
		"$T_DIR/www/tiny.qcow2" "$@"
	echo "image = tiny:1.0" >>"$NIDO_HOME/config"
}
