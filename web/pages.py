"""What the worker serves on Faust's web server: the page (``/``, its files under ``/static/``), its
updates (``/live``, a WebSocket), ``/stats`` (JSON) and, through Faust's Prometheus sensor, ``/metrics``.

The page's files are in web/static and served from the worker: no CDN, nothing fetched from the network.
"""
from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiohttp import WSMsgType, web as aiohttp_web
from faust import web

from web.live import LiveView, encode

STATIC = Path(__file__).resolve().parent / "static"
# A page that vanished without closing its socket, or stopped answering pings, is closed after about
# this long (aiohttp closes it when a ping goes unanswered for half as long again).
HEARTBEAT_SECONDS = 10.0
# The kernel's send buffer of a page's socket. Left to itself, Linux grows it up to tcp_wmem's 4 MiB for a
# page that reads nothing, hiding megabytes of updates; at this size a page that stops reading holds this,
# aiohttp's 64 KiB and its queue, and its updates are dropped within seconds.
SEND_BUFFER_BYTES = 32 * 1024


async def send_updates(websocket: aiohttp_web.WebSocketResponse, client) -> None:
    """Write the client's updates as they come; a socket that does not drain holds only this task."""
    told_dropped = 0
    while not websocket.closed:
        updates = await client.next_updates()
        if client.dropped != told_dropped:
            told_dropped = client.dropped
            await websocket.send_str(encode({"type": "dropped", "count": told_dropped}))
        for text in updates:
            await websocket.send_str(text)


def register(app, live: LiveView) -> None:
    app.web.add_static("/static/", STATIC)

    @app.page("/")
    async def page(self: web.View, request: web.Request) -> web.Response:
        return self.html((STATIC / "index.html").read_text())

    @app.page("/stats")
    async def stats(self: web.View, request: web.Request) -> web.Response:
        return self.json(live.stats())

    @app.page("/live")
    async def updates(self: web.View, request: web.Request):
        connection = request.transport.get_extra_info("socket") if request.transport is not None else None
        if connection is not None:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        websocket = aiohttp_web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS)
        await websocket.prepare(request)
        client = live.clients.join()
        client.offer(live.hello())
        sender = asyncio.ensure_future(send_updates(websocket, client))
        try:
            async for message in websocket:  # the page sends nothing; this waits for it to close
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            live.clients.leave(client)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        return websocket
