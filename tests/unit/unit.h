/* A minimal unit test harness: each check prints `ok NAME` or `not ok NAME`,
 * and unit_exit() returns non-zero when any check failed. */
#ifndef NIDO_UNIT_H
#define NIDO_UNIT_H

#include <stdio.h>

static int unit_failures;

#define CHECK(name, cond)                                                        \
	do {                                                                     \
		if (cond) {                                                      \
			printf("ok %s\n", name);                                 \
		} else {                                                         \
			printf("not ok %s (%s:%d: %s)\n", name, __FILE__, __LINE__, #cond); \
			unit_failures++;                                         \
		}                                                                \
	} while (0)

static inline int unit_exit(void)
{
	return unit_failures ? 1 : 0;
}

#endif
