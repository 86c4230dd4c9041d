/* Unit tests of the configuration file parser. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/config.h"
#include "tests/unit/unit.h"

static void test_defaults(void)
{
	struct nido_config cfg;
	char buf[256];

	config_defaults(&cfg);
	CHECK("default user is vmuser", strcmp(cfg.user, "vmuser") == 0);
	CHECK("default network is open", cfg.network == NET_OPEN);
	CHECK("default accel is auto", cfg.accel == ACCEL_AUTO);
	CHECK("catalog url points at the Nido registry",
	      strstr(cfg.catalog_url, "Josepavese/nido") && strstr(cfg.catalog_url, "registry/images.json"));
	CHECK("get port range", config_get(&cfg, "port_range", buf, sizeof(buf)) == 0);
	CHECK("default port range", strcmp(buf, "50022-50999") == 0);
}

static void test_parse(void)
{
	struct nido_config cfg;
	const char text[] = "# comment\n\nimage = debian:12\nmemory=2048\n  network = restricted  \n"
			    "port_range = 2000-2100\ncache_max = 20G\n";
	char err[256];

	config_defaults(&cfg);
	CHECK("valid file parses", config_parse(&cfg, text, sizeof(text) - 1, err, sizeof(err)) == 0);
	CHECK("image set", strcmp(cfg.image, "debian:12") == 0);
	CHECK("memory set", cfg.memory_mb == 2048);
	CHECK("network restricted", cfg.network == NET_RESTRICTED);
	CHECK("port range minimum set", cfg.port_min == 2000);
	CHECK("port range maximum set", cfg.port_max == 2100);
	CHECK("size suffix", cfg.cache_max == 20ull << 30);
}

static void test_reject(void)
{
	static const char *const bad[] = {
		"memory = 12\n", "memory = lots\n", "cpus = 0\n", "network = wide\n", "user = root\n",
		"user = Bad User\n", "port_range = 80-90\n", "port_range = 3000-2000\n", "nokey = 1\n",
		"image\n", "accel = fast\n", "cache_max = 1X\n", "memory = -5\n",
	};
	struct nido_config cfg, before;
	char err[256];

	config_defaults(&cfg);
	before = cfg;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[96];
		const char *text = bad[i];
		char full[128];

		snprintf(full, sizeof(full), "memory = 4096\n%s", text);
		snprintf(name, sizeof(name), "rejects %.*s", (int)strcspn(text, "\n"), text);
		CHECK(name, config_parse(&cfg, full, strlen(full), err, sizeof(err)) == -EINVAL &&
		      strstr(err, "line 2") && memcmp(&cfg, &before, sizeof(cfg)) == 0);
	}
}

static void test_roundtrip(void)
{
	struct nido_config a, b;
	char err[256];
	char *text;

	config_defaults(&a);
	config_set(&a, "memory", "512", err, sizeof(err));
	config_set(&a, "network", "restricted", err, sizeof(err));
	text = config_format(&a);
	config_defaults(&b);
	CHECK("format parses back", text && config_parse(&b, text, strlen(text), err, sizeof(err)) == 0);
	CHECK("round trip keeps values", memcmp(&a, &b, sizeof(a)) == 0);
	free(text);
}

int main(void)
{
	test_defaults();
	test_parse();
	test_reject();
	test_roundtrip();
	return unit_exit();
}
