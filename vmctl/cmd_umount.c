/* `nido umount [--stop-vms]`: unmounts the nidofs mount of this state
 * directory. VMs that read their base image through the mount would lose it,
 * so the unmount is refused while they run, unless they are stopped first. */
#include "vmctl/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmctl/spawn.h"
#include "vmctl/vm.h"
#include "vmctl/vmuse.h"

#define UMOUNT_TIMEOUT_MS 30000

/* Lists (or, with stop, stops) the VMs that read through mnt; returns how many remain. */
static int vms_on_mount(struct nido_ctx *ctx, const char *mnt, int stop)
{
	char **names, err[1024];
	size_t count;
	int busy = 0;

	if (vm_list(ctx->home, &names, &count) < 0)
		return 0;
	for (size_t i = 0; i < count; i++) {
		if (!vm_reads_through(ctx->home, names[i], mnt))
			continue;
		if (stop && vm_stop(ctx->home, names[i], 0, err, sizeof(err)) == 0) {
			printf("%s: stopped\n", names[i]);
			continue;
		}
		fprintf(stderr, "nido: VM %s reads its base image through %s%s%s\n", names[i], mnt,
			stop ? ": cannot stop it: " : "", stop ? err : "");
		busy++;
	}
	vm_list_free(names, count);
	return busy;
}

int cmd_umount(struct nido_ctx *ctx, int argc, char **argv)
{
	const char *args[] = { "fusermount3", "-u", NULL, NULL };
	int stop = argc == 1 && strcmp(argv[0], "--stop-vms") == 0;
	char mnt[4096], err[1024];

	if (argc > 1 || (argc == 1 && !stop)) {
		fprintf(stderr, "usage: nido umount [--stop-vms]\n");
		return 2;
	}
	if (find_mount(ctx->home, mnt, sizeof(mnt)) < 0)
		return fail("no nidofs mount runs for %s", ctx->home);
	if (vms_on_mount(ctx, mnt, stop) > 0)
		return fail("%s: not unmounted: running VMs read their base image through it; "
			    "stop them, or run 'nido umount --stop-vms'", mnt);
	args[2] = mnt;
	if (spawn_run(args, -1, -1, UMOUNT_TIMEOUT_MS, err, sizeof(err)) < 0)
		return fail("%s: unmount failed: %s", mnt, err);
	printf("%s: unmounted\n", mnt);
	return 0;
}
