# nidofs build: three parts, each a static library or program.
#   fetch/  -> build/libfetch.a   (catalog, HTTP, block cache, log, config)
#   vmctl/  -> build/libvmctl.a   (overlay, seed, QEMU control) and the `nido` program
#   fs/     -> the `nidofs` FUSE daemon
# SANITIZE=address,undefined builds into build-san/ instead of build/.

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/nidofs
MANDIR  ?= $(PREFIX)/share/man
COMPDIR ?= $(PREFIX)/share/bash-completion/completions
UNITDIR ?= $(PREFIX)/lib/systemd/user
VERSION := 0.1.0

CC      ?= cc
PKGS    := fuse3 libcurl libcjson libqcow libcrypto libzstd liblzma libarchive libisofs-1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

# snprintf truncation is checked by return value where a cut name would matter.
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wformat=2 -Wwrite-strings -Wno-format-truncation
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) -D_FILE_OFFSET_BITS=64 -D_GNU_SOURCE \
        -DFUSE_USE_VERSION=35 -DNIDO_VERSION='"$(VERSION)"' \
        -DNIDO_DATADIR='"$(DATADIR)"' -I. $(PKG_CFLAGS) -pthread -MMD -MP

ifdef SANITIZE
BUILD := build-san
ALL_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
else
BUILD := build
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

