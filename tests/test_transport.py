"""The worker's Kafka transport: nothing in how Faust drives aiokafka holds a note back."""
from __future__ import annotations

from pathlib import Path

from mode.utils.queues import FlowControlQueue

from harness.processes import WorkerProcess, run_producer
from tests.song_files import write_song
from adjustments.transport import KeepQueuedOnResume

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


async def test_resuming_flow_that_runs_keeps_what_the_stream_queues_hold():
    # Faust resumes flow a second time after seeking its partitions; records queued since were
    # dropped and never fetched again.
    flow = KeepQueuedOnResume()
    queue = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    flow.resume()
    queue.put_nowait("record fetched after the seek")
    flow.resume()
    assert queue.qsize() == 1

    # A rebalance suspends flow; resuming after it still empties the queues, as Faust then seeks again.
    flow.suspend()
    flow.resume()
    assert queue.empty()


def test_importing_the_app_leaves_the_interpreters_gil_switch_interval_alone():
    # Only the worker switches the GIL every 0.5 ms; produce-midi and anything else importing the app
    # keep Python's own interval.
    import subprocess
    import sys

    code = "import sys; default = sys.getswitchinterval(); import midi_app; print(sys.getswitchinterval() == default)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.stdout.strip() == "True", result.stderr


def test_the_worker_switches_the_gil_every_half_millisecond():
    from adjustments.transport import GIL_SWITCH_INTERVAL, MidiWorker
    import sys

    before = sys.getswitchinterval()
    try:
        from midi_app import app
        MidiWorker(app, loglevel="WARNING")
        assert sys.getswitchinterval() == GIL_SWITCH_INTERVAL
    finally:
        sys.setswitchinterval(before)
