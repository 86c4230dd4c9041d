#!/usr/bin/env python3
"""Count the distinct bytes that a process read from one file, from a perf trace.

Usage: readtrace.py [-v] [--list] PERF_DATA FD PID
PERF_DATA comes from `perf record -a -e syscalls:sys_{enter,exit}_{pread64,preadv}`
taken during a boot. Only calls on file descriptor FD by process PID (any of
its threads) count. Their byte ranges [pos, pos + returned count) are merged,
and the total length is printed. With -v, also prints the call count and the bytes
read in all to stderr. With --list, prints one line per call instead:
"START_SECONDS DURATION_SECONDS OFFSET BYTES".
"""
import re
import subprocess
import sys

# 17560/17563 12345.678901: syscalls:sys_enter_pread64: fd: 0x0000000b, ..., pos: 0x00184a51
LINE = re.compile(r'^\s*(\d+)/(\d+)\s+([\d.]+):\s+syscalls:sys_(enter|exit)_(pread64|preadv):\s*(.*)$')
ARG = re.compile(r'(\w+): (0x[0-9a-f]+)')


def calls(lines, fd, pid):
    """Yield (start, duration, offset, bytes) for each completed call."""
    pending = {}
    for line in lines:
        m = LINE.match(line)
        if not m or m.group(1) != pid:
            continue
        tid, when, kind, call, rest = m.group(2), float(m.group(3)), m.group(4), m.group(5), m.group(6)
        if kind == "enter":
            args = {k: int(v, 16) for k, v in ARG.findall(rest)}
            if args.get("fd") != fd:
                pending.pop(tid, None)
                continue
            pos = args.get("pos", args.get("pos_l", 0) + (args.get("pos_h", 0) << 32))
            pending[tid] = (when, pos)
        elif tid in pending:
            start, pos = pending.pop(tid)
            result = int(rest.split()[0], 16)
            if result < 1 << 63 and result > 0:
                yield start, when - start, pos, result


def merged_length(spans):
    total = 0
    end = -1
    for start, stop in sorted(spans):
        if start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    data, fd, pid = args[0], int(args[1]), args[2]
    out = subprocess.run(["perf", "script", "-i", data, "-F", "pid,tid,time,event,trace"],
                         capture_output=True, text=True, errors="replace", check=True)
    found = list(calls(out.stdout.splitlines(), fd, pid))
    if not found:
        sys.exit("readtrace: no reads on fd %d by process %s in %s" % (fd, pid, data))
    if "--list" in sys.argv:
        for start, duration, pos, count in found:
            print("%.6f %.6f %d %d" % (start, duration, pos, count))
        return
    if "-v" in sys.argv:
        print("readtrace: %d calls, %d bytes read" % (len(found), sum(c[3] for c in found)),
              file=sys.stderr)
    print(merged_length([(pos, pos + count) for _, _, pos, count in found]))


if __name__ == "__main__":
    main()
