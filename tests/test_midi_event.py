"""models/midi_event.py: records on the wire, decoded back or refused with the reason."""
from __future__ import annotations

import json
from pathlib import Path

import mido
import pytest
from hypothesis import given, strategies as st

from models.midi_event import (InvalidEvent, MidiEvent, check_message, decode_record, encode_events, part_key,
                               split_part)
from outputs import OutputSet
from playback.player import Player

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
    value = encode_events(SONG, 7, TIMED, sent_at=1764000000.123456, speed_ratio=1.1, padding="ab" * 5,
                          song_start=1764000000.0625)

    dumped = [
        MidiEvent(song=SONG, seq=7 + offset, score_time=score_time, message=message, sent_at=1764000000.123456,
                  speed_ratio=1.1, padding="ab" * 5 if offset == 0 else "", song_start=1764000000.0625).dumps()
        for offset, (score_time, message) in enumerate(TIMED)
    ]
    assert value == b"[" + b",".join(dumped) + b"]"


def test_the_song_start_stamp_travels_in_every_event_and_values_without_it_read_as_none():
    stamped, _ = decode_record(encode_events(SONG, 0, TIMED, sent_at=5.0, speed_ratio=1.0, song_start=4.5))
    unstamped_value = encode_events(SONG, 0, TIMED, sent_at=5.0, speed_ratio=1.0)
    unstamped, _ = decode_record(unstamped_value)

    assert [event.song_start for event in stamped] == [4.5] * len(TIMED)
    assert b"song_start" not in unstamped_value  # as producers before the stamp wrote their values
    assert [event.song_start for event in unstamped] == [None] * len(TIMED)
    assert decode_one(valid_event(song_start=None)).song_start is None


@pytest.mark.parametrize("value", ["1e400", "-1e400", '"soon"', "true"])
def test_a_song_start_that_is_not_a_finite_number_is_refused_naming_the_field(value):
    raw = json.dumps([valid_event()]).encode().replace(b"}]", b', "song_start": ' + value.encode() + b"}]")

    events, problems = decode_record(raw)

    assert events == [] and len(problems) == 1
    assert "song_start" in str(problems[0])


def test_a_parts_key_names_its_song_and_its_part():
    assert part_key(SONG, "ch", 10) == SONG + "/ch10"
    assert part_key(SONG, "tr", 0) == SONG + "/tr0"
    assert split_part(part_key(SONG, "ch", 10)) == (SONG, "ch10")
    assert split_part(SONG) == (SONG, None)
    # Only a channel or track part counts: anything else after a slash is part of another producer's id.
    assert split_part("ab/cd") == ("ab/cd", None)
    with pytest.raises(ValueError):
        part_key(SONG, "voice", 1)


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
    (42, "Expected `object`, got `int`"),
    ("note", "Expected `object`, got `str`"),
    ([valid_event()], "Expected `object`, got `array`"),
    ({k: v for k, v in valid_event().items() if k != "song"}, "field 'song' is missing"),
    (valid_event(song=5), "field 'song': Expected `str`, got `int`"),
    (valid_event(seq="0"), "field 'seq': Expected `int`, got `str`"),
    (valid_event(seq=True), "field 'seq': Expected `int`, got `bool`"),
    (valid_event(seq=1.0), "field 'seq': Expected `int`, got `float`"),
    (valid_event(score_time="0.5"), "field 'score_time': Expected `float`, got `str`"),
    (valid_event(message="90 3c 64"), "field 'message': Expected `array`, got `str`"),
    (valid_event(sent_at=None), "field 'sent_at': Expected `float`, got `null`"),
    (valid_event(end="yes"), "field 'end': Expected `bool`, got `str`"),
    (valid_event(speed_ratio=-1), "field 'speed_ratio': Expected `float` >= 0"),
    (valid_event(speed_ratio=True), "field 'speed_ratio': Expected `float`, got `bool`"),
    (valid_event(speed_ratio="fast"), "field 'speed_ratio': Expected `float`, got `str`"),
    (valid_event(seq=-1), "field 'seq': Expected `int` >= 0"),
])
def test_an_event_of_the_wrong_shape_is_refused_naming_the_field(data, reason):
    with pytest.raises(InvalidEvent, match=reason.replace("(", r"\(")):
        decode_one(data)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_times_that_are_not_finite_are_refused(value):
    # Python's json writes NaN and Infinity, which JSON does not have: the value is refused whole.
    for field in ("score_time", "sent_at", "speed_ratio"):
        with pytest.raises(InvalidEvent, match="not JSON"):
            decode_one(valid_event(**{field: value}))


