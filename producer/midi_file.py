"""Reading a Standard MIDI File's bytes as mido reads them: the header, then each track's channel
messages and tempo changes, without mido's message objects.

A channel message, nearly all of a file, becomes a tuple here instead of a mido Message (~400
bytes and several µs each), so a file of millions of them is refused at the limit within a second
and little memory. mido's own decoders check the other messages, so a file is accepted or refused
as mido would accept or refuse it, and its events come out at the same ticks.
"""
from __future__ import annotations

import io
import struct
from operator import itemgetter
from typing import NamedTuple

from mido.midifiles.meta import KeySignatureError, MetaMessage, build_meta_message
from mido.midifiles.midifiles import MAX_MESSAGE_LENGTH, read_message

# A delta time is a variable-length number of at most 4 bytes (0x0FFFFFFF), but mido reads any length.
MAX_DELTA_TICKS = 0x0FFFFFFF
SUPPORTED_FORMATS = (0, 1)
FILE_HEADER = struct.Struct(">4sLhhh")  # MThd, its length, format, track count, time division
TRACK_HEADER = struct.Struct(">4sL")  # MTrk and its length


class MidiFileError(ValueError):
    """A file that is not MIDI, is broken, or is over a limit; the message says why."""


class FileHeader(NamedTuple):
    track_count: int
    ticks_per_beat: int
    tracks_start: int  # where the first MTrk chunk starts


def read_header(data: bytes) -> FileHeader:
    """The MThd chunk, refusing what cannot be timed: type 2, SMPTE or zero time division."""
    if not b"MThd".startswith(data[:4]):  # a file of under 4 bytes may be the start of one
        raise MidiFileError("not a MIDI file: it does not start with an MThd header")
    if len(data) < FILE_HEADER.size:
        raise MidiFileError("truncated: the file ends inside its MThd header")
    _, size, midi_format, track_count, ticks_per_beat = FILE_HEADER.unpack_from(data)
    if size < 6:
        raise MidiFileError(f"truncated: its MThd header holds {size} bytes, not 6")
    if midi_format == 2:
        raise MidiFileError("MIDI type 2 (independent sequences per track) is not supported")
    if midi_format not in SUPPORTED_FORMATS:
        raise MidiFileError(f"unknown MIDI file format {midi_format} (only 0, 1 and 2 exist)")
    if ticks_per_beat < 0:
        raise MidiFileError("SMPTE time division (frames per second) is not supported, only ticks per beat")
    if ticks_per_beat == 0:
        raise MidiFileError("time division of 0 ticks per beat")
    return FileHeader(track_count, ticks_per_beat, 8 + size)


def channel_timeline(data: bytes, header: FileHeader, max_song_events: int,
                     tracks: list[int] | None = None) -> tuple[list, list]:
    """(tick, bytes) of every channel voice message and (tick, tempo) of every tempo change.

    Each list is in mido's merged order (by absolute tick, then track, then position). The limit
    on channel messages also bounds the meta, sysex and system messages, counted on their own, so
    a file of millions of those is refused too. ``tracks``, when given, is filled with the track
    (0 first) of each channel message, in the same order; otherwise that costs nothing.
    """
    timeline: list[tuple[int, tuple[int, ...]]] = []
    tempos: list[tuple[int, int]] = []
    others_allowed = max_song_events
    stream = io.BytesIO(data)  # shares data's buffer, for mido's reader of system messages
    pos = header.tracks_start
    for number in range(header.track_count):
        if pos + TRACK_HEADER.size > len(data):
            raise MidiFileError(f"truncated: the file ends before track {number}")
        name, size = TRACK_HEADER.unpack_from(data, pos)
        if name != b"MTrk":
            raise MidiFileError(f"broken MIDI data: no MTrk header at start of track {number}")
        try:
            pos, others_allowed = read_track(data, stream, pos + TRACK_HEADER.size, size, timeline, tempos,
                                             max_song_events, others_allowed)
        except IndexError:
            raise MidiFileError("truncated: the file ends inside a chunk or a message") from None
        if tracks is not None:
            tracks.extend([number] * (len(timeline) - len(tracks)))
    if tracks is None:
        timeline.sort(key=itemgetter(0))
    else:
        # The same stable sort, of positions, so each message keeps its track.
        order = sorted(range(len(timeline)), key=[tick for tick, _ in timeline].__getitem__)
        timeline[:] = [timeline[index] for index in order]
        tracks[:] = [tracks[index] for index in order]
    tempos.sort(key=itemgetter(0))
    return timeline, tempos


