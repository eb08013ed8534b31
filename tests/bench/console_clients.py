"""The console benchmark's plain clients, in a process of their own (so their parsing does not
load the engine's event loop): N event-stream clients of the console, and one raw XREAD
reader of the Redis stream (the fan-out baseline).

Each records, for every ``screen_pop`` it receives, the call's uniqueid and how long after
its stream entry (the id's milliseconds) it arrived; it stops once it has ``--expect`` of
them or at ``--timeout``. Prints one JSON object: ``{"ready": n}`` first, once every client
is connected, then ``{"done": true}`` once it has written ``--out``: ``{"raw": [[uid, ms]...],
"sse": [[[uid, ms]...] per client], "failed": [...]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis


def _ms() -> float:
    return time.time() * 1000


async def _chunks(reader: asyncio.StreamReader) -> Any:
    """The body of a chunked HTTP response, chunk by chunk."""
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return
        yield await reader.readexactly(size)
        await reader.readexactly(2)


async def sse_client(url: str, cookie: str, expect: int, ready: asyncio.Event,
                     got: list[tuple[str, float]]) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nCookie: {cookie}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"event stream refused: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    buffer = b""
    calls: set[str] = set()  # kept as it grows: the client must not be the busy one
    try:
        async for chunk in _chunks(reader):
            buffer += chunk
            while b"\n\n" in buffer:
                message, buffer = buffer.split(b"\n\n", 1)
                for line in message.split(b"\n"):
                    if line.startswith(b"event: status"):
                        ready.set()
                    elif line.startswith(b"data: {\"kind\": \"screen_pop\""):
                        event = json.loads(line[6:])
                        got.append((event["data"]["uniqueid"], _ms() - event["t"]))
                        calls.add(event["data"]["uniqueid"])
            if len(calls) >= expect:
                return
    finally:
        writer.close()


async def raw_reader(client: aioredis.Redis, stream: str, last: str, expect: int,
                     got: list[tuple[str, float]]) -> None:
    calls: set[str] = set()
    while len(calls) < expect:  # at least once: a pop may come twice
        reply = await client.xread({stream: last}, count=500, block=1000)
        for _key, entries in reply or ():
            for entry_id, fields in entries:
                last = entry_id.decode()
                if fields.get(b"type") == b"screen_pop":
                    at = int(last.split("-")[0])
                    uniqueid = json.loads(fields[b"data"])["uniqueid"]
                    got.append((uniqueid, _ms() - at))
                    calls.add(uniqueid)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="the console's /live/events URL")
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    client = aioredis.Redis.from_url(args.redis)
    raw: list[tuple[str, float]] = []
    sse: list[list[tuple[str, float]]] = [[] for _ in range(args.clients)]
    ready = [asyncio.Event() for _ in range(args.clients)]
    newest = await client.xrevrange(args.stream, count=1)
    start = newest[0][0].decode() if newest else "0-0"
    tasks = [asyncio.create_task(raw_reader(client, args.stream, start, args.expect, raw))]
    tasks += [asyncio.create_task(sse_client(args.url, args.cookie, args.expect, ready[i],
                                             sse[i])) for i in range(args.clients)]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), 60)
    print(json.dumps({"ready": args.clients}), flush=True)
    done, pending = await asyncio.wait(tasks, timeout=args.timeout)
    for task in pending:
        task.cancel()
    failed = [repr(task.exception()) for task in done if task.exception() is not None]
    await client.aclose()
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump({"raw": raw, "sse": sse, "failed": failed}, out)
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
