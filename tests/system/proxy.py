"""A TCP proxy that can be cut: a stand-in for a database or broker that restarts.

The PostgreSQL and Redis servers are shared with other test runs, so no test may stop them.
Instead the service's processes reach them through a ``TCPProxy`` on 127.0.0.1 (a port the
kernel picks), and a test cuts the proxy: every open connection is aborted at once and the
listening socket is closed, so new connections are refused, exactly what a client sees while a
server restarts. ``restore()`` listens again on the same port. ``cut(hang=True)`` plays a
server that hangs instead: open connections are aborted, new ones are accepted and then never
answered (nor closed) until ``restore()``, which is what a client sees of a hung broker, a
dead host behind a load balancer, or a half-open connection.

It runs an asyncio loop in a thread of its own, so a test drives it from ordinary code::

    proxy = TCPProxy(("127.0.0.1", 5432), name="db").start()
    ... point the processes at proxy.port ...
    with proxy.outage():          # or proxy.cut(); ...; proxy.restore()
        time.sleep(3)
    proxy.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import threading
import time
from collections.abc import Iterator

CHUNK = 65536


class TCPProxy:
    """Forwards every connection to ``upstream`` until ``cut()``; counts what it saw."""

    def __init__(self, upstream: tuple[str, int], *, name: str = "proxy") -> None:
        self.upstream = upstream
        self.name = name
        self.host = "127.0.0.1"
        self.port = 0
        self.accepted = 0  # connections forwarded since start
        self.aborted = 0  # connections cut by cut()
        self.cuts = 0
        self._down = False
        self._hang = False
        self._held: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"tcp-proxy-{name}", daemon=True
        )

    def __repr__(self) -> str:
        state = "down" if self._down else "up"
        return f"<TCPProxy {self.name} {self.host}:{self.port} -> {self.upstream} {state}>"

    # --- control, from any thread -------------------------------------------------------------

    def start(self) -> TCPProxy:
        self._thread.start()
        self._run(self._listen())
        return self

    @property
    def is_down(self) -> bool:
        return self._down

    @property
    def active(self) -> int:
        """Connections open through the proxy right now."""
        return len(self._connections)

    def cut(self, *, hang: bool = False, abort: bool = True) -> int:
        """Refuse new connections (``hang``: accept them and never answer) and abort every
        open one (``abort=False``: leave them to the upstream to close); how many were
        aborted."""
        return self._run(self._cut(hang=hang, abort=abort))

    def restore(self, timeout: float = 10) -> None:
        """Listen again on the same port (waiting for it if the kernel still holds it)."""
        self._run(self._restore(timeout))

    @contextlib.contextmanager
    def outage(self, *, hang: bool = False) -> Iterator[TCPProxy]:
        """Down for the ``with`` block, up again after it, whatever happens inside."""
        self.cut(hang=hang)
        try:
            yield self
        finally:
            self.restore()

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    # --- inside the loop ------------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self, hang: bool = False, abort: bool = True) -> int:
        if not self._down:
            self.cuts += 1
        self._down = True
        self._hang = hang
        if self._server is not None and not hang:
            self._server.close()  # closes the listening socket now: connections are refused
            self._server = None
        if not hang:
            for writer in list(self._held):
                writer.transport.abort()
            self._held.clear()
        connections = list(self._connections) if abort else []
        for pair in connections:
            for writer in pair:
                writer.transport.abort()
        self.aborted += len(connections)
        return len(connections)

    async def _shutdown(self) -> None:
        await self._cut()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _restore(self, timeout: float) -> None:
        for writer in list(self._held):
            writer.transport.abort()
        self._held.clear()
        self._hang = False
        if self._server is not None:  # it kept listening through a hang
            self._down = False
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self._listen()
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        self._down = False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._forward(reader, writer)
        except asyncio.CancelledError:  # the proxy is closing
            writer.transport.abort()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down and self._hang:
            self._held.add(writer)  # accepted, and never a byte in answer
            return
        if self._down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        if self._down:  # cut while connecting upstream
            writer.transport.abort()
            up_writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._connections.add(pair)
        self.accepted += 1
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        try:
            # Either side closing ends the conversation (PostgreSQL and Redis both work so).
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._connections.discard(pair)
            for side in pair:
                side.close()
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
