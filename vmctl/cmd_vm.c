/* `nido spawn|ls|info|start|stop|rm|ssh`: VMs in the shared state directory. */
#include "vmctl/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fetch/cache.h"
#include "fetch/files.h"
#include "fetch/log.h"
#include "vmctl/deadline.h"
#include "vmctl/sshkey.h"
#include "vmctl/vm.h"

/* How long `nido ssh` waits for the guest's SSH server: a first boot under
 * TCG with cloud-init can take minutes, so this is generous. */
#define SSH_WAIT_SECONDS 120
#define SSH_BANNER_WAIT_MS 1000
#define SSH_POLL_MS 1000

static int check_name(const char *name)
{
	char quoted[160];

	if (vm_name_valid(name))
		return 0;
	return fail("invalid VM name '%s': use 1-63 letters, digits and '-', not starting with '-'",
		    log_escape(name, quoted, sizeof(quoted)));
}

static int vm_exists(struct nido_ctx *ctx, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/vms/%s", ctx->home, name);
	return access(path, F_OK) == 0;
}

/* Checks NAME and that the VM exists; returns 0 or an exit status. */
static int existing_vm(struct nido_ctx *ctx, int argc, char **argv, const char *usage)
{
	if (argc < 1) {
		fprintf(stderr, "usage: nido %s\n", usage);
		return 2;
	}
	if (check_name(argv[0]))
		return 1;
	if (!vm_exists(ctx, argv[0]))
		return fail("VM %s: not found; see 'nido ls'", argv[0]);
	return 0;
}

static cJSON *vm_json(struct nido_ctx *ctx, const char *name)
{
	struct vm_status st;
	char line[700], path[4096], *text = NULL;
	size_t len;
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "name", name);
	if (vm_status(ctx->home, name, &st) == 0) {
		vm_status_format(&st, line, sizeof(line));
		cJSON_AddStringToObject(o, "state", line);
		cJSON_AddNumberToObject(o, "pid", st.pid);
		cJSON_AddNumberToObject(o, "ssh_port", st.ssh_port);
		cJSON_AddStringToObject(o, "accel", st.accel);
	}
	snprintf(path, sizeof(path), "%s/vms/%s/image", ctx->home, name);
	if (read_file(path, 256, &text, &len) == 0) {
		text[strcspn(text, "\n")] = '\0';
		cJSON_AddStringToObject(o, "image", text);
		free(text);
	}
	snprintf(path, sizeof(path), "%s/vms/%s/ssh", ctx->home, name);
	if (read_file(path, 8192, &text, &len) == 0) {
		text[strcspn(text, "\n")] = '\0';
		cJSON_AddStringToObject(o, "ssh", text);
		free(text);
	}
	return o;
}

static const char *json_text(const cJSON *o, const char *key)
{
	const cJSON *item = cJSON_GetObjectItem(o, key);

	return cJSON_IsString(item) ? item->valuestring : "-";
}

int cmd_ls(struct nido_ctx *ctx, int argc, char **argv)
{
	char **names;
	size_t count;
	cJSON *arr;
	int rc;

	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "usage: nido ls [--json]\n");
		return 2;
	}
	if ((rc = vm_list(ctx->home, &names, &count)) < 0)
		return fail("%s/vms: cannot list: %s", ctx->home, strerror(-rc));
	arr = cJSON_CreateArray();
	for (size_t i = 0; i < count; i++)
		cJSON_AddItemToArray(arr, vm_json(ctx, names[i]));
	vm_list_free(names, count);
	if (ctx->json)
		return print_json(arr);
	if (cJSON_GetArraySize(arr) > 0)
		printf("%-20s %-24s %-6s %s\n", "NAME", "IMAGE", "PORT", "STATE");
	for (cJSON *o = arr->child; o; o = o->next)
		printf("%-20s %-24s %-6.0f %s\n", json_text(o, "name"), json_text(o, "image"),
		       cJSON_GetObjectItem(o, "ssh_port") ? cJSON_GetObjectItem(o, "ssh_port")->valuedouble : 0,
		       json_text(o, "state"));
	cJSON_Delete(arr);
	return 0;
}

int cmd_info(struct nido_ctx *ctx, int argc, char **argv)
{
	int rc = existing_vm(ctx, argc, argv, "info NAME [--json]");
	cJSON *o;

	if (rc)
		return rc;
	o = vm_json(ctx, argv[0]);
	if (ctx->json)
		return print_json(o);
	printf("name:   %s\nimage:  %s\nstate:  %s\nssh:    %s\n", json_text(o, "name"), json_text(o, "image"),
	       json_text(o, "state"), json_text(o, "ssh"));
	cJSON_Delete(o);
	return 0;
}

