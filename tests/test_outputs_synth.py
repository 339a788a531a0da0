"""The built-in synth: SoundFonts found or a clear line on what to install; every kind of message sounds."""
from __future__ import annotations

import subprocess
import time

import mido
import numpy
import pytest

from config.settings import Settings
from outputs import open_outputs
from outputs.synth import SynthOutput, SynthUnavailable, find_soundfont, new_synth, play
from tests.jack_server import jack_env  # noqa: F401  (fixture)
from tests.song_files import every_kind_timeline


def loudness(synth, seconds: float = 0.2) -> float:
    """Peak of the next ``seconds`` the synth renders."""
    return float(numpy.abs(synth.get_samples(int(44100 * seconds))).max())


def test_a_system_soundfont_is_found_where_debian_keeps_them():
    assert find_soundfont().is_file()


def test_no_soundfont_anywhere_says_what_to_install(tmp_path):
    with pytest.raises(SynthUnavailable) as missing:
        find_soundfont(search_dirs=(str(tmp_path),))
    assert "apt-get install fluid-soundfont-gm" in str(missing.value) and "MIDI_SOUNDFONT" in str(missing.value)


def test_a_missing_midi_soundfont_file_is_named(tmp_path):
    with pytest.raises(SynthUnavailable, match=f"MIDI_SOUNDFONT={tmp_path}/absent.sf2 does not exist"):
        new_synth(str(tmp_path / "absent.sf2"))


def test_a_file_that_is_no_soundfont_is_refused(tmp_path):
    (tmp_path / "fake.sf2").write_bytes(b"RIFF not really")
    with pytest.raises(SynthUnavailable, match="cannot load the SoundFont"):
        new_synth(str(tmp_path / "fake.sf2"))


def test_every_kind_of_message_plays_and_the_release_silences_it():
    synth = new_synth(None)
    try:
        sounded = []
        for _, data in every_kind_timeline(seconds=1.0):
            play(synth, mido.Message.from_bytes(data))
            sounded.append(loudness(synth, 0.02))
        assert max(sounded) > 1000
        play(synth, mido.Message("note_on", channel=9, note=38, velocity=100))  # a snare on the GM drum channel
        assert loudness(synth) > 1000
        for channel in (0, 1, 9):
            play(synth, mido.Message("control_change", channel=channel, control=64, value=0))
            play(synth, mido.Message("control_change", channel=channel, control=120, value=0))
        loudness(synth, 2.0)  # the reverb dies away
        assert loudness(synth) <= 2, "still sounding after All Sound Off"
        assert synth.get_active_voice_count() == 0
    finally:
        synth.delete()


def test_no_audio_device_is_one_clear_line_without_the_libraries_noise(capfd):
    with pytest.raises(SynthUnavailable) as unavailable:
        SynthOutput(None, driver="alsa", device="hw:99")  # a sound card that does not exist
    message = str(unavailable.value)
    print(message)
    assert message.startswith("no audio device for the synth: FluidSynth's alsa driver failed (fluidsynth:")
    assert "\n" not in message and "MIDI_OUTPUT=wav:PATH" in message
    assert "ALSA lib" not in capfd.readouterr().err


def test_the_synth_plays_through_an_audio_server_named_by_midi_synth_driver(jack_env):  # noqa: F811
    """Where an audio device exists (here a JACK server, as on a Linux desktop) the synth opens it."""
    with open_outputs(Settings(outputs=("synth",), synth_driver="jack")) as output_set:
        [synth] = output_set.threaded
        ports = subprocess.run(["jack_lsp"], capture_output=True, text=True, check=True).stdout
        output_set.send(mido.Message("note_on", note=69, velocity=100), "song")
        deadline = time.monotonic() + 5
        while not synth.sink.synth.get_active_voice_count() and time.monotonic() < deadline:
            time.sleep(0.01)  # played on the synth's own thread
        assert synth.sink.synth.get_active_voice_count() > 0
    assert "fluidsynth" in ports, ports
