"""web/clients.py: a page that reads slowly holds a bounded queue, drops its oldest updates and counts them."""
from __future__ import annotations

from web.clients import Clients


async def test_a_client_that_does_not_read_keeps_only_the_newest_updates_and_counts_the_rest():
    clients = Clients(capacity=3)
    slow, quick = clients.join(), clients.join()
    for index in range(3):
        clients.broadcast(f"u{index}")
    assert await quick.next_updates() == ["u0", "u1", "u2"]
    dropped = sum(clients.broadcast(f"u{index}") for index in range(3, 10))

    assert dropped == 11 and clients.dropped == 11
    assert (slow.dropped, quick.dropped) == (7, 4)
    assert await slow.next_updates() == ["u7", "u8", "u9"]
    clients.leave(slow)
    clients.broadcast("after")
    assert list(slow.pending) == [] and list(quick.pending)[-1] == "after"
