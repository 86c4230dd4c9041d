/* The host port of each VM's SSH forward on 127.0.0.1, chosen in the
 * configured range [port_min, port_max]. A port is taken when another VM's
 * config records it (running or not, so a stopped VM keeps its port) or when
 * a test bind(2) on 127.0.0.1 fails. <home>/ports.lock is held with flock(2)
 * from choosing a port until QEMU has bound it, so two VMs started at once
 * cannot choose the same port. */
#ifndef NIDO_PORTS_H
#define NIDO_PORTS_H

#include <stddef.h>

/* Takes the exclusive lock on <home>/ports.lock, waiting for other holders,
 * and stores its descriptor in *fd for ports_unlock. */
int ports_lock(const char *home, int *fd);
void ports_unlock(int fd);

/* Returns 1 when a TCP socket with SO_REUSEADDR, as QEMU opens for a
 * forward, can bind 127.0.0.1:port now, 0 when the port is in use, or -errno
 * for another failure. */
int ports_bindable(unsigned port);

/* Chooses a port in [min, max] for the VM self: the first one after `after`
 * (0: start at min), wrapping around, that no other VM under <home>/vms
 * records and that is bindable. Call with the lock held. Returns 0,
 * -EADDRNOTAVAIL when every port is taken, or -errno. */
int ports_choose(const char *home, const char *self, unsigned min, unsigned max,
		 unsigned after, unsigned *port);

#endif
