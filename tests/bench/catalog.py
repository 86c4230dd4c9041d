#!/usr/bin/env python3
"""Write catalogs for the benchmark, in the format of fetch/default-catalog.json.

  catalog.py single --out F --name N --version V --url U --file PATH --format raw|qcow2
      one entry for a served file. Its SHA-256 is read from PATH.sha256 when
      that exists (written once per run), else computed.
  catalog.py many --out F --entries 5000 --url-base U
      entries / 5 images with 5 versions each, two aliases on the newest
      version, sizes of a few GiB; nothing is ever fetched from the URLs.
"""
import argparse
import hashlib
import json
import os


def sha256_of(path):
    try:
        with open(path + ".sha256") as f:
            return f.read().split()[0]
    except FileNotFoundError:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()


def document(images):
    return {"schema_version": "1", "updated_at": "2026-12-01T00:00:00Z", "images": images}


def write_single(args):
    entry = {"version": args.version, "aliases": [], "arch": "amd64", "url": args.url,
             "checksum_type": "sha256", "checksum": sha256_of(args.file),
             "size_bytes": os.path.getsize(args.file), "format": args.format}
    image = {"name": args.name, "registry": "official", "description": "benchmark image",
             "homepage": "http://127.0.0.1/", "versions": [entry]}
    with open(args.out, "w") as f:
        json.dump(document([image]), f, indent=2)


def write_many(args):
    per_image = 5
    images = []
    for i in range(args.entries // per_image):
        name = "img%04d" % i
        versions = []
        for v in range(per_image):
            version = "%d.%d" % (20 + v, i % 10)
            digest = hashlib.sha256(("%s-%s" % (name, version)).encode()).hexdigest()
            versions.append({
                "version": version,
                "aliases": ["latest", "stable"] if v == per_image - 1 else [],
                "arch": "amd64",
                "url": "%s/%s/%s.qcow2" % (args.url_base, name, version),
                "checksum_type": "sha256", "checksum": digest,
                "size_bytes": (2 + v) * 1024 ** 3 + i * 4096, "format": "qcow2"})
        images.append({"name": name, "registry": "official",
                       "description": "benchmark catalog entry %d" % i,
                       "homepage": "http://127.0.0.1/", "versions": versions})
    with open(args.out, "w") as f:
        json.dump(document(images), f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    single = sub.add_parser("single")
    for opt in ("--out", "--name", "--version", "--url", "--file"):
        single.add_argument(opt, required=True)
    single.add_argument("--format", choices=("raw", "qcow2"), required=True)
    many = sub.add_parser("many")
    many.add_argument("--out", required=True)
    many.add_argument("--entries", type=int, default=5000)
    many.add_argument("--url-base", required=True)
    args = parser.parse_args()
    if args.mode == "single":
        write_single(args)
    else:
        write_many(args)


if __name__ == "__main__":
    main()
