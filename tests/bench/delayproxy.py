#!/usr/bin/env python3
"""HTTP/1.1 proxy that delays each request by a fixed time before passing it on.

The shaped link of the benchmark uses it in front of nginx, so that every
response starts at least DELAY ms after its request, as with a distant server.
netem would add the delay in the kernel, but the sch_netem module is missing on
the machines this benchmark was written for.

The proxy splits the client's byte stream into requests (header up to the blank
line, then Content-Length bytes of body), sleeps before writing each one to the
upstream connection, and copies the upstream's bytes back unchanged. Each client
connection gets its own upstream connection, so keep-alive and pipelining work.
"""
import argparse
import asyncio
import signal

CHUNK = 256 * 1024
MAX_HEADER = 64 * 1024


def body_length(header: bytes) -> int:
    """Return the Content-Length of a request header, 0 when it has none."""
    for line in header.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


async def forward_requests(reader, writer, delay):
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEADER:
                raise ValueError("request header longer than %d bytes" % MAX_HEADER)
            data = await reader.read(CHUNK)
            if not data:
                break
            buf += data
            continue
        need = end + 4 + body_length(buf[: end + 4])
        while len(buf) < need:
            data = await reader.read(CHUNK)
            if not data:
                return
            buf += data
        await asyncio.sleep(delay)
        writer.write(buf[:need])
        await writer.drain()
        buf = buf[need:]


async def copy_stream(reader, writer):
    while True:
        data = await reader.read(CHUNK)
        if not data:
            break
        writer.write(data)
        await writer.drain()


async def handle(client_r, client_w, upstream, delay):
    try:
        up_r, up_w = await asyncio.open_connection(*upstream)
    except OSError:
        client_w.close()
        return
    tasks = [asyncio.create_task(forward_requests(client_r, up_w, delay)),
             asyncio.create_task(copy_stream(up_r, client_w))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for w in (up_w, client_w):
            w.close()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT to accept clients on")
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the HTTP server")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="delay before each request, in ms")
    args = parser.parse_args()
    lhost, lport = args.listen.rsplit(":", 1)
    uhost, uport = args.upstream.rsplit(":", 1)
    delay = args.delay_ms / 1000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, (uhost, int(uport)), delay), lhost, int(lport))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
