"""TLS in front of the embedded broker, for the end-to-end TLS tests.

Tansu 0.6.0 lists ``--cert`` and ``--key`` in its help but serves no TLS with them: given both it refuses
to start ("the argument '--cert <CERT>' cannot be used with '--key <KEY>'"), given either alone it listens
in plaintext and reads a client's TLS hello as a Kafka request ("early eof" in its log). So the tests put
this in front of it: a TLS server on loopback with a certificate from a throwaway CA that forwards each
connection's bytes, decrypted, to the broker, which advertises the proxy's port
(``embedded_broker(advertised_port=...)``). Both commands then speak real TLS, verify the certificate and
its name, and are refused as they would be by a TLS broker; only the broker behind it is plaintext.

It runs its own event loop in a daemon thread; leaving the ``with`` closes it and every connection.
"""
from __future__ import annotations

import asyncio
import ssl
import threading
from contextlib import suppress

from tests.certificates import Issued


class TlsProxy:
    def __init__(self, port: int, broker_port: int, issued: Issued) -> None:
        self.port, self.broker_port = port, broker_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(issued.cert, issued.key)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tls proxy", daemon=True)
        self.server: asyncio.AbstractServer | None = None

    def __enter__(self) -> "TlsProxy":
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self.forward, "127.0.0.1", self.port, ssl=self.context), self.loop).result(10)
        return self

    def __exit__(self, *exc_info) -> None:
        async def close() -> None:
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, broker_writer), pump(broker_reader, client_writer),
                             return_exceptions=True)


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with suppress(Exception):
            writer.close()
