"""The record of one MIDI event of a song (or its end), and how events travel on the notes topic.

A Kafka value on the notes topic is a JSON array of MidiEvent objects of one song, keyed by the
song: the events due at the same instant (a chord), or a burst's worth when publishing as fast as
possible. A bare object is read as a one-event array, so any producer can send single events.
Packing amortises Faust's per-record cost (about 100 µs here), which caps a worker at ~10,000
records/s however little it does per event.
"""
from __future__ import annotations

import json
import math
from typing import Any

import faust
import mido


class InvalidEvent(ValueError):
    """Bytes on the topic that are not a playable MidiEvent; the message says what is wrong."""


class MidiEvent(faust.Record, serializer="json", include_metadata=False):
    """One channel voice message of a song, as published by ``produce-midi``.

    ``seq`` numbers the song's events from 0 without gaps; the end event carries ``seq`` equal to the
    song's event count and ``end=True``, so a consumer can tell how many events it should have seen.
    Times: ``score_time`` is seconds from the song's start in the score, which the producer played at
    ``speed_ratio`` (0: as fast as it could); ``sent_at`` is the producer's wall clock
    (``time.time()``) when it sent the event, for measuring end-to-end latency.
    """

    song: str
    seq: int
    score_time: float
    message: list[int]
    sent_at: float
    end: bool = False
    speed_ratio: float = 1.0
    padding: str = ""

    def to_message(self) -> mido.Message:
        """The mido message; raises InvalidEvent for bytes that are not a channel voice message."""
        return message_from_bytes(self.message)


# Data bytes that follow each kind of channel voice status byte (high nibble).
DATA_BYTES = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}


def check_message(data: Any) -> None:
    """Raise InvalidEvent unless ``data`` is the bytes of one channel voice message."""
    if not isinstance(data, list) or not data or not isinstance(data[0], int) or not 0x80 <= data[0] <= 0xEF:
        raise InvalidEvent(f"message {data!r} is not a channel voice message")
    if len(data) != 1 + DATA_BYTES[data[0] & 0xF0]:
        raise InvalidEvent(f"message {data!r} has the wrong number of bytes")
    for byte in data[1:]:
        if not isinstance(byte, int) or isinstance(byte, bool) or not 0 <= byte <= 127:
            raise InvalidEvent(f"message {data!r}: data bytes must be 0..127")


def message_from_bytes(data: list[int]) -> mido.Message:
    check_message(data)
    return mido.Message.from_bytes(data)


def encode_events(song: str, first_seq: int, timed_messages: list[tuple[float, list[int]]], *, sent_at: float,
                  speed_ratio: float, end: bool = False, padding: str = "") -> bytes:
    """One Kafka value: the JSON array of consecutive events of ``song``, numbered from ``first_seq``.

    Byte for byte what ``MidiEvent(...).dumps()`` of each event gives (the tests hold it to that),
    written directly because building a Record per event costs ~9 µs, more than everything else a
    burst spends per event. ``padding`` goes in the first event.
    """
    head = '{"song":' + json.dumps(song) + ',"seq":'
    tail = f',"sent_at":{sent_at!r},"end":{"true" if end else "false"},"speed_ratio":{float(speed_ratio)!r},"padding":'
    parts = [
        f'{head}{first_seq + offset},"score_time":{float(score_time)!r},"message":[{",".join(map(str, message))}]'
        f'{tail}{json.dumps(padding) if offset == 0 else chr(34) * 2}}}'
        for offset, (score_time, message) in enumerate(timed_messages)
    ]
    return ("[" + ",".join(parts) + "]").encode()


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "song": (str,),
    "seq": (int,),
    "score_time": (int, float),
    "message": (list,),
    "sent_at": (int, float),
}


def event_from_data(data: Any) -> MidiEvent:
    """Validate one decoded JSON object as a MidiEvent; raises InvalidEvent naming the problem."""
    if not isinstance(data, dict):
        raise InvalidEvent(f"expected a JSON object, got {type(data).__name__}")
    for name, types in _FIELD_TYPES.items():
        value = data.get(name)
        if not isinstance(value, types) or isinstance(value, bool):
            raise InvalidEvent(f"field {name!r} is {value!r}, expected {types[0].__name__}")
    end = data.get("end", False)
    if not isinstance(end, bool):
        raise InvalidEvent(f"field 'end' is {end!r}, expected bool")
    speed_ratio = data.get("speed_ratio", 1.0)
    if not isinstance(speed_ratio, (int, float)) or isinstance(speed_ratio, bool) or not 0 <= speed_ratio < math.inf:
        raise InvalidEvent(f"field 'speed_ratio' is {speed_ratio!r}, expected a number >= 0")
    if data["seq"] < 0 or not math.isfinite(data["score_time"]) or not math.isfinite(data["sent_at"]):
        raise InvalidEvent(f"out-of-range seq, score_time or sent_at in {str(data)[:120]}")
    if not end:
        check_message(data["message"])
    return MidiEvent(
        song=data["song"],
        seq=data["seq"],
        score_time=float(data["score_time"]),
        message=data["message"],
        sent_at=float(data["sent_at"]),
        end=end,
        speed_ratio=float(speed_ratio),
    )


def decode_record(raw: bytes | None) -> tuple[list[MidiEvent], list[InvalidEvent]]:
    """Decode one value from the topic: an event object, or an array of events.

    Returns the valid events and a problem per invalid one, so one bad event does not cost its
    neighbours; raises InvalidEvent when the value as a whole is unusable.
    """
    if not raw:
        raise InvalidEvent("empty value")
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(f"not JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise InvalidEvent("empty array")
    events, problems = [], []
    for item in items:
        try:
            events.append(event_from_data(item))
        except InvalidEvent as exc:
            problems.append(exc)
    return events, problems
