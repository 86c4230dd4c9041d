/* The readiness watcher: a thread that writes <home>/vms/NAME/ready once the
 * guest's SSH server responds on its forwarded port, notes there whether
 * cloud-init has finished (from its message on the serial console), and
 * removes the file when the VM is not running. */
#ifndef NIDO_FS_WATCH_H
#define NIDO_FS_WATCH_H

int watch_start(void);
void watch_stop(void);

#endif
