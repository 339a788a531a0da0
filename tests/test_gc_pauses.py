"""playback/gc_pauses.py: collections counted with their longest pause; what exists frozen out of them."""
from __future__ import annotations

import gc

from playback.gc_pauses import GcPauses, collect_all_then_freeze, freeze_what_exists


def test_each_collection_is_counted_and_the_longest_pause_kept_until_taken():
    with GcPauses() as pauses:
        gc.collect()
        gc.collect(0)
        collections, longest = pauses.take()
    assert collections == 2 and longest > 0
    assert pauses.take() == (0, 0.0)
    gc.collect()
    assert pauses.take() == (0, 0.0), "no longer installed"


def test_what_exists_when_frozen_is_left_out_of_later_collections():
    kept = [[index] for index in range(10_000)]
    try:
        freeze_what_exists()
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.unfreeze()


def test_freezing_without_collecting_keeps_garbage_frozen_too():
    def cycle() -> None:
        # Ten thousand unreachable rings: far more than anything else could make or free meanwhile.
        for _ in range(10_000):
            ring: list = []
            ring.append(ring)

    # No automatic collection in between, which would take the rings before the freeze does.
    enabled = gc.isenabled()
    gc.disable()
    try:
        cycle()  # unreachable from here on, but not collected yet
        before = gc.get_freeze_count()
        freeze_what_exists(collect=False)
        frozen_without = gc.get_freeze_count() - before
        gc.unfreeze()
        cycle()
        before = gc.get_freeze_count()
        freeze_what_exists()
        frozen_after_collecting = gc.get_freeze_count() - before
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()
    assert frozen_without - frozen_after_collecting >= 5_000


def test_collecting_all_again_lets_go_of_cycles_that_died_while_frozen():
    # Alive at the first freeze, unreachable rings afterwards: frozen, no collection could take them.
    rings = []
    for _ in range(10_000):
        ring: list = []
        ring.append(ring)
        rings.append(ring)
    try:
        collect_all_then_freeze()
        with_rings = gc.get_freeze_count()
        del rings
        collect_all_then_freeze()
        assert with_rings - gc.get_freeze_count() >= 10_000, "the dead rings were collected"
        assert gc.get_freeze_count() > 0, "what lives is frozen again"
    finally:
        gc.unfreeze()