static int run_vm_op(struct nido_ctx *ctx, int argc, char **argv, const char *usage, int op)
{
	char err[1024] = "";
	int force = argc > 1 && strcmp(argv[1], "--force") == 0;
	int rc = existing_vm(ctx, argc, argv, usage);

	if (rc)
		return rc;
	if (argc > (op == 1 ? 2 : 1) || (argc > 1 && !force)) {
		fprintf(stderr, "usage: nido %s\n", usage);
		return 2;
	}
	if (op == 0)
		rc = vm_start(ctx->home, argv[0], err, sizeof(err));
	else if (op == 1)
		rc = vm_stop(ctx->home, argv[0], force, err, sizeof(err));
	else
		rc = vm_destroy(ctx->home, argv[0], err, sizeof(err));
	/* err starts with "vm NAME:" already. */
	if (rc < 0 && err[0])
		return fail("%s", err);
	if (rc < 0)
		return fail("vm %s: %s", argv[0], strerror(-rc));
	return 0;
}

int cmd_start(struct nido_ctx *ctx, int argc, char **argv)
{
	return run_vm_op(ctx, argc, argv, "start NAME", 0);
}

int cmd_stop(struct nido_ctx *ctx, int argc, char **argv)
{
	return run_vm_op(ctx, argc, argv, "stop NAME [--force]", 1);
}

int cmd_rm(struct nido_ctx *ctx, int argc, char **argv)
{
	return run_vm_op(ctx, argc, argv, "rm NAME", 2);
}

/* Fails unless the VM runs, then waits up to SSH_WAIT_SECONDS for its SSH
 * server's banner, because right after a spawn the guest is still booting.
 * Returns 0 or an exit status after printing the reason. */
static int wait_for_ssh(struct nido_ctx *ctx, const char *name, unsigned port)
{
	int64_t deadline = monotonic_ms() + SSH_WAIT_SECONDS * 1000;
	struct vm_status st;
	char state[700];
	int rc, announced = 0;

	for (;;) {
		if ((rc = vm_status(ctx->home, name, &st)) < 0)
			return fail("vm %s: cannot read its state: %s", name, strerror(-rc));
		if (st.state != VM_RUNNING && st.state != VM_BOOTING) {
			vm_status_format(&st, state, sizeof(state));
			return fail("vm %s: not running (state: %s); start it with 'nido start %s'",
				    name, state, name);
		}
		if (vm_ssh_answers(port, SSH_BANNER_WAIT_MS))
			return 0;
		if (ms_left(deadline) == 0)
			return fail("vm %s: its SSH server did not answer on 127.0.0.1:%u within %d s; "
				    "see its console.log", name, port, SSH_WAIT_SECONDS);
		if (!announced && isatty(STDERR_FILENO)) {
			fprintf(stderr, "nido: vm %s: waiting up to %d s for its SSH server on 127.0.0.1:%u\n",
				name, SSH_WAIT_SECONDS, port);
			announced = 1;
		}
		sleep_ms(SSH_POLL_MS);
	}
}

int cmd_ssh(struct nido_ctx *ctx, int argc, char **argv)
{
	struct nido_config cfg;
	struct ssh_key key;
	char path[4096], err[1024], port[16], target[64];
	const char *args[64];
	int n = 0, rc = existing_vm(ctx, argc, argv, "ssh NAME [COMMAND...]");

	if (rc)
		return rc;
	if (argc > 40)
		return fail("too many arguments");
	config_defaults(&cfg);
	snprintf(path, sizeof(path), "%s/vms/%s/config", ctx->home, argv[0]);
	if (config_load(path, &cfg, err, sizeof(err)) < 0)
		return fail("%s", err);
	if (cfg.ssh_port == 0)
		return fail("VM %s: no SSH port recorded in %s", argv[0], path);
	if ((rc = wait_for_ssh(ctx, argv[0], cfg.ssh_port)))
		return rc;
	if (sshkey_find(ctx->home, &cfg, &key, err, sizeof(err)) < 0)
		return fail("VM %s: %s", argv[0], err);
	snprintf(port, sizeof(port), "%u", cfg.ssh_port);
	snprintf(target, sizeof(target), "%s@127.0.0.1", cfg.user);
	args[n++] = "ssh";
	if (key.private_path[0]) {
		args[n++] = "-i";
		args[n++] = key.private_path;
	}
	args[n++] = "-p";
	args[n++] = port;
	args[n++] = "-o";
	args[n++] = "StrictHostKeyChecking=no";
	args[n++] = "-o";
	args[n++] = "UserKnownHostsFile=/dev/null";
	args[n++] = "-o";
	args[n++] = "LogLevel=ERROR";
	/* The server responded just now, but a guest that hangs must not leave ssh waiting forever. */
	args[n++] = "-o";
	args[n++] = "ConnectTimeout=20";
	args[n++] = target;
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	execvp("ssh", (char *const *)args);
	return fail("cannot run ssh: %s", strerror(errno));
}
