"""models/midi_event.py: records on the wire, decoded back or refused with the reason."""
from __future__ import annotations

import json

import mido
import pytest

from models.midi_event import InvalidEvent, MidiEvent, decode_record, encode_events

SONG = 'naïve "song".mid@1a2b3c4d'
TIMED = [(0.0, [0xC0, 5]), (0.1 + 0.2, [0x90, 60, 100]), (1 / 3, [0xB1, 64, 127]), (2.5, [0xE0, 0, 64]),
         (2.5, [0xD0, 30]), (3.75, [0xA2, 61, 20]), (4.0, [0x80, 60, 0])]


def event_fields(event: MidiEvent) -> tuple:
    return (event.song, event.seq, event.score_time, event.message, event.sent_at, event.end, event.speed_ratio)


def valid_event(**changes) -> dict:
    return {"song": "s", "seq": 0, "score_time": 0.5, "message": [0x90, 60, 100], "sent_at": 1.5, **changes}


def decode_one(data) -> MidiEvent:
    """The single event in a record holding ``data``; raises the InvalidEvent it was refused with."""
    events, problems = decode_record(json.dumps([data]).encode())
    if problems:
        raise problems[0]
    [event] = events
    return event


def test_encoded_events_are_byte_for_byte_what_each_record_dumps():
    value = encode_events(SONG, 7, TIMED, sent_at=1764000000.123456, speed_ratio=1.1, padding="ab" * 5)

    dumped = [
        MidiEvent(song=SONG, seq=7 + offset, score_time=score_time, message=message, sent_at=1764000000.123456,
                  speed_ratio=1.1, padding="ab" * 5 if offset == 0 else "").dumps()
        for offset, (score_time, message) in enumerate(TIMED)
    ]
    assert value == b"[" + b",".join(dumped) + b"]"


def test_events_round_trip_through_a_record_and_a_bare_object():
    value = encode_events(SONG, 7, TIMED, sent_at=1764000000.5, speed_ratio=0.0)

    events, problems = decode_record(value)

    assert problems == []
    assert [event_fields(event) for event in events] == [
        (SONG, 7 + offset, score_time, message, 1764000000.5, False, 0.0)
        for offset, (score_time, message) in enumerate(TIMED)
    ]
    bare = MidiEvent(song=SONG, seq=3, score_time=1.25, message=[0x91, 40, 1], sent_at=2.0, speed_ratio=2.0)
    assert [event_fields(event) for event in decode_record(bare.dumps())[0]] == [event_fields(bare)]


def test_the_end_event_carries_the_event_count_and_no_message():
    [end] = decode_record(encode_events(SONG, 12, [(4.0, [])], sent_at=5.0, speed_ratio=1.0, end=True))[0]

    assert (end.seq, end.end, end.message, end.score_time) == (12, True, [], 4.0)


@pytest.mark.parametrize("raw, reason", [
    (None, "empty value"),
    (b"", "empty value"),
    (b"\xff\xfe\x00garbage", "not JSON"),
    (b'{"song": "s", "seq": ', "not JSON"),
    (b"[]", "empty array"),
])
def test_a_value_that_is_not_events_at_all_is_refused(raw, reason):
    with pytest.raises(InvalidEvent, match=reason):
        decode_record(raw)