@pytest.mark.parametrize("field", ["score_time", "sent_at", "speed_ratio"])
def test_a_number_too_large_for_a_float_is_refused_naming_the_field(field):
    raw = json.dumps([valid_event(**{field: 7.25})]).replace("7.25", "1e999").encode()

    events, problems = decode_record(raw)

    assert events == [] and [str(problem) for problem in problems] == [f"field {field!r}: Number out of range"]


@pytest.mark.parametrize("message, reason", [
    ([0x90, 300, 100], "data bytes must be 0..127"),  # note 300
    ([0x90, 60, 128], "data bytes must be 0..127"),
    ([0x90, 60, -1], "data bytes must be 0..127"),
    ([0x90, 60, 1.5], "field 'message': Expected `int`, got `float`"),
    ([0x90, True, 100], "field 'message': Expected `int`, got `bool`"),
    ([0x90 | 99, 60, 100], "not a channel voice message"),  # channel 99 overflows into a system status
    ([0xF0, 1, 2, 0xF7], "not a channel voice message"),  # sysex
    ([0xF8], "not a channel voice message"),  # clock
    ([0xFF], "not a channel voice message"),  # reset
    ([0x3C, 100], "not a channel voice message"),  # a data byte where the status belongs
    ([0x7F0, 60, 100], "not a channel voice message"),
    (["0x90", 60, 100], "field 'message': Expected `int`, got `str`"),
    ([], "not a channel voice message"),
    ([0x90, 60], "wrong number of bytes"),
    ([0xC0, 5, 6], "wrong number of bytes"),
    ([0xE0, 0, 64, 0], "wrong number of bytes"),
])
def test_a_message_that_is_not_one_channel_voice_message_is_refused(message, reason):
    with pytest.raises(InvalidEvent, match=reason):
        decode_one(valid_event(message=message))


@given(st.lists(st.integers(min_value=-2, max_value=0x100), max_size=4)
       | st.tuples(st.integers(0x80, 0xEF), st.integers(-1, 128), st.integers(-1, 128)).map(list))
def test_decoding_accepts_exactly_the_messages_check_message_accepts(message):
    # The decoder's fast check must neither let through nor refuse a message the full check would not.
    try:
        check_message(message)
        valid = True
    except InvalidEvent:
        valid = False
    try:
        decode_one(valid_event(message=message))
        decoded = True
    except InvalidEvent:
        decoded = False
    assert decoded == valid


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


WIRE_FIXTURE = Path(__file__).parent / "fixtures" / "wire_2026-11-29.jsonl"


def test_values_written_by_the_producer_before_the_msgspec_wire_format_still_play():
    # Bytes as produce-midi wrote them on 2026-11-29 (JSON built by hand): a song's records, its end
    # event, and a bare object from another producer.
    values = WIRE_FIXTURE.read_bytes().splitlines()
    received = []

    class Port:
        def send(self, message) -> None:
            received.append(message.bytes())

    player = Player(OutputSet([Port()]))
    for value in values:
        player.handle(value)

    assert player.invalid == 0
    assert received[:10] == [[0xC0, 0], [0x90, 64, 80], [0x90, 48, 70], [0x80, 64, 0], [0x90, 64, 80],
                             [0xE0, 0, 64], [0xB0, 64, 127], [0x80, 64, 0], [0x80, 48, 0], [0xB0, 64, 0]]
    assert [0x91, 60, 100] in received
    assert list(player.finished) == ["ode_to_joy.mid@5e1f0a2b"]
    # Encoding today gives the very same bytes.
    assert encode_events("ode_to_joy.mid@5e1f0a2b", 3, [(0.5, [0x80, 64, 0])], sent_at=1764400000.625,
                         speed_ratio=1.0) == values[1]
