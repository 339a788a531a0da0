"""adjustments/fetch_wait.py: the wait of each fetch follows the lag and the time since data last came."""
from __future__ import annotations

from aiokafka.structs import TopicPartition

from adjustments.fetch_wait import ADJUSTMENT, AdaptiveFetchWait, FetchWaits, partition_lags

WAITS = FetchWaits(live_ms=2, idle_ms=100, catch_up_ms=500, idle_after=60.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_behind_its_high_watermark_gets_the_long_wait_whatever_else_is_caught_up():
    policy = AdaptiveFetchWait(WAITS, clock=FakeClock())

    assert policy.choose([0, None, 0]) == 2
    assert policy.choose([0, 3]) == 500
    assert policy.fetches == {"live": 1, "idle": 0, "catching up": 1}


def test_nothing_read_for_idle_after_seconds_gets_the_idle_wait_until_data_comes():
    clock = FakeClock()
    policy = AdaptiveFetchWait(WAITS, clock=clock)

    clock.now += 59.9
    assert policy.choose([0]) == 2
    clock.now += 0.1
    assert policy.choose([0]) == 100
    policy.data_arrived()
    assert policy.choose([0]) == 2


class FakeState:
    def __init__(self, position, highwater, paused=False):
        self.position, self.highwater, self.paused = position, highwater, paused
        self.has_valid_position = position is not None


class FakeAssignment:
    def __init__(self, states):
        self.states = states
        self.tps = set(states)

    def state_value(self, tp):
        return self.states[tp]


def test_lags_come_from_the_position_and_high_watermark_and_skip_what_is_not_fetched():
    assignment = FakeAssignment({
        TopicPartition("midi", 0): FakeState(10, 15),
        TopicPartition("midi", 1): FakeState(7, None),
        TopicPartition("changelog", 0): FakeState(0, 900, paused=True),
        TopicPartition("midi", 2): FakeState(None, 4),
    })

    assert sorted(partition_lags(assignment), key=str) == sorted([5, None, None, None], key=str)


async def test_installed_on_an_aiokafka_fetcher_it_sets_the_wait_of_the_requests_it_builds():
    calls = []

    class StubFetcher:
        _fetch_max_wait_ms = 1500

        def _get_actions_per_node(self, assignment):
            calls.append(self._fetch_max_wait_ms)
            return "actions"

        async def _proc_fetch_request(self, assignment, node_id, request):
            return True

    # The stub stands in for exactly the names the policy touches on the real class.
    assert all(touch.present() for touch in ADJUSTMENT.touches)
    clock = FakeClock()
    fetcher = StubFetcher()
    policy = AdaptiveFetchWait(WAITS, clock=clock)
    policy.install(fetcher)
    behind = FakeAssignment({TopicPartition("midi", 0): FakeState(0, 40)})
    caught_up = FakeAssignment({TopicPartition("midi", 0): FakeState(40, 40)})

    assert fetcher._get_actions_per_node(behind) == "actions"
    fetcher._get_actions_per_node(caught_up)
    clock.now += 61
    fetcher._get_actions_per_node(caught_up)
    assert await fetcher._proc_fetch_request(caught_up, 0, None) is True
    fetcher._get_actions_per_node(caught_up)
    assert calls == [500, 2, 100, 2]
