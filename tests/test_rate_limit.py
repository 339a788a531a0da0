"""logs/rate_limit.py: the first notice passes, then one per interval, each counting those held back."""
from __future__ import annotations

from logs.rate_limit import RateLimit


def test_one_notice_per_interval_passes_and_says_how_many_were_held_back():
    now = [100.0]
    notices = RateLimit(5.0, clock=lambda: now[0])

    assert notices.allow() == 0
    assert notices.allow() is None and notices.allow() is None
    now[0] += 5.0
    assert notices.allow() == 2
    notices.reset()
    assert notices.allow() == 0
