/* Absolute times on CLOCK_REALTIME, the clock of pthread_cond_timedwait. */
#ifndef NIDO_CLOCK_H
#define NIDO_CLOCK_H

#include <time.h>

/* Returns the time ms milliseconds from now. */
static inline struct timespec realtime_after_ms(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

#endif
