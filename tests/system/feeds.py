"""Clients of the live feed (Server-Sent Events) for the system tests and ``bench/bench_feeds.py``.

``FeedReader`` opens ``count`` feeds at once on one asyncio loop in a thread of its own and
records each message; ``SSEParser`` turns the stream's lines into ``(id, event, data)``.
Neither imports Django: the benchmark runs its readers in a process of their own.
"""

from __future__ import annotations

import asyncio
import json
import threading

import httpx


class SSEParser:
    """Lines of an SSE stream in, ``(id, event, data)`` out (``data`` decoded from JSON)."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def line(self, line: str) -> tuple[str, str, dict] | None:
        """The message that ``line`` completes (a blank line), or None."""
        if not line:
            fields, self.fields = self.fields, {}
            if "event" in fields:
                return fields["id"], fields["event"], json.loads(fields["data"])
        elif not line.startswith(":") and ": " in line:
            name, value = line.split(": ", 1)
            self.fields[name] = value
        return None


class FeedReader:
    """``count`` SSE clients on one asyncio loop in a thread of the test, each recording what
    it got: ``(id, event, data)`` per message."""

    def __init__(self, url: str, key: str, count: int) -> None:
        self.url, self.key, self.count = url, key, count
        self.messages: list[list[tuple[str, str, dict]]] = [[] for _ in range(count)]
        self.errors: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.tasks: list[asyncio.Future] = []
        self.client: httpx.AsyncClient | None = None

    def start(self) -> FeedReader:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result(30)
        return self

    async def _open(self) -> None:
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(60, read=None),
            limits=httpx.Limits(max_connections=self.count + 10),
        )
        self.tasks = [asyncio.ensure_future(self._read(i)) for i in range(self.count)]

    async def _read(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        try:
            async with self.client.stream("GET", self.url, headers=headers) as response:
                if response.status_code != 200:
                    self.errors.append(f"{index}: {response.status_code}")
                    return
                parser = SSEParser()
                async for line in response.aiter_lines():
                    message = parser.line(line)
                    if message is not None:
                        self.messages[index].append(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # recorded; the test asserts there were none
            self.errors.append(f"{index}: {exc!r}")

    def close(self) -> None:
        if not self.thread.is_alive():
            return

        async def shut():
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            if self.client is not None:
                await self.client.aclose()

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
