#!/usr/bin/env python3
"""Record how many bytes a nidofs state directory has cached, over time.

Usage: sampler.py HOME OUT [INTERVAL_SECONDS]
Every interval (default 0.2 s) appends a line "SECONDS BYTES" to OUT.
SECONDS counts from the start of the sampler. BYTES is the allocated size of
the cache files under HOME/images: data while an image is partial, disk.qcow2
or disk.raw once it is complete. Both a lazy boot and `nido image pull` fill
these files, so one sampler serves both. Stops on SIGTERM.
"""
import glob
import os
import signal
import sys
import time

running = True


def stop(_signum, _frame):
    global running
    running = False


def cached_bytes(home):
    total = 0
    for name in ("data", "disk.qcow2", "disk.raw"):
        for path in glob.glob(os.path.join(home, "images", "*", name)):
            try:
                total += os.stat(path).st_blocks * 512
            except FileNotFoundError:
                pass  # renamed from data to disk.* between glob and stat
    return total


def main():
    home, out = sys.argv[1:3]
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.2
    signal.signal(signal.SIGTERM, stop)
    start = time.monotonic()
    with open(out, "w") as f:
        while running:
            f.write("%.2f %d\n" % (time.monotonic() - start, cached_bytes(home)))
            f.flush()
            time.sleep(interval)


if __name__ == "__main__":
    main()
