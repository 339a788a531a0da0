"""wav:PATH: a melody played through the whole pipeline, checked in the audio itself; files survive SIGTERM."""
from __future__ import annotations

import math
import os
import signal
import threading
import time
import wave
from pathlib import Path

import mido
import numpy
import pytest

import outputs
from outputs import open_outputs
from outputs.synth import SAMPLE_RATE, SynthOutput, SynthUnavailable
from outputs.wav import TAIL_SECONDS, WavOutput
from harness.processes import WorkerProcess, run_producer
from config.settings import Settings
from tests.song_files import write_song

MELODY = [60, 64, 67, 72, 71, 69, 65, 62, 76, 84]  # C4 to C6, each a different pitch from its neighbours
NOTE_SECONDS = 0.35
GAP_SECONDS = 0.1


def melody_timeline(notes: list[int]) -> list[tuple[float, list[int]]]:
    timeline = []
    for index, note in enumerate(notes):
        start = index * (NOTE_SECONDS + GAP_SECONDS)
        timeline += [(start, [0x90, note, 100]), (start + NOTE_SECONDS, [0x80, note, 0])]
    return timeline


def read_wav(path: Path) -> numpy.ndarray:
    """The file's frames as a mono float array; fails unless it is a complete 16-bit stereo WAV."""
    assert path.stat().st_size > 44, "not even a WAV header"
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, SAMPLE_RATE)
        frames = wav.readframes(wav.getnframes())
        assert len(frames) == wav.getnframes() * 4 and path.stat().st_size == 44 + len(frames), "truncated WAV"
    return numpy.frombuffer(frames, dtype=numpy.int16).reshape(-1, 2).mean(axis=1)


def fundamental_hz(audio: numpy.ndarray, start: float, end: float) -> float:
    """The fundamental in the window: the strongest peak between 50 Hz and 4 kHz, or the lowest
    subharmonic of it that is strong too (a low piano note's second harmonic can outweigh its first)."""
    window = audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
    spectrum = numpy.abs(numpy.fft.rfft(window * numpy.hanning(len(window)), n=8 * len(window)))
    frequencies = numpy.fft.rfftfreq(8 * len(window), 1 / SAMPLE_RATE)

    def peak_between(low: float, high: float) -> tuple[float, float]:
        """Height and frequency of the highest bin in the band, the frequency refined between bins."""
        band = numpy.flatnonzero((frequencies > low) & (frequencies < high))
        peak = band[numpy.argmax(spectrum[band])]
        left, centre, right = numpy.log(spectrum[peak - 1: peak + 2])
        shift = 0.5 * (left - right) / (left - 2 * centre + right)
        return spectrum[peak], float(frequencies[peak] + shift * (frequencies[1] - frequencies[0]))

    height, strongest = peak_between(50, 4000)
    for divisor in (4, 3, 2):
        sub_height, subharmonic = peak_between(strongest / divisor * 0.97, strongest / divisor * 1.03)
        if subharmonic > 50 and sub_height > 0.2 * height:
            return subharmonic
    return strongest


def semitones_off(frequency: float, note: int) -> float:
    return 12 * math.log2(frequency / (440.0 * 2 ** ((note - 69) / 12)))


def test_melody_through_the_cluster_is_rendered_at_the_right_pitches_and_length(tmp_path, broker_url):
    score = write_song(tmp_path / "melody.mid", melody_timeline(MELODY))
    wav_path = tmp_path / "heard.wav"
    env = {"BROKER_URL": broker_url, "MIDI_OUTPUT": f"wav:{wav_path}"}
    with WorkerProcess(env) as worker:
        assert run_producer([str(tmp_path / "melody.mid")], env).returncode == 0
        [summary] = worker.wait_for_summaries(1, timeout=60)
        # The song has ended: the file is complete now, while the worker still runs.
        assert len(read_wav(wav_path)) >= (score[-1][0] + TAIL_SECONDS) * SAMPLE_RATE * 0.95
    audio = read_wav(wav_path)

    played_seconds = summary["last_played_at"] - summary["first_played_at"]
    assert abs(len(audio) / SAMPLE_RATE - (played_seconds + TAIL_SECONDS)) < 0.01
    assert abs(played_seconds - score[-1][0]) < 0.1
    pitch_errors = []
    for index, note in enumerate(MELODY):
        start = index * (NOTE_SECONDS + GAP_SECONDS)
        sounding = audio[int((start + 0.05) * SAMPLE_RATE): int((start + NOTE_SECONDS) * SAMPLE_RATE)]
        assert numpy.sqrt(numpy.mean(sounding ** 2)) > 300, f"note {index} ({note}) is silent"
        pitch_errors.append(semitones_off(fundamental_hz(audio, start + 0.05, start + NOTE_SECONDS), note))
    print("pitch errors (cents):", [round(100 * error) for error in pitch_errors])
    assert max(abs(error) for error in pitch_errors) < 0.5, pitch_errors


