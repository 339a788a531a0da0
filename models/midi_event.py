"""The record of one MIDI event of a song (or its end), and how events travel on the notes topic.

A Kafka value on the notes topic is a JSON array of MidiEvent objects of one song, keyed by the
song: the events due at the same instant (a chord), or a burst's worth when publishing as fast as
possible. A bare object is read as a one-event array, so any producer can send single events.
Packing amortises Faust's per-record cost (about 100 µs here), which caps a worker at ~10,000
records/s however little it does per event.

The wire format is declared once: the MidiEvent Record's fields, and FIELD_LIMITS for what their
types alone do not say. From them msgspec builds ``MidiEvent.wire``, the struct that encodes, decodes
and validates a value (a 64-event record: ~40 µs to decode and check, where json and checks by hand
took ~400 µs), and the Faust codec ``midi_events`` the Record serializes with.
"""
from __future__ import annotations

import re
import sys
from typing import Annotated, Any, Optional, get_args

import faust
import mido
import msgspec
from faust.serializers import codecs

CODEC = "midi_events"


class InvalidEvent(ValueError):
    """Bytes on the topic that are not a playable MidiEvent; the message says what is wrong."""


class MidiEvent(faust.Record, serializer=CODEC, include_metadata=False):
    """One channel voice message of a song, as published by ``produce-midi``.

    ``seq`` numbers the song's events from 0 without gaps; the end event carries ``seq`` equal to the
    song's event count and ``end=True``, so a consumer can tell how many events it should have seen.
    Times: ``score_time`` is seconds from the song's start in the score, which the producer played at
    ``speed_ratio`` (0: as fast as it could); ``sent_at`` is the producer's wall clock
    (``time.time()``) when it sent the event, for measuring end-to-end latency; ``song_start`` is the
    producer's wall clock when the song's score time 0 was due, the same in every event of the song (all
    its parts), so workers playing its parts share one playout clock (playback/playout.py). None: a
    producer from before it, whose events the worker anchors on the first one it sees.

    ``song`` is the song id, or for one part of a song (``produce-midi --key-by channel|track``) the
    part's key, ``<song id>/ch<N>`` or ``<song id>/tr<N>`` (part_key): sequence numbers, the end event,
    dedupe and resume points all go by it, so each part is counted as a song of its own.
    """

    song: str
    seq: int
    score_time: float
    message: list[int]
    sent_at: float
    end: bool = False
    speed_ratio: float = 1.0
    padding: str = ""
    # Last: encode_events leaves it out, when None, by leaving out the last field.
    song_start: float | None = None

    def to_message(self) -> mido.Message:
        """The mido message; raises InvalidEvent for bytes that are not a channel voice message."""
        return message_from_bytes(self.message)


FINITE = msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)
# What the field types alone do not say; the message's bytes are checked after decoding (check_message).
FIELD_LIMITS = {"seq": msgspec.Meta(ge=0), "score_time": FINITE, "sent_at": FINITE,
                "speed_ratio": msgspec.Meta(ge=0, le=sys.float_info.max), "song_start": FINITE}

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


# The length of a channel voice message by its status byte.
MESSAGE_LENGTH = {status: 1 + DATA_BYTES[status & 0xF0] for status in range(0x80, 0xF0)}


def _check_after_decoding(event) -> None:
    # A ValueError here becomes msgspec's ValidationError, with InvalidEvent's text. msgspec has made
    # the message a list of ints (no bools), so a valid one needs only its length and data bytes
    # checked: 0.1 µs where check_message takes 0.5 µs, for every event a worker reads.
    if event.end:
        return
    data = event.message
    # Data bytes are data[1] and data[-1] (one or two); OR-ed, they stay in 0..127 only if both do.
    if not data or MESSAGE_LENGTH.get(data[0]) != len(data) or not 0 <= (data[1] | data[-1]) <= 127:
        check_message(data)  # says what is wrong


def _wire_struct() -> type[msgspec.Struct]:
    """The msgspec struct of MidiEvent's fields, in their order, with their defaults and FIELD_LIMITS."""
    fields = []
    for name, kind in MidiEvent._options.fields.items():
        if name in FIELD_LIMITS:
            # An optional field's limits apply to its value: msgspec takes them on the number, not the union.
            optional = type(None) in get_args(kind)
            kind = Annotated[next(arg for arg in get_args(kind) if arg is not type(None)) if optional else kind,
                             FIELD_LIMITS[name]]
            kind = Optional[kind] if optional else kind
        default = MidiEvent._options.defaults.get(name, msgspec.NODEFAULT)
        fields.append((name, kind, default))
    return msgspec.defstruct("MidiEventWire", fields, namespace={
        "__post_init__": _check_after_decoding, "to_message": MidiEvent.to_message,
        "__doc__": "MidiEvent as it travels: built from the Record's fields (models/midi_event.py)."})


