/* Millisecond deadlines on the monotonic clock, for waits that must end. */
#ifndef NIDO_DEADLINE_H
#define NIDO_DEADLINE_H

#include <stdint.h>
#include <time.h>

static inline int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns the milliseconds until deadline, at least 0 and at most INT32_MAX. */
static inline int ms_left(int64_t deadline)
{
	int64_t left = deadline - monotonic_ms();

	if (left < 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Sleeps for ms milliseconds; a signal may end the sleep early. */
static inline void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

#endif
