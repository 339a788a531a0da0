"""The record that travels on the notes topic: one MIDI event of one song, or a song's end."""
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


def message_from_bytes(data: list[int]) -> mido.Message:
    if not data or not 0x80 <= data[0] <= 0xEF:
        raise InvalidEvent(f"message {data!r} is not a channel voice message")
    try:
        return mido.Message.from_bytes(data)
    except (ValueError, TypeError) as exc:
        raise InvalidEvent(f"message {data!r}: {exc}") from None


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "song": (str,),
    "seq": (int,),
    "score_time": (int, float),
    "message": (list,),
    "sent_at": (int, float),
}


def decode_event(raw: bytes | None) -> MidiEvent:
    """Decode and validate one value from the topic; raises InvalidEvent naming the problem."""
    if not raw:
        raise InvalidEvent("empty value")
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(f"not JSON: {exc}") from None
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
    return MidiEvent(
        song=data["song"],
        seq=data["seq"],
        score_time=float(data["score_time"]),
        message=data["message"],
        sent_at=float(data["sent_at"]),
        end=end,
        speed_ratio=float(speed_ratio),
    )
