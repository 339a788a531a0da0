"""adjustments/changelog_pause.py: the worker's own table writes do not hold its notes back."""
from __future__ import annotations

from harness.processes import WorkerProcess, run_producer
from tests.song_files import write_song

NOTES = 150
SPACING = 0.01
# The hold-up this guards against is aiokafka's prefetch backoff, 100 ms, hitting every note sent
# in that window; a busy machine adds a few ms to a note, not tens.
LATENCY_BOUND_MS = 50


def test_the_workers_own_table_writes_do_not_hold_up_the_notes(tmp_path, worker_env):
    # The worker writes each song's resume point to its table from the first note on. Fetched back
    # from the changelog partition (which Faust reads only when recovering) and never consumed,
    # those writes made aiokafka stop fetching from the broker for 100 ms: every note sent then
    # arrived up to 100 ms late.
    song = tmp_path / "steady.mid"
    write_song(song, [(index * SPACING, [0x90, 40 + index % 40, 90]) for index in range(NOTES)])

    with WorkerProcess(worker_env) as worker:
        result = run_producer([str(song)], worker_env)
        assert result.returncode == 0, result.stderr
        [summary] = worker.wait_for_summaries(1, timeout=60)

    assert (summary["events"], summary["lost"]) == (NOTES, 0)
    assert summary["latency_ms"]["max"] < LATENCY_BOUND_MS, f"a note was held back: {summary['latency_ms']}"
