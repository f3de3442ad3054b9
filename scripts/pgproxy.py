#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""A TCP proxy on loopback that delays every byte by half of RTT_MS in
each direction, so that each round trip through it takes RTT_MS more: a
PostgreSQL server on another host, for make bench.

usage: pgproxy.py LISTEN_PORT TARGET_PORT RTT_MS

Order is kept (one queue per direction, each chunk sent when its time
comes); it serves until killed."""
import asyncio
import sys
import time


async def pump(reader, writer, delay):
    queue = asyncio.Queue()

    async def sender():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.ensure_future(sender())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((time.monotonic() + delay, data))
    except ConnectionError:
        pass
    queue.put_nowait((0, None))
    await task


async def serve(listen, target, delay):
    async def handle(cr, cw):
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, sw, delay), pump(sr, cw, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


def main():
    listen, target, rtt = int(sys.argv[1]), int(sys.argv[2]), \
        float(sys.argv[3])
    asyncio.run(serve(listen, target, rtt / 2000.0))


if __name__ == "__main__":
    main()
