"""wav:PATH: a melody played through the whole pipeline, checked in the audio itself; every note where it was
played, for the cost of a hand-off; files survive SIGTERM."""
from __future__ import annotations

import math
import os
import signal
import statistics
import sys
import threading
import time
import wave
from pathlib import Path

import mido
import numpy
import pytest

import outputs
from adjustments.app import GIL_SWITCH_INTERVAL
from outputs import OutputSet, ThreadedOutput, open_outputs
from outputs.synth import SAMPLE_RATE, SynthOutput, SynthUnavailable
from outputs.wav import TAIL_SECONDS, WavOutput
from harness.processes import WorkerProcess, run_producer
from config.settings import Settings
from tests.song_files import write_song
from tests.waiting import wait_until

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


def header_frames(path: Path) -> int:
    """The frames the file's header says it holds: 0 until its output completes it at a song's end."""
    with wave.open(str(path)) as wav:
        return wav.getnframes()


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
        # The song has ended: the output's thread renders the tail and completes the file soon after
        # (the playing path never waits for it: under CI's load its header still said 0 frames when the
        # summary came, 2026-12-01), while the worker still runs.
        complete = (score[-1][0] + TAIL_SECONDS) * SAMPLE_RATE * 0.95
        wait_until(lambda: header_frames(wav_path) >= complete, 10, "the WAV's header stating the song's length")
        assert len(read_wav(wav_path)) >= complete
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
    wav = WavOutput(path, None)
    try:
        wav.play([mido.Message("note_on", note=69, velocity=100)], at=100.0)
        wav.play([mido.Message("note_off", note=69)], at=100.2)
        wav.song_ended(still_playing=False, at=100.2)
        first_song = read_wav(path)
        # Half a second idle between songs: not written.
        wav.play([mido.Message("note_on", note=69, velocity=100)], at=100.7)
    finally:
        wav.close()
    both = read_wav(path)

    assert abs(len(first_song) / SAMPLE_RATE - (0.2 + TAIL_SECONDS)) < 0.002
    assert abs(len(both) / SAMPLE_RATE - (0.2 + 2 * TAIL_SECONDS)) < 0.002
    assert numpy.abs(both[len(first_song):]).max() > 1000, "the second song's note is missing"


def test_a_long_silence_is_written_cheaply_as_zeros(tmp_path):
    wav = WavOutput(tmp_path / "pause.wav", None)
    try:
        wav.play([mido.Message("note_on", note=69, velocity=100), mido.Message("note_off", note=69)], at=0.0)
        started = time.perf_counter()
        wav.play([mido.Message("note_on", note=69, velocity=100)], at=60.0)  # a minute later
        cost = time.perf_counter() - started
    finally:
        wav.close()
    audio = read_wav(tmp_path / "pause.wav")
    print(f"rendering a 60 s pause: {cost * 1000:.1f} ms")
    assert len(audio) / SAMPLE_RATE > 60
    assert not audio[5 * SAMPLE_RATE: 59 * SAMPLE_RATE].any()
    assert cost < 1.0