def test_a_worker_stopped_mid_song_leaves_playable_wav_and_midi_files(tmp_path, broker_url):
    write_song(tmp_path / "long.mid", melody_timeline(MELODY))
    wav_path, mid_path = tmp_path / "heard.wav", tmp_path / "heard.mid"
    env = {"BROKER_URL": broker_url, "MIDI_OUTPUT": f"wav:{wav_path},mid:{mid_path}", "MIDI_STATUS_INTERVAL": "0.5"}
    with WorkerProcess(env) as worker:
        producer = threading.Thread(target=run_producer, args=([str(tmp_path / "long.mid")], env))
        producer.start()
        assert worker.wait_for(lambda line: "status:" in line and " events" in line, timeout=30)
        time.sleep(0.5)
        worker.signal(signal.SIGTERM)
        assert worker.process.wait(20) is not None
    producer.join(60)
    assert not any("song summary" in line for line in worker.lines), "the song ended before the signal"

    audio = read_wav(wav_path)
    assert len(audio) > SAMPLE_RATE and numpy.abs(audio).max() > 1000
    notes = [message for message in mido.MidiFile(mid_path) if message.type == "note_on" and message.velocity]
    assert 2 <= len(notes) < len(MELODY)
    assert not list(tmp_path.glob("*.partial"))


def test_a_song_end_completes_the_file_and_pauses_the_clock(tmp_path):
    path = tmp_path / "two_songs.wav"
    with WavOutput(path, None) as wav:
        wav.send(mido.Message("note_on", note=69, velocity=100))
        time.sleep(0.2)
        wav.send(mido.Message("note_off", note=69))
        wav.song_ended(still_playing=False)
        first_song = read_wav(path)
        time.sleep(0.5)  # idle between songs: not written
        wav.send(mido.Message("note_on", note=69, velocity=100))
    both = read_wav(path)

    assert abs(len(first_song) / SAMPLE_RATE - (0.2 + TAIL_SECONDS)) < 0.02
    assert abs(len(both) / SAMPLE_RATE - (0.2 + 2 * TAIL_SECONDS)) < 0.02
    assert numpy.abs(both[len(first_song):]).max() > 1000, "the second song's note is missing"


def test_a_long_silence_is_written_cheaply_as_zeros(tmp_path):
    with WavOutput(tmp_path / "pause.wav", None) as wav:
        wav.send(mido.Message("note_on", note=69, velocity=100))
        wav.send(mido.Message("note_off", note=69))
        wav.clock_origin -= 60.0  # as if the next note came a minute later
        started = time.perf_counter()
        wav.send(mido.Message("note_on", note=69, velocity=100))
        cost = time.perf_counter() - started
    audio = read_wav(tmp_path / "pause.wav")
    print(f"one send after a 60 s pause: {cost * 1000:.1f} ms")
    assert len(audio) / SAMPLE_RATE > 60
    assert not audio[5 * SAMPLE_RATE: 59 * SAMPLE_RATE].any()
    assert cost < 1.0


@pytest.fixture
def no_midi_port(monkeypatch):
    """mido's JACK backend with no JACK server to reach: a real backend that lists no output port."""
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"midi_app_absent_{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    previous = mido.backend
    mido.set_backend("mido.backends.rtmidi/UNIX_JACK")
    yield
    mido.set_backend(previous)


def test_without_a_port_plays_through_the_synth_or_records_performance_wav(tmp_path, monkeypatch, no_midi_port, caplog):
    monkeypatch.chdir(tmp_path)
    try:
        SynthOutput(None).close()
        has_audio_device = True
    except SynthUnavailable:
        has_audio_device = False

    with open_outputs(Settings(outputs=("port",))) as output_set:
        [output] = output_set.outputs
        output_set.send(mido.Message("note_on", note=69, velocity=100), "song")
        time.sleep(0.2)
        output_set.release("song")

    if has_audio_device:
        assert isinstance(output, SynthOutput)
    else:
        assert isinstance(output, WavOutput)
        assert f"writing what is played to {tmp_path / outputs.FALLBACK_WAV}" in caplog.text
        assert "no audio device" in caplog.text
        assert numpy.abs(read_wav(tmp_path / outputs.FALLBACK_WAV)).max() > 1000