FETCH_SRC := $(wildcard fetch/*.c)
VMCTL_SRC := $(filter-out vmctl/nido.c vmctl/cmd_%.c,$(wildcard vmctl/*.c))
NIDO_SRC  := vmctl/nido.c $(wildcard vmctl/cmd_*.c)
FS_SRC    := $(wildcard fs/*.c)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
LIBFETCH := $(BUILD)/libfetch.a
LIBVMCTL := $(BUILD)/libvmctl.a
PROGS    := $(BUILD)/nidofs $(BUILD)/nido
UNITS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

all: $(PROGS) nidofs nido

# Links at the top level so that `./nidofs` and `./nido` run from the work tree.
nidofs nido: %: $(BUILD)/%
	$(Q)ln -sf $< $@

# Objects are rebuilt when the flags change (PREFIX is compiled in).
$(BUILD)/flags: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS)' | cmp -s - $@ || echo '$(CC) $(ALL_CFLAGS)' >$@

$(BUILD)/%.o: %.c $(BUILD)/flags
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBFETCH): $(call obj,$(FETCH_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBVMCTL): $(call obj,$(VMCTL_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/nidofs: $(call obj,$(FS_SRC)) $(LIBVMCTL) $(LIBFETCH)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS)

$(BUILD)/nido: $(call obj,$(NIDO_SRC)) $(LIBVMCTL) $(LIBFETCH)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBVMCTL) $(LIBFETCH)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS)

units: $(UNITS)

# The test runner prints `N passed, N failed` as its last line.
check: all units
	$(Q)BUILD=$(BUILD) tests/run

# check-asan: `make check` with AddressSanitizer, LeakSanitizer and
# UndefinedBehaviorSanitizer, built into build-san/. Every sanitized program
# (nidofs, nido, the unit tests) writes its reports to SAN_LOG_DIR/report.PID,
# and the run fails when any report exists, even where no test noticed.
# clang is the default: with GCC 12 the UBSan runtime ignores log_path when
# ASan is linked too, so its reports would only reach the daemon's stderr.
SAN_CC      ?= $(if $(shell command -v clang 2>/dev/null),clang,$(CC))
SAN_CFLAGS  ?= -O1 -g -Wno-unknown-warning-option
SAN_LOG_DIR ?= $(CURDIR)/build-san/sanitizer-logs
SAN_COMMON  := halt_on_error=1:print_stacktrace=1:log_path=$(SAN_LOG_DIR)/report
SAN_ENV     := ASAN_OPTIONS=$(SAN_COMMON):detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=$(SAN_COMMON) \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitizer/lsan.supp:print_suppressions=0

check-asan:
	$(Q)case "$(SAN_CC)" in *clang*) ;; *) echo "check-asan: clang not found;" \
		"$(SAN_CC) writes UBSan reports to stderr only, so only failed tests show them" ;; esac
	$(Q)rm -rf $(SAN_LOG_DIR) && mkdir -p $(SAN_LOG_DIR)
	$(Q)$(SAN_ENV) $(MAKE) SANITIZE=address,undefined CC=$(SAN_CC) CFLAGS="$(SAN_CFLAGS)" check; \
	status=$$?; \
	if [ -n "$$(ls -A $(SAN_LOG_DIR))" ]; then \
		cat $(SAN_LOG_DIR)/*; \
		echo "check-asan: sanitizer reports in $(SAN_LOG_DIR) (shown above)"; \
		exit 1; \
	fi; \
	echo "check-asan: no sanitizer report"; \
	exit $$status

# check-valgrind: each unit test program under valgrind; any memory error or
# leak (definite or indirect) fails it. valgrind 3.19 (Debian 12) does not
# implement pidfd_open, so test_vm_boot, which stops the QEMU it boots through
# a pidfd, would leave that QEMU running: it is left out. See
# tests/sanitizer/valgrind-units for the pidfd checks of test_vm_parts.
VALGRIND       ?= valgrind
VALGRIND_FLAGS ?= --error-exitcode=1 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
VALGRIND_UNITS ?= $(filter-out %/test_vm_boot,$(UNITS))

check-valgrind: $(VALGRIND_UNITS)
	$(Q)tests/sanitizer/valgrind-units "$(VALGRIND) $(VALGRIND_FLAGS)" $(VALGRIND_UNITS)

# fuzz: builds each tests/fuzz/fuzz_NAME.c with clang's libFuzzer, ASan and
# UBSan into build-san/fuzz/ and runs it for FUZZ_SECONDS on its seed corpus
# tests/fuzz/corpus/NAME; fails when a harness finds a crash (see tests/fuzz/run).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build-san/fuzz
FUZZERS      := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz:
	$(Q)$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) CFLAGS="$(SAN_CFLAGS)" \
		SANITIZE=fuzzer-no-link,address,undefined $(addprefix $(FUZZ_BUILD)/fuzz/,$(FUZZERS))
	$(Q)tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZERS)

$(BUILD)/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(LIBVMCTL) $(LIBFETCH)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -pthread -o $@ $^ $(PKG_LIBS)

bench: all
	$(Q)tests/bench/run

# Runs the main job once on a local demo server; see README.md.
demo: all
	$(Q)tests/demo.sh

# Installs the Debian packages that build, tests and demo need (as root).
deps:
	apt-get update
	grep -v '^#' tests/debian-packages | DEBIAN_FRONTEND=noninteractive xargs apt-get install -y --no-install-recommends

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(COMPDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/nidofs $(BUILD)/nido $(DESTDIR)$(BINDIR)/
	install -m 0644 fetch/default-catalog.json $(DESTDIR)$(DATADIR)/catalog.json
	install -m 0644 man/nidofs.1 man/nido.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/nidofs.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 vmctl/nido.bash-completion $(DESTDIR)$(COMPDIR)/nido
	install -m 0644 fs/nidofs.service $(DESTDIR)$(UNITDIR)/nidofs.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/nidofs $(DESTDIR)$(BINDIR)/nido \
		$(DESTDIR)$(DATADIR)/catalog.json $(DESTDIR)$(MANDIR)/man1/nidofs.1 \
		$(DESTDIR)$(MANDIR)/man1/nido.1 $(DESTDIR)$(MANDIR)/man5/nidofs.5 \
		$(DESTDIR)$(COMPDIR)/nido $(DESTDIR)$(UNITDIR)/nidofs.service
	-rmdir $(DESTDIR)$(DATADIR)

clean:
	rm -rf build build-san nidofs nido

.PHONY: FORCE all units check check-asan check-valgrind fuzz bench demo deps install uninstall clean
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