@pytest.mark.parametrize("data, reason", [
    (42, "expected a JSON object, got int"),
    ("note", "expected a JSON object, got str"),
    ([valid_event()], "expected a JSON object, got list"),
    ({k: v for k, v in valid_event().items() if k != "song"}, "field 'song' is None"),
    (valid_event(song=5), "field 'song' is 5, expected str"),
    (valid_event(seq="0"), "field 'seq' is '0', expected int"),
    (valid_event(seq=True), "field 'seq' is True, expected int"),
    (valid_event(seq=1.0), "field 'seq' is 1.0, expected int"),
    (valid_event(score_time="0.5"), "field 'score_time'"),
    (valid_event(message="90 3c 64"), "field 'message'"),
    (valid_event(sent_at=None), "field 'sent_at' is None"),
    (valid_event(end="yes"), "field 'end' is 'yes', expected bool"),
    (valid_event(speed_ratio=-1), "field 'speed_ratio' is -1"),
    (valid_event(speed_ratio=True), "field 'speed_ratio' is True"),
    (valid_event(speed_ratio="fast"), "field 'speed_ratio'"),
    (valid_event(seq=-1), "out-of-range seq"),
])
def test_an_event_of_the_wrong_shape_is_refused_naming_the_field(data, reason):
    with pytest.raises(InvalidEvent, match=reason.replace("(", r"\(")):
        decode_one(data)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_times_that_are_not_finite_are_refused(value):
    # Python's json reads NaN and Infinity, so a producer in Python can send them.
    for field in ("score_time", "sent_at"):
        with pytest.raises(InvalidEvent, match="out-of-range"):
            decode_one(valid_event(**{field: value}))
    with pytest.raises(InvalidEvent, match="speed_ratio"):
        decode_one(valid_event(speed_ratio=value))


@pytest.mark.parametrize("message, reason", [
    ([0x90, 300, 100], "data bytes must be 0..127"),  # note 300
    ([0x90, 60, 128], "data bytes must be 0..127"),
    ([0x90, 60, -1], "data bytes must be 0..127"),
    ([0x90, 60, 1.5], "data bytes must be 0..127"),
    ([0x90, True, 100], "data bytes must be 0..127"),
    ([0x90 | 99, 60, 100], "not a channel voice message"),  # channel 99 overflows into a system status
    ([0xF0, 1, 2, 0xF7], "not a channel voice message"),  # sysex
    ([0xF8], "not a channel voice message"),  # clock
    ([0xFF], "not a channel voice message"),  # reset
    ([0x3C, 100], "not a channel voice message"),  # a data byte where the status belongs
    ([0x7F0, 60, 100], "not a channel voice message"),
    (["0x90", 60, 100], "not a channel voice message"),
    ([], "not a channel voice message"),
    ([0x90, 60], "wrong number of bytes"),
    ([0xC0, 5, 6], "wrong number of bytes"),
    ([0xE0, 0, 64, 0], "wrong number of bytes"),
])
def test_a_message_that_is_not_one_channel_voice_message_is_refused(message, reason):
    with pytest.raises(InvalidEvent, match=reason):
        decode_one(valid_event(message=message))


def test_one_bad_event_does_not_cost_its_neighbours():
    record = json.dumps([valid_event(seq=0), valid_event(seq=1, message=[0x90, 300, 1]), valid_event(seq=2)])

    events, problems = decode_record(record.encode())

    assert [event.seq for event in events] == [0, 2]
    assert len(problems) == 1 and "0..127" in str(problems[0])


@pytest.mark.parametrize("message", [
    mido.Message("note_on", channel=3, note=60, velocity=100),
    mido.Message("note_off", channel=15, note=127, velocity=0),
    mido.Message("polytouch", channel=1, note=61, value=20),
    mido.Message("control_change", channel=0, control=64, value=127),
    mido.Message("program_change", channel=9, program=0),
    mido.Message("aftertouch", channel=2, value=30),
    mido.Message("pitchwheel", channel=4, pitch=-8192),
])
def test_to_message_gives_back_the_mido_message(message):
    event = decode_one(valid_event(message=message.bytes()))

    assert event.to_message() == message


def test_to_message_refuses_bytes_that_are_not_a_channel_voice_message():
    end = MidiEvent(song="s", seq=3, score_time=1.0, message=[], sent_at=1.0, end=True)

    with pytest.raises(InvalidEvent, match="not a channel voice message"):
        end.to_message()
    with pytest.raises(InvalidEvent, match="0..127"):
        MidiEvent(song="s", seq=0, score_time=0.0, message=[0x90, 200, 1], sent_at=1.0).to_message()
