"""outputs/port.py: choosing the MIDI output port a user names, and the error that lists what exists."""
from __future__ import annotations

import uuid

import pytest

from harness.processes import WorkerProcess
from outputs.port import PortError, choose_port
from tests.jack_server import JACK_BACKEND

PORTS = ["Midi Through:Midi Through Port-0 14:0", "FLUID Synth (1234):Synth input port (1234:0) 128:0",
         "TiMidity:TiMidity port 0 129:0", "TiMidity:TiMidity port 1 129:1"]


def test_an_exact_name_is_chosen_even_when_it_is_part_of_others():
    ports = ["Synth", "Synth 2", "Big Synth"]

    assert choose_port(ports, "Synth") == "Synth"


@pytest.mark.parametrize("wanted, chosen", [
    ("fluid", PORTS[1]),
    ("SYNTH INPUT", PORTS[1]),
    ("through", PORTS[0]),
    ("port 1", PORTS[3]),
])
def test_a_unique_part_of_a_name_chooses_that_port_ignoring_case(wanted, chosen):
    assert choose_port(PORTS, wanted) == chosen


def test_a_part_of_several_names_is_refused_listing_every_port():
    with pytest.raises(PortError) as error:
        choose_port(PORTS, "timidity")

    message = str(error.value)
    assert message.startswith("MIDI_OUTPUT_PORT='timidity' matches several ports")
    assert all(repr(name) in message for name in PORTS)


def test_a_name_matching_nothing_is_refused_listing_every_port():
    with pytest.raises(PortError) as error:
        choose_port(PORTS, "Yamaha")

    message = str(error.value)
    assert message.startswith("MIDI_OUTPUT_PORT='Yamaha' matches no port")
    assert message.endswith("output ports: " + ", ".join(repr(name) for name in PORTS))


def test_with_no_ports_at_all_the_error_says_none():
    with pytest.raises(PortError, match=r"MIDI_OUTPUT_PORT='Synth' matches no port; output ports: none$"):
        choose_port([], "Synth")


def test_a_worker_without_any_port_says_why_once_and_none_of_the_c_libraries_noise(tmp_path, broker_url):
    # mido's JACK backend with no JACK server to reach: libjack writes five lines of its own to stderr
    # each time ports are listed (ALSA without a sequencer writes one), and the worker opened its
    # outputs twice (the start-up check, then the agent), saying each warning twice.
    env = {"BROKER_URL": broker_url, "MIDI_OUTPUT": "port", "MIDO_BACKEND": JACK_BACKEND,
           "JACK_DEFAULT_SERVER": f"midi_app_absent_{uuid.uuid4().hex[:8]}", "JACK_NO_START_SERVER": "1"}
    # In a folder of its own: the performance.wav it falls back on is written there.
    with WorkerProcess(env, cwd=tmp_path) as worker:
        pass
    said = "\n".join(worker.lines)
    assert said.count("no MIDI output port exists") == 1, said
    assert said.count("cannot list MIDI output ports") == 1, said
    for noise in ("Cannot connect to server", "jack server is not running", "JackShmReadWritePtr", "ALSA lib"):
        assert noise not in said, said
    assert (tmp_path / "performance.wav").exists() or "printing notes instead" in said