MidiEvent.wire = _wire_struct()
FIELDS = tuple(MidiEvent._options.fields)
_encoder = msgspec.json.Encoder()
_value_decoder = msgspec.json.Decoder(list[MidiEvent.wire] | MidiEvent.wire)
_event_decoder = msgspec.json.Decoder(MidiEvent.wire)
_items_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_FIELD_IN_PATH = re.compile(r"^(?P<reason>.*) - at `\$(?:\[\d+\])?\.(?P<field>\w+)")
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<field>\w+)`")
_AT_ITEM = re.compile(r" - at `\$(?:\[\d+\])?`$")


class MidiEventsCodec(codecs.Codec):
    """Faust's codec for the notes topic's values, through MidiEvent.wire."""

    def _dumps(self, obj: Any) -> bytes:
        return _encoder.encode(obj)

    def _loads(self, s: bytes) -> Any:
        return _value_decoder.decode(s)


codecs.register(CODEC, MidiEventsCodec())


def encode_events(song: str, first_seq: int, timed_messages: list[tuple[float, list[int]]], *, sent_at: float,
                  speed_ratio: float, end: bool = False, padding: str = "", song_start: float | None = None) -> bytes:
    """One Kafka value: the JSON array of consecutive events of ``song``, numbered from ``first_seq``.

    Byte for byte what ``MidiEvent(...).dumps()`` of each event gives (the tests hold it to that), but
    for a ``song_start`` of None, left out as producers before the field wrote their values (dumps()
    writes null; both read back as None). ``padding`` goes in the first event. Not checked: what is
    sent is the sender's to get right (the tests send bad values on purpose), what is read is checked
    when decoded.
    """
    fields = FIELDS if song_start is not None else FIELDS[:-1]
    return _encoder.encode([
        dict(zip(fields, (song, first_seq + offset, float(score_time), message, sent_at, end, float(speed_ratio),
                          padding if offset == 0 else "", song_start)))
        for offset, (score_time, message) in enumerate(timed_messages)
    ])


PART_KINDS = ("ch", "tr")
_PART_KEY = re.compile(r"^(?P<song>.+)/(?P<part>(?:ch|tr)\d+)$")


def part_key(song_id: str, kind: str, number: int) -> str:
    """The key of one part of a song: ``<song id>/ch<N>`` (its events on MIDI channel N, 1-16) or
    ``<song id>/tr<N>`` (its events from track N of the file, 0 first, as mido numbers them)."""
    if kind not in PART_KINDS:
        raise ValueError(f"a part is a channel (ch) or a track (tr), not {kind!r}")
    return f"{song_id}/{kind}{number}"


def split_part(key: str) -> tuple[str, str | None]:
    """(song id, part) of a key on the notes topic: ``("a.mid@1a2b3c4d", "ch3")`` for a part's key,
    ``(key, None)`` for a whole song's. Song ids are file names, which hold no ``/``."""
    match = _PART_KEY.match(key)
    return (match["song"], match["part"]) if match else (key, None)


def _invalid(error: msgspec.ValidationError) -> InvalidEvent:
    """msgspec's reason, with the field it is about named first."""
    text = str(error)
    missing = _MISSING_FIELD.match(text)
    if missing:
        return InvalidEvent(f"field {missing['field']!r} is missing")
    at_field = _FIELD_IN_PATH.match(text)
    if at_field:
        return InvalidEvent(f"field {at_field['field']!r}: {at_field['reason']}")
    return InvalidEvent(_AT_ITEM.sub("", text))


def decode_record(raw: bytes | None) -> tuple[list, list[InvalidEvent]]:
    """Decode one value from the topic: an event object, or an array of events.

    Returns the valid events (``MidiEvent.wire`` structs) and a problem per invalid one, so one bad
    event does not cost its neighbours; raises InvalidEvent when the value as a whole is unusable.
    """
    if not raw:
        raise InvalidEvent("empty value")
    try:
        decoded = _value_decoder.decode(raw)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: first
        # Some event is invalid, or the value is no event at all: sort the good from the bad one by one.
        try:
            items = _items_decoder.decode(raw)
        except msgspec.ValidationError:
            raise _invalid(exc) from None
        events, problems = [], []
        for item in items:
            try:
                events.append(_event_decoder.decode(item))
            except msgspec.ValidationError as item_error:
                problems.append(_invalid(item_error))
        return events, problems
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"not JSON: {exc}") from None
    if isinstance(decoded, list):
        if not decoded:
            raise InvalidEvent("empty array")
        return decoded, []
    return [decoded], []