def read_track(data: bytes, stream: io.BytesIO, pos: int, size: int, timeline: list, tempos: list,
               max_song_events: int, others_allowed: int) -> tuple[int, int]:
    """Append a track's channel messages and tempos, read as mido's read_track reads them;
    (where the track ends, how many other messages are still allowed)."""
    end = pos + size
    tick = 0
    last_status = None
    # Like mido, read until a message ends exactly at the chunk's end; one that crosses it reads on
    # into the next chunk until the file ends or a byte is wrong.
    while pos != end:
        delta = data[pos]
        if delta > 0x7F:
            delta, pos = read_delta(data, pos)
        else:
            pos += 1
        tick += delta
        status = data[pos]
        if status > 0x7F:
            pos += 1
            if status != 0xFF:  # as in mido, a meta message leaves the running status alone
                last_status = status
        elif last_status is None:
            raise MidiFileError("broken MIDI data: running status without last_status (a data byte first)")
        else:
            status = last_status  # running status: this byte is the first data byte
        if status < 0xF0:
            first = data[pos]
            if 0xC0 <= status < 0xE0:  # program change and channel aftertouch have one data byte
                message = (status, first)
                pos += 1
            else:
                message = (status, first, data[pos + 1])
                first |= data[pos + 1]
                pos += 2
            if first > 0x7F:
                raise MidiFileError("broken MIDI data: data byte must be in range 0..127")
            timeline.append((tick, message))
            if len(timeline) > max_song_events:
                raise MidiFileError(f"more than {max_song_events} channel messages, the limit (MIDI_MAX_SONG_EVENTS)")
        else:
            others_allowed -= 1
            if others_allowed < 0:
                raise MidiFileError(f"more than {max_song_events} meta, sysex and system messages, "
                                "the limit (MIDI_MAX_SONG_EVENTS)")
            # Under running status the byte before is a delta's last, not the status.
            pos, meta = read_other_message(data, stream, pos, status, running=data[pos - 1] != status)
            if meta is None:
                continue
            if meta.type == "unknown_meta":
                tick -= delta  # mido 1.3 drops the delta time of a meta type it does not know
            elif meta.type == "set_tempo":
                if meta.tempo == 0:
                    raise MidiFileError(f"tempo of 0 microseconds per beat at tick {tick}"
                                        " would play every later note at once")
                tempos.append((tick, meta.tempo))
    return pos, others_allowed


def read_number(data: bytes, pos: int) -> tuple[int, int]:
    """A variable-length number at ``pos`` (of any length, as mido reads it) and the position after it."""
    value = 0
    while True:
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos


def read_delta(data: bytes, pos: int) -> tuple[int, int]:
    """A delta time of more than one byte, kept to MIDI's 4-byte maximum so ticks stay exact as floats."""
    delta, pos = read_number(data, pos)
    if delta > MAX_DELTA_TICKS:
        raise MidiFileError(f"a delta time is longer than MIDI's 4-byte maximum of {MAX_DELTA_TICKS} ticks")
    return delta, pos


def read_other_message(data: bytes, stream: io.BytesIO, pos: int, status: int,
                       running: bool) -> tuple[int, MetaMessage | None]:
    """The position after the meta, sysex or system message at ``pos``, and the message if it is a meta.

    mido's decoders check each, but meta and sysex bodies are sliced here: mido reads them a byte
    at a time, which takes seconds for a file of megabyte-long messages.
    """
    if status == 0xFF:
        meta_type = data[pos]
        body, pos = message_body(data, pos + 1)
        return pos, decoded(build_meta_message, meta_type, list(body))
    if status in (0xF0, 0xF7):
        body, pos = message_body(data, pos + running)  # mido drops the byte standing for the status
        body = body[body[:1] == b"\xf0":len(body) - (body[-1:] == b"\xf7")]  # mido strips them
        if body and max(body) > 0x7F:
            raise MidiFileError("a message holds values MIDI does not allow: a sysex data byte over 127")
        return pos, None
    peek = [data[pos]] if running else []
    stream.seek(pos + running)
    decoded(read_message, stream, status, peek, 0)
    return stream.tell(), None


def message_body(data: bytes, pos: int) -> tuple[bytes, int]:
    """The length-prefixed body of a meta or sysex message at ``pos`` and the position after it."""
    length, pos = read_number(data, pos)
    if length > MAX_MESSAGE_LENGTH:
        raise MidiFileError(f"broken MIDI data: a message of {length} bytes, over mido's {MAX_MESSAGE_LENGTH}")
    if pos + length > len(data):
        raise MidiFileError("truncated: the file ends inside a meta or sysex message")
    return data[pos:pos + length], pos + length


def decoded(decode, *args):
    """``decode(*args)``, with each kind of error mido's decoders raise on broken data named."""
    try:
        return decode(*args)
    except EOFError:
        raise MidiFileError("truncated: the file ends inside a message") from None
    except KeySignatureError as exc:
        raise MidiFileError(f"broken key signature meta message: {exc}") from None
    except IndexError:
        # mido's meta decoders index their data without checking its length (set_tempo with 2 bytes).
        raise MidiFileError("a meta message is shorter than its type requires") from None
    except KeyError:
        # mido looks codes up in tables without a default (an SMPTE offset's frame rate).
        raise MidiFileError("a meta message holds a code MIDI does not define") from None
    except ValueError as exc:
        raise MidiFileError(f"a message holds values MIDI does not allow: {exc}") from None
    except OSError as exc:
        # mido reports a malformed message (an undefined status byte) as OSError.
        raise MidiFileError(f"broken MIDI data: {exc}") from None
