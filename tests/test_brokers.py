"""brokers/__init__.py: the fetch wait a worker takes on the brokers that answer only when it ends."""
from __future__ import annotations

from brokers import LOCAL_FETCH_WAIT_MS, local_fetch_wait
from config.settings import Settings


def test_a_worker_on_these_brokers_fetches_with_a_wait_shorter_than_its_default():
    chosen = local_fetch_wait({})
    assert chosen == {"MIDI_FETCH_WAIT_MS": str(LOCAL_FETCH_WAIT_MS)}
    assert Settings.from_env(chosen).fetch_wait_ms == LOCAL_FETCH_WAIT_MS < Settings.from_env({}).fetch_wait_ms


def test_a_fetch_wait_of_the_users_own_wins():
    assert local_fetch_wait({"MIDI_FETCH_WAIT_MS": "5"}) == {}
    assert local_fetch_wait({"MIDI_FETCH_WAIT_MS": " "}) == {"MIDI_FETCH_WAIT_MS": str(LOCAL_FETCH_WAIT_MS)}
