"""The pages connected to the worker, each with its own bounded queue of updates.

An update is encoded once and offered to every client; each client's WebSocket is written by a task
of its own. A client that reads slowly, or never, fills only its own queue: once full, each new update
pushes out its oldest, and the count of those dropped is kept (and shown to the client in the next
update it does receive). Nothing the worker does waits for a client.
"""
from __future__ import annotations

import asyncio
from collections import deque


class Client:
    def __init__(self, capacity: int) -> None:
        self.pending: deque[str] = deque(maxlen=capacity)
        self.ready = asyncio.Event()
        self.dropped = 0
        self.sent = 0

    def offer(self, text: str) -> int:
        """Queue ``text``; 1 if that pushed out the oldest update, else 0."""
        dropped = int(len(self.pending) == self.pending.maxlen)
        self.dropped += dropped
        self.pending.append(text)
        self.ready.set()
        return dropped

    async def next_updates(self) -> list[str]:
        """Wait for updates, then take all that wait."""
        await self.ready.wait()
        self.ready.clear()
        taken = list(self.pending)
        self.pending.clear()
        self.sent += len(taken)
        return taken


class Clients:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.connected: set[Client] = set()
        self.dropped = 0

    def join(self) -> Client:
        client = Client(self.capacity)
        self.connected.add(client)
        return client

    def leave(self, client: Client) -> None:
        self.connected.discard(client)

    def broadcast(self, text: str) -> int:
        """Offer ``text`` to every client; how many updates that pushed out."""
        dropped = sum(client.offer(text) for client in self.connected)
        self.dropped += dropped
        return dropped

    def state(self) -> list[dict]:
        return [{"waiting": len(client.pending), "sent": client.sent, "dropped": client.dropped}
                for client in self.connected]
