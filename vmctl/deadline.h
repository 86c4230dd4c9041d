/* Millisecond deadlines on the monotonic clock, for waits that must end. */
#ifndef NIDO_DEADLINE_H
#define NIDO_DEADLINE_H

#include <errno.h>
#include <poll.h>
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

/* Waits until fd is ready for events; 0, -ETIMEDOUT at the deadline, or -errno. */
static inline int poll_until(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&pfd, 1, ms_left(deadline));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

/* Sleeps for ms milliseconds; a signal may end the sleep early. */
static inline void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

#endif
