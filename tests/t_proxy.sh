# A shared caching proxy (nginx with the slice module) in front of an origin
# server: a second machine's cold read through nidofs is served from the
# proxy's cache, with no request reaching the origin.
source "$(dirname "$0")/lib.sh"
t_setup

mkdir -p "$T_DIR/www" "$T_DIR/proxy-cache" "$T_DIR/proxy-tmp"
head -c $((5 * 1048576 + 999)) /dev/urandom >"$T_DIR/www/disk.raw"
start_nginx "$T_DIR/www" || { not_ok "start the origin"; t_done; }
origin_log=$NGINX_LOG
proxy_port=$(t_free_port)
cat >"$T_DIR/proxy.conf" <<CONF
daemon off;
master_process off;
error_log $T_DIR/proxy-error.log;
pid $T_DIR/proxy.pid;
events { worker_connections 64; }
http {
    access_log $T_DIR/proxy-access.log;
    client_body_temp_path $T_DIR/proxy-tmp;
    proxy_temp_path $T_DIR/proxy-tmp;
    fastcgi_temp_path $T_DIR/proxy-tmp;
    uwsgi_temp_path $T_DIR/proxy-tmp;
    scgi_temp_path $T_DIR/proxy-tmp;
    proxy_cache_path $T_DIR/proxy-cache levels=1:2 keys_zone=images:10m max_size=1g inactive=1d;
    server {
        listen 127.0.0.1:$proxy_port;
        location / {
            slice 1m;
            proxy_cache images;
            proxy_cache_key \$uri\$slice_range;
            proxy_set_header Range \$slice_range;
            proxy_cache_valid 200 206 1d;
            proxy_pass http://127.0.0.1:$NGINX_PORT;
        }
    }
}
CONF
nginx -c "$T_DIR/proxy.conf" -e "$T_DIR/proxy-error.log" &
T_PIDS+=($!)
t_wait_for "the proxy" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$proxy_port" || { not_ok "start the proxy"; t_done; }
write_catalog_raw "$T_DIR/catalog.json" blob 1 "http://127.0.0.1:$proxy_port/disk.raw" "$T_DIR/www/disk.raw"

mnt="$T_DIR/mnt"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json" || { not_ok "mount"; t_done; }
check "first machine reads the image through the proxy" cmp "$mnt/catalog/blob/1/disk.raw" "$T_DIR/www/disk.raw"
umount_nidofs "$mnt"
origin_before=$(grep -c '^GET /disk.raw ' "$origin_log")
check "the origin served the first machine" test "$origin_before" -gt 0

export NIDO_HOME="$T_DIR/home2"
mkdir -p "$NIDO_HOME"
mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"
check "second machine (empty cache) reads the same bytes" cmp "$mnt/catalog/blob/1/disk.raw" "$T_DIR/www/disk.raw"
check "second machine's read made no request to the origin" \
	test "$(grep -c '^GET /disk.raw ' "$origin_log")" = "$origin_before"
check "the proxy answered the second machine" test "$(grep -c 'GET /disk.raw' "$T_DIR/proxy-access.log")" -gt 1
umount_nidofs "$mnt"
t_done
