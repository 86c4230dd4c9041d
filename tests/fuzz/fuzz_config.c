/* libFuzzer harness for config_parse. Any bytes must either fail with a
 * message and leave the configuration unchanged, or give values within the
 * bounds that vm_create and the QEMU command line rely on. The formatted text
 * of an accepted configuration must parse back to the same text. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/config.h"
#include "vmctl/seed.h"

/* The replay test in tests/unit includes this file under another name. */
#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void config_fail(const char *problem)
{
	fprintf(stderr, "fuzz_config: %s\n", problem);
	abort();
}

static int config_has_control(const char *text)
{
	for (; *text; text++)
		if ((unsigned char)*text < 0x20 || *text == 0x7f)
			return 1;
	return 0;
}

static void config_check_bounds(const struct nido_config *cfg)
{
	if (cfg->memory_mb < 64 || cfg->memory_mb > 1024 * 1024)
		config_fail("memory out of bounds");
	if (cfg->cpus < 1 || cfg->cpus > 256)
		config_fail("cpus out of bounds");
	if (cfg->port_min < 1024 || cfg->port_min > cfg->port_max || cfg->port_max > 65535)
		config_fail("port range out of bounds");
	if (cfg->ssh_port > 65535 || cfg->stop_timeout < 1 || cfg->stop_timeout > 3600)
		config_fail("ssh_port or stop_timeout out of bounds");
	if (!seed_valid_user(cfg->user))
		config_fail("user name that seed_valid_user rejects");
	if (config_has_control(cfg->image) || config_has_control(cfg->ssh_key) ||
	    config_has_control(cfg->catalog_url) || config_has_control(cfg->ca_file))
		config_fail("text value with a control character");
	if (cfg->network != NET_OPEN && cfg->network != NET_RESTRICTED)
		config_fail("network mode out of range");
	if (cfg->accel != ACCEL_AUTO && cfg->accel != ACCEL_KVM && cfg->accel != ACCEL_TCG)
		config_fail("accel mode out of range");
}

/* Formats cfg, parses the text over the defaults and formats again. */
static void config_check_round_trip(const struct nido_config *cfg)
{
	struct nido_config again;
	char err[512] = "";
	char *text = config_format(cfg), *text2;

	if (!text)
		config_fail("config_format failed");
	config_defaults(&again);
	if (config_parse(&again, text, strlen(text), err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_config: %s\n%s", err, text);
		config_fail("formatted configuration does not parse");
	}
	text2 = config_format(&again);
	if (!text2 || strcmp(text, text2) != 0)
		config_fail("formatted configuration changes when parsed again");
	free(text);
	free(text2);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct nido_config cfg, before;
	char err[512] = "";
	int rc;

	config_defaults(&cfg);
	before = cfg;
	/* config_parse takes a length, so the bytes get no terminating NUL. */
	rc = config_parse(&cfg, (const char *)data, size, err, sizeof(err));
	if (rc < 0) {
		if (rc != -ENOMEM && !err[0])
			config_fail("failed without a message");
		if (memcmp(&cfg, &before, sizeof(cfg)) != 0)
			config_fail("a failed parse changed the configuration");
		if (config_has_control(err))
			config_fail("message with a control character");
		return 0;
	}
	config_check_bounds(&cfg);
	config_check_round_trip(&cfg);
	return 0;
}
