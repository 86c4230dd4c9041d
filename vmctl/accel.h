/* The choice between KVM and TCG. /dev/kvm can exist while KVM guests still
 * fail (QEMU aborts on an MSR it cannot set under -cpu host, or the guest
 * stops with a KVM internal error), so with accel=auto a short probe decides:
 * a small QEMU with KVM and no disk runs SeaBIOS for about a second and QMP
 * query-status must report "running". The verdict is cached in
 * <home>/kvm-verdict, keyed by kernel release and QEMU binary. */
#ifndef NIDO_ACCEL_H
#define NIDO_ACCEL_H

#include <stddef.h>

#include "fetch/config.h"

struct accel_choice {
	int kvm;		/* 1: accel=kvm with -cpu host; 0: TCG */
	char name[8];		/* "kvm" or "tcg" */
	char note[400];		/* why auto chose TCG, e.g. "kvm unusable: internal-error"; else empty */
};

/* Returns 1 when KVM guests run on this host, 0 when they do not (the reason
 * goes to reason), or -errno when no verdict could be reached (the cause goes
 * to reason). Probes at most once per kernel and QEMU binary. A missing or
 * inaccessible /dev/kvm is checked on every call and not cached, because
 * joining the kvm group fixes it. */
int accel_kvm_usable(const char *home, char *reason, size_t len);

/* Chooses the accelerator for mode. kvm and tcg are taken as they are, and
 * auto uses KVM only when accel_kvm_usable returns 1. When the probe cannot
 * run, auto falls back to TCG and the note gives the cause. */
void accel_choose(const char *home, enum accel_mode mode, struct accel_choice *out);

#endif
