#!/usr/bin/env python3
"""Build a local copy of a tree from its `ls -lR --time-style=+%s` listing.

Usage: lstree.py LISTING DEST
Folders, symlinks (same targets) and regular files (sparse, same sizes, same
permission bits) are created under DEST, so that `ls -lR DEST` prints the same
entries as the listed tree. Names must not contain spaces or newlines, which
holds for the benchmark's generated catalog.
"""
import os
import sys


def mode_of(perms):
    """Return the permission bits of an ls mode string such as dr-xr-xr-x."""
    bits = 0
    for i, ch in enumerate(perms[1:10]):
        if ch != "-":
            bits |= 1 << (8 - i)
    return bits


def main():
    listing, dest = sys.argv[1:]
    root = None
    folder = dest
    dirs = []
    with open(listing) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.endswith(":") and not line.startswith(("d", "-", "l")):
                path = line[:-1]
                if root is None:
                    root = path
                folder = os.path.join(dest, os.path.relpath(path, root))
                os.makedirs(folder, exist_ok=True)
                continue
            fields = line.split()
            if len(fields) < 7 or fields[0] == "total":
                continue
            perms, size, name = fields[0], int(fields[4]), fields[6]
            target = os.path.join(folder, name)
            if perms.startswith("d"):
                os.makedirs(target, exist_ok=True)
                dirs.append((target, mode_of(perms)))
            elif perms.startswith("l"):
                os.symlink(fields[8], target)
            else:
                with open(target, "wb") as out:
                    out.truncate(size)
                os.chmod(target, mode_of(perms))
    # Read-only folders get their mode last, once their contents exist.
    for path, mode in reversed(dirs):
        os.chmod(path, mode)


if __name__ == "__main__":
    main()
