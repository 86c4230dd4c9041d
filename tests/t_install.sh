# `make install` into a temporary root with PREFIX=/usr, then the installed
# files at work: the programs run, the installed nidofs mounts a local
# catalog and its installed default catalog, mount.fuse3 and mount(8) start
# it, systemd-analyze accepts the user unit, the bash completion completes,
# and `make uninstall` removes every file that was installed.
source "$(dirname "$0")/lib.sh"
t_setup

DEST="$T_DIR/root"
BIN="$DEST/usr/bin"
DATA="$DEST/usr/share/nidofs"
UNIT="$DEST/usr/lib/systemd/user/nidofs.service"
INSTALLED="usr/bin/nido
usr/bin/nidofs
usr/lib/systemd/user/nidofs.service
usr/share/bash-completion/completions/nido
usr/share/man/man1/nido.1
usr/share/man/man1/nidofs.1
usr/share/man/man5/nidofs.5
usr/share/nidofs/catalog.json"

# The sanitizer build lives in build-san/, which the Makefile picks by SANITIZE.
MAKE_ARGS=(DESTDIR="$DEST" PREFIX=/usr)
[ "$T_BUILD" = build ] || MAKE_ARGS+=("SANITIZE=address,undefined")

installed_files() {
	(cd "$DEST" && find . \( -type f -o -type l \) -printf '%P\n' | sort)
}

if make -C "$T_ROOT" install "${MAKE_ARGS[@]}" >"$T_DIR/install.log" 2>&1; then
	ok "make install"
else
	sed 's/^/# /' "$T_DIR/install.log" >&2
	not_ok "make install"
	t_done
fi
check "make install installs the expected files" \
	diff <(printf '%s\n' "$INSTALLED") <(installed_files)
check "programs are installed executable" test -x "$BIN/nidofs" -a -x "$BIN/nido"
same_as_sources() {
	cmp "$DEST/usr/share/man/man1/nidofs.1" "$T_ROOT/man/nidofs.1" &&
		cmp "$DEST/usr/share/man/man1/nido.1" "$T_ROOT/man/nido.1" &&
		cmp "$DEST/usr/share/man/man5/nidofs.5" "$T_ROOT/man/nidofs.5" &&
		cmp "$DEST/usr/share/bash-completion/completions/nido" "$T_ROOT/vmctl/nido.bash-completion" &&
		cmp "$UNIT" "$T_ROOT/fs/nidofs.service" &&
		cmp "$DATA/catalog.json" "$T_ROOT/fetch/default-catalog.json"
}
check "installed files are the sources" same_as_sources

# The installed programs, from the temporary root.
NIDOFS="$BIN/nidofs"
NIDO="$BIN/nido"
check "nidofs --version" bash -c "'$NIDOFS' --version | grep -q '^nidofs [0-9][0-9.]* (libfuse '"
check "nido --version" bash -c "'$NIDO' --version | grep -q '^nido [0-9][0-9.]*\$'"
check "nidofs -h" bash -c "'$NIDOFS' -h | grep -q '^usage: nidofs '"
check "nido -h" bash -c "'$NIDO' -h | grep -q '^usage: nido '"

# A mount of a local catalog: one raw image served by nginx on 127.0.0.1.
mkdir -p "$T_DIR/www"
head -c $((3 * 1048576 + 4321)) /dev/urandom >"$T_DIR/www/disk.raw"
start_nginx "$T_DIR/www" || { not_ok "start nginx"; t_done; }
write_catalog_raw "$T_DIR/catalog.json" blob 1 "http://127.0.0.1:$NGINX_PORT/disk.raw" "$T_DIR/www/disk.raw"
mnt="$T_DIR/mnt"
if mount_nidofs "$mnt" -o catalog="$T_DIR/catalog.json"; then
	ok "installed nidofs mounts a local catalog"
	check "image reads through the installed nidofs" cmp "$mnt/catalog/blob/1/disk.raw" "$T_DIR/www/disk.raw"
	check "installed nidofs unmounts" umount_nidofs "$mnt"
else
	not_ok "installed nidofs mounts a local catalog"
fi

# The installed default catalog: the compiled-in DATADIR is /usr/share/nidofs,
# outside the temporary root, so NIDO_DATADIR points at the installed copy.
export NIDO_DATADIR="$DATA"
catalog_names() {
	python3 -c 'import json, sys; print("\n".join(sorted(i["name"] for i in json.load(open(sys.argv[1]))["images"])))' "$1"
}
default_catalog_shown() {
	diff <(catalog_names "$DATA/catalog.json") <(ls "$mnt/catalog" | sort)
}
check "nidofs --check reads the installed default catalog" \
	bash -c "'$NIDOFS' --check | grep -qF 'ok: $DATA/catalog.json: '"
if mount_nidofs "$mnt"; then
	check "mount shows the installed default catalog" default_catalog_shown
	check "log names the installed default catalog" grep -qF "catalog $DATA/catalog.json" "$NIDOFS_LOG"
	umount_nidofs "$mnt"
else
	not_ok "mount shows the installed default catalog"
fi
check "nido lists the installed default catalog" \
	bash -c "'$NIDO' image list --json | grep -q '\"tag\":'"

# unmount_detached MOUNTPOINT: unmounts a daemon that detached, and waits
# for it to exit. Its pid is in the mount record, which it writes when it
# serves its first request and removes at exit.
unmount_detached() {
	local pid
	pid=$(cut -d' ' -f1 "$NIDO_HOME/mount")
	fusermount3 -u "$1" && t_wait_gone "$pid" 10
}

