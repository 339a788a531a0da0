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


def test_the_tail_of_a_notice_counts_those_held_back_in_the_notices_own_words():
    now = [0.0]
    reports = RateLimit(5.0, clock=lambda: now[0], noun="report")

    assert reports.tail() == ""
    assert reports.tail() is None and reports.tail() is None and reports.tail() is None
    now[0] += 5.0
    assert reports.tail() == " (and 3 more since the last report)"
    now[0] += 5.0
    assert reports.tail() == ""
