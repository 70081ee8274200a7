"""A tiny raw HTTP/1.1 server on 127.0.0.1 for answers no real server library would send on purpose.

Each request is answered by ``behaviour(method, target)``, which returns one of:

* ``("json", status, obj)`` — a normal JSON answer;
* ``("trickle", interval)`` — a 200 whose body arrives one byte every ``interval`` seconds, forever
  (every per-read timeout is satisfied; only an overall deadline ends it);
* ``("declare", length)`` — headers with ``Content-Length: length``, a few bytes, then silence;
* ``("chunks", total)`` — a chunked 200 streaming ``total`` bytes of junk, then silence.

``requests`` counts what arrived, by ``(method, target)``; ``arrived`` is set on every request, so a
test can act once the request it waits for is at the server. Runs either on the caller's loop
(``await server.start()``) or on a thread of its own (``with RawServer(...).threaded() as base``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["RawServer"]

Behaviour = Callable[[str, str], tuple[Any, ...]]


class RawServer:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: Counter[tuple[str, str]] = Counter()
        self.arrived = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.base_url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Connections parked in a trickle are this server's tasks: cancel them with it.
            for task in [t for t in asyncio.all_tasks() if getattr(t, "_rawserver", None) is self]:
                task.cancel()

    @contextmanager
    def threaded(self) -> Iterator[str]:
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            started.set()
            loop.run_forever()

        thread = threading.Thread(target=main, daemon=True)
        thread.start()
        started.wait(10)
        try:
            yield self.base_url
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            task._rawserver = self  # type: ignore[attr-defined]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                if int(headers.get("content-length", "0")):
                    await reader.readexactly(int(headers["content-length"]))
                self.requests[(method, target.split("?")[0])] += 1
                self.arrived.set()
                answer = self.behaviour(method, target)
                if answer[0] == "json":
                    body = json.dumps(answer[2]).encode()
                    writer.write(f"HTTP/1.1 {answer[1]} X\r\nContent-Type: application/json\r\n"
                                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                    await writer.drain()
                    continue
                if answer[0] == "trickle":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
                    while True:
                        writer.write(b" ")
                        await writer.drain()
                        await asyncio.sleep(answer[1])
                if answer[0] == "declare":
                    writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {answer[1]}\r\n\r\n{{".encode())
                    await writer.drain()
                    await asyncio.sleep(3600)
                if answer[0] == "chunks":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                    chunk = b"x" * 65536
                    for _ in range(answer[1] // len(chunk) + 1):
                        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        await writer.drain()
                    await asyncio.sleep(3600)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