@pytest.fixture
def worker_switch_interval():
    """The GIL switch interval the worker runs with, under which its threads share the interpreter."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    yield
    sys.setswitchinterval(before)


def test_a_chord_costs_the_playing_path_a_hand_off_while_its_thread_renders_the_audio(tmp_path,
                                                                                      worker_switch_interval):
    # A clock that moves 20 s between chords, with organ notes held: each chord makes the WAV render
    # 20 s of eight voices (~100 ms of FluidSynth here), which the playing path used to wait for.
    now = [0.0]
    path = tmp_path / "organ.wav"
    with ThreadedOutput(WavOutput(path, None), "wav") as wav:
        output_set = OutputSet([], [wav], clock=lambda: now[0])
        output_set.send(mido.Message("program_change", program=19), "organ")  # church organ: holds while held
        costs = []
        for index in range(9):
            now[0] += 20.0
            started = time.perf_counter()
            output_set.send_together([(mido.Message("note_on", note=48 + index, velocity=90), "organ")])
            costs.append(time.perf_counter() - started)
        now[0] += 20.0
        output_set.release("organ")
    audio = read_wav(path)

    median_ms = statistics.median(costs) * 1000
    print(f"hand-off of a chord: median {median_ms:.3f} ms, max {max(costs) * 1000:.3f} ms")
    # The target is 0.3 ms p99 of timing error at the port; this guard only catches rendering on the
    # playing path again, which costs the median chord tens of milliseconds.
    assert median_ms < 2.0
    # Everything was rendered all the same: 9 x 20 s, then the release and the tail.
    assert abs(len(audio) / SAMPLE_RATE - (10 * 20 + TAIL_SECONDS)) < 0.01
    assert numpy.abs(audio[-int((TAIL_SECONDS + 1) * SAMPLE_RATE):]).max() > 1000, "the last chord is missing"


WOOD_BLOCK = 76  # General MIDI percussion (channel 10): a sharp attack, down to 1% within 0.3 s
BLOCK_FRAMES = 64  # FluidSynth starts a note at the start of its next block of this many frames
NO_EFFECTS = [mido.Message("control_change", channel=9, control=control, value=0) for control in (91, 93)]
HIT = mido.Message("note_on", channel=9, note=WOOD_BLOCK, velocity=110)


def onset(audio: numpy.ndarray, around: int, threshold: float = 2000.0) -> int:
    """The first frame within 0.1 s of ``around`` loud enough to be a hit (its attack rises ~200 a frame),
    not the tail of one 0.3 s before (under 50)."""
    start = around - SAMPLE_RATE // 10
    return start + int(numpy.flatnonzero(numpy.abs(audio[start: around + SAMPLE_RATE // 10]) > threshold)[0])


def hit_attack_frames(tmp_path) -> int:
    """Frames from the start of the block a hit starts in to its onset(): the sound's own attack, for a
    hit after the first (the first hit of a key rises 8 frames later than the next ones)."""
    aligned = 100 * BLOCK_FRAMES
    wav = WavOutput(tmp_path / "reference.wav", None)
    try:
        wav.play([*NO_EFFECTS, HIT], at=0.0)
        wav.play([HIT], at=aligned / SAMPLE_RATE)
    finally:
        wav.close()
    return onset(read_wav(tmp_path / "reference.wav"), aligned) - aligned


class Behind:
    """A sink reached 0.1 s after each hand-off, as on a machine too busy to run its thread at once."""

    def __init__(self, sink) -> None:
        self.sink = sink

    def play(self, messages, at: float) -> None:
        time.sleep(0.1)
        self.sink.play(messages, at)

    def song_ended(self, still_playing: bool, at: float) -> None:
        self.sink.song_ended(still_playing, at)

    def close(self) -> None:
        self.sink.close()


def test_every_note_is_in_the_file_at_the_instant_it_was_played_however_late_its_thread(tmp_path):
    instants: list[float] = []

    def clock() -> float:
        instants.append(time.monotonic())
        return instants[-1]

    path = tmp_path / "hits.wav"
    played = []
    with ThreadedOutput(Behind(WavOutput(path, None)), "wav") as wav:
        output_set = OutputSet([], [wav], clock=clock)
        # No reverb or chorus, so each hit has died down before the next; a first hit not measured.
        output_set.send_together([(message, "hits") for message in [*NO_EFFECTS, HIT]])
        origin = instants[-1]
        for gap in [0.45, 0.3, 0.32, 0.5, 0.35, 0.41]:
            time.sleep(gap)
            output_set.send(HIT, "hits")
            played.append(instants[-1])
        time.sleep(0.2)  # All Sound Off, in the release, would cut the last hit off in its first block
        output_set.release("hits")
    audio = read_wav(path)

    attack = hit_attack_frames(tmp_path)
    expected = [round((at - origin) * SAMPLE_RATE) for at in played]
    late = [onset(audio, frame) - attack - frame for frame in expected]
    print(f"onsets after their instant, frames (the hit's own attack, {attack}, taken off):", late)
    # FluidSynth's dither (±1) may move where the attack crosses the threshold by a frame.
    assert all(-1 <= frames < BLOCK_FRAMES for frames in late), late


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
        [threaded] = output_set.outputs
        output = threaded.sink
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