# mount.fuse3, as mount(8) runs it for type fuse.nidofs and an empty source.
# The daemon detaches, so it is stopped by unmounting.
T_MOUNTS+=("$mnt")
if PATH="$BIN:$PATH" mount.fuse3 "" "$mnt" -t fuse.nidofs \
	-o nodev,nosuid,catalog="$T_DIR/catalog.json" 2>"$T_DIR/helper.err"; then
	check "mount.fuse3 starts the installed nidofs" test -d "$mnt/catalog/blob/1"
	check "mount.fuse3 mount unmounts" unmount_detached "$mnt"
else
	sed 's/^/# /' "$T_DIR/helper.err" >&2
	not_ok "mount.fuse3 starts the installed nidofs"
fi

# in_bin_namespace COMMAND...: runs COMMAND in a private mount namespace in
# which /usr/local/bin is the installed bin directory. mount(8) gives its
# helper no PATH, and systemd finds a bare ExecStart= name in a fixed search
# path; both find the programs there as they would after an installation
# with PREFIX=/usr/local. Needs root (unshare -m).
in_bin_namespace() {
	unshare -m bash -c 'mount --bind "$1" /usr/local/bin && shift && exec "$@"' _ "$BIN" "$@"
}
if [ "$(id -u)" -ne 0 ] || ! in_bin_namespace true 2>/dev/null; then
	ok "mount(8) starts nidofs # SKIP needs root and unshare -m"
	ok "systemd-analyze verify # SKIP needs root and unshare -m"
else
	# mount(8) as nidofs(1) shows it; the mount exists only in the namespace,
	# so the check and the unmount run there too.
	cat >"$T_DIR/mount8.sh" <<'SH'
mnt=$1 catalog=$2
mount -t fuse.nidofs "" "$mnt" -o catalog="$catalog" || exit 1
test -d "$mnt/catalog/blob/1"
status=$?
# The daemon writes its mount record when it serves its first request.
pid=$(cut -d' ' -f1 "$NIDO_HOME/mount")
fusermount3 -u "$mnt" || status=1
for _ in $(seq 100); do
	kill -0 "$pid" 2>/dev/null || exit $status
	sleep 0.1
done
exit 1
SH
	out=$(in_bin_namespace bash "$T_DIR/mount8.sh" "$mnt" "$T_DIR/catalog.json" 2>&1)
	status=$?
	[ -z "$out" ] || printf '# %s\n' "$out" >&2
	if [ "$status" -eq 0 ]; then ok "mount(8) starts nidofs"; else not_ok "mount(8) starts nidofs"; fi

	# systemd-analyze verify exits 0 after warnings, so any output fails the
	# check. MANPATH lets it find the man pages of Documentation=, and
	# --user needs a runtime directory.
	mkdir -m 700 "$T_DIR/run"
	verify_unit() {
		local out
		out=$(MANPATH="$DEST/usr/share/man" XDG_RUNTIME_DIR="$T_DIR/run" \
			in_bin_namespace systemd-analyze --user verify "$1" 2>&1) || { printf '# %s\n' "$out" >&2; return 1; }
		[ -z "$out" ] || { printf '# %s\n' "$out" >&2; return 1; }
	}
	if ! command -v systemd-analyze >/dev/null || ! command -v man >/dev/null; then
		echo "# systemd-analyze or man not found: install the systemd and man-db packages" >&2
		not_ok "systemd-analyze verify"
	else
		check "systemd-analyze verify" verify_unit "$UNIT"
		sed 's/^ExecStart=nidofs /ExecStart=nidofs-missing /' "$UNIT" >"$T_DIR/broken.service"
		if verify_unit "$T_DIR/broken.service" 2>/dev/null; then
			not_ok "verify rejects a missing program"
		else
			ok "verify rejects a missing program"
		fi
	fi
fi

# The installed bash completion, with the installed nido first in PATH and
# the local catalog as the one nido reads.
mkdir -p "$NIDO_HOME/vms/web"
cp "$T_DIR/catalog.json" "$NIDO_HOME/catalog.json"
# complete_line LINE: prints the completions of LINE, one a line.
complete_line() {
	PATH="$BIN:$PATH" bash -c '
		source "$1"
		COMP_LINE=$2
		COMP_POINT=${#2}
		_nido nido
		printf "%s\n" "${COMPREPLY[@]}"' _ "$DEST/usr/share/bash-completion/completions/nido" "$1"
}
completes() {
	complete_line "$1" | grep -qxF -- "$2" && return 0
	echo "# '$1' does not complete to '$2': $(complete_line "$1" | tr '\n' ' ')" >&2
	return 1
}
check "completion: commands" completes "nido st" stop
check "completion: image subcommands" completes "nido image p" pull
check "completion: image tags" completes "nido image pull blob" blob:1
check "completion: tag after a colon" completes "nido spawn web --image blob:" 1
check "completion: spawn flags" completes "nido spawn web --m" --memory
check "completion: VM names" completes "nido stop w" web
check "completion: configuration keys" completes "nido config ne" network
check "completion: configuration values" completes "nido config accel k" kvm
rm -rf "$NIDO_HOME/vms/web"

if make -C "$T_ROOT" uninstall "${MAKE_ARGS[@]}" >"$T_DIR/uninstall.log" 2>&1; then
	ok "make uninstall"
else
	sed 's/^/# /' "$T_DIR/uninstall.log" >&2
	not_ok "make uninstall"
fi
check "make uninstall leaves no file" diff /dev/null <(installed_files)

t_done
