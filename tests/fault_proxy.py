"""A TCP proxy on loopback that can break the path to the broker on demand, for the broker-fault tests.

Clients connect to the proxy's port, which the broker advertises as its own (see
``embedded_broker(advertised_port=...)``), so every connection of the producer and the worker,
bootstrap and metadata-discovered alike, runs through it. The faults are those a network or a
broker restart causes:

* ``cut(refuse_for)``: every open connection is closed at once, as when a broker restarts; for
  ``refuse_for`` seconds after, new connections are closed as soon as they are accepted.
* ``blackhole(seconds)``: nothing gets through either way and new connections hang, as when a
  route silently drops packets. TCP retransmits once the route is back, so bytes held back are
  delivered afterwards unless a client gave up and closed its connection meanwhile.
* ``cut_losing_answers(after, refuse_for)``: requests still reach the broker, which acts on them,
  but its answers are thrown away for ``after`` seconds, then every connection is cut as by
  ``cut``. A producer without idempotence retries what the broker already wrote.

It runs its own event loop in a daemon thread, holds at most ``max_connections`` connections and
one read buffer per direction of each, and shuts itself down after ``lifetime`` seconds, so a test
that forgets it cannot leave it running.
"""
from __future__ import annotations

import asyncio
import threading
import time

LOOPBACK = "127.0.0.1"
CHUNK_BYTES = 64 * 1024


class FaultProxy:
    """Forwards ``127.0.0.1:listen_port`` to ``127.0.0.1:target_port``; a context manager."""

    def __init__(self, listen_port: int, target_port: int, *, lifetime: float = 300.0,
                 max_connections: int = 64) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.lifetime = lifetime
        self.max_connections = max_connections
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name=f"fault-proxy-{listen_port}", daemon=True)
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task] = set()
        self._open_path: asyncio.Event | None = None
        self._reopen: asyncio.TimerHandle | None = None
        self._refuse_until = 0.0
        self._answers_lost = False
        self._timed_cut: asyncio.Task | None = None
        self._stop: asyncio.Event | None = None

    # -- the test's side -----------------------------------------------------------------------

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def cut(self, refuse_for: float = 0.0) -> int:
        """Close every open connection now, and new ones for ``refuse_for`` s; returns how many were cut."""
        return self._call(self._cut, refuse_for)

    def blackhole(self, seconds: float) -> None:
        """Let nothing through, either way, for ``seconds``; returns at once."""
        self._call(self._blackhole, seconds)

    def cut_losing_answers(self, after: float, refuse_for: float = 0.0) -> None:
        """Throw the broker's answers away for ``after`` s, then cut as ``cut(refuse_for)``; returns at once."""
        self._call(self._lose_answers, after, refuse_for)

    def _call(self, function, *args):
        return asyncio.run_coroutine_threadsafe(function(*args), self._loop).result(10)

    # -- the proxy's own loop -------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._open_path = asyncio.Event()
        self._open_path.set()
        try:
            server = await asyncio.start_server(self._accept, LOOPBACK, self.listen_port, reuse_address=True)
        except OSError as exc:
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        try:
            await asyncio.wait_for(self._stop.wait(), self.lifetime)
        except asyncio.TimeoutError:
            pass
        finally:
            server.close()
            if self._timed_cut is not None:
                self._timed_cut.cancel()
            # Connections held by a blackhole are released too: with their sockets closed, every
            # handler returns by itself (cancelling one would make asyncio log its cancellation).
            await self._close_all()
            self._open_path.set()
            if self._handlers:
                await asyncio.wait(set(self._handlers), timeout=5)
            await server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._refuse_until or len(self._handlers) >= self.max_connections:
            client_writer.close()
            return
        self._handlers.add(asyncio.current_task())
        self._writers.add(client_writer)
        try:
            await self._forward(client_reader, client_writer)
        finally:
            self._handlers.discard(asyncio.current_task())

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            await self._open_path.wait()
            if client_writer not in self._writers:  # cut while it waited
                return
            broker_reader, broker_writer = await asyncio.open_connection(LOOPBACK, self.target_port)
        except OSError:
            self._drop(client_writer)
            return
        self._writers.add(broker_writer)
        await asyncio.gather(
            self._pump(client_reader, broker_writer, client_writer, answers=False),
            self._pump(broker_reader, client_writer, broker_writer, answers=True),
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    peer_writer: asyncio.StreamWriter, *, answers: bool) -> None:
        """Copy one direction until either end closes; then close both ends."""
        try:
            while data := await reader.read(CHUNK_BYTES):
                await self._open_path.wait()
                if writer not in self._writers:
                    break
                if answers and self._answers_lost:
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._drop(writer)
            self._drop(peer_writer)

    def _drop(self, writer: asyncio.StreamWriter) -> None:
        if writer in self._writers:
            self._writers.discard(writer)
            writer.close()

    async def _cut(self, refuse_for: float) -> int:
        self._refuse_until = time.monotonic() + refuse_for
        cut = len(self._handlers)
        await self._close_all()
        return cut

    async def _close_all(self) -> None:
        writers = list(self._writers)
        self._writers.clear()
        for writer in writers:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for writer in writers), return_exceptions=True)

    async def _lose_answers(self, after: float, refuse_for: float) -> None:
        self._answers_lost = True

        async def cut_then_answer_again() -> None:
            await asyncio.sleep(after)
            # Cut first: a connection that lost an answer would be out of step with its client.
            await self._cut(refuse_for)
            self._answers_lost = False
        self._timed_cut = asyncio.create_task(cut_then_answer_again())

    async def _blackhole(self, seconds: float) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
        self._open_path.clear()
        self._reopen = self._loop.call_later(seconds, self._open_path.set)
