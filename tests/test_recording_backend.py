"""tests/recording_backend.py, the probe the tests and benchmarks measure the worker with: every message in
order with its port and time, a second writer appends after the first, and a record half written is not
read."""
from __future__ import annotations

import time

import mido
import pytest

from tests import recording_backend
from tests.recording_backend import PORT_NAMES, RECORD, read_recording


@pytest.fixture
def backend(tmp_path, monkeypatch):
    monkeypatch.setenv("RECORDING_BACKEND_FILE", str(tmp_path / "recording.rec"))
    return mido.Backend("tests.recording_backend", load=True)


def test_every_message_is_recorded_in_order_with_its_port_and_the_time_it_was_sent(backend, tmp_path):
    before = time.time()
    first, second = (backend.open_output(name) for name in PORT_NAMES)
    first.send(mido.Message("note_on", note=60, velocity=90))
    second.send(mido.Message("sysex", data=[1, 2, 3]))
    first.send(mido.Message("control_change", control=123, value=0))
    first.close()
    second.close()

    played = read_recording(tmp_path / "recording.rec")
    assert [(entry["port"], entry["bytes"]) for entry in played] == [
        (PORT_NAMES[0], [0x90, 60, 90]), (PORT_NAMES[1], [0xF0, 1, 2, 3, 0xF7]), (PORT_NAMES[0], [0xB0, 123, 0])]
    times = [entry["time"] for entry in played]
    assert before <= times[0] <= times[1] <= times[2] <= time.time()


def test_a_port_opened_again_appends_after_what_was_recorded_and_names_its_port(backend, tmp_path):
    with backend.open_output(PORT_NAMES[1]) as port:
        port.send(mido.Message("note_on", note=1))
    # As a worker started again after a kill records to the same file.
    with backend.open_output(PORT_NAMES[0]) as port:
        port.send(mido.Message("note_on", note=2))

    played = read_recording(tmp_path / "recording.rec")
    assert [(entry["port"], entry["bytes"][1]) for entry in played] == [(PORT_NAMES[1], 1), (PORT_NAMES[0], 2)]


def test_a_record_whose_kind_is_not_yet_written_ends_what_is_read(backend, tmp_path):
    port = backend.open_output()
    port.send(mido.Message("note_on", note=1))
    port.send(mido.Message("note_on", note=2))
    writer = port._writer
    # The last record as another process would see it before its kind byte lands: written, kind NUL.
    last = writer.end - writer.base - RECORD.size - 3
    writer.map[last] = 0
    try:
        assert [entry["bytes"][1] for entry in read_recording(tmp_path / "recording.rec")] == [1]
    finally:
        writer.map[last] = recording_backend.MESSAGE
        port.close()
    assert [entry["bytes"][1] for entry in read_recording(tmp_path / "recording.rec")] == [1, 2]
