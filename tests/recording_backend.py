"""A mido backend that records every message its output port is sent, with the wall time it was sent.

Select it the way a user selects any backend: ``MIDO_BACKEND=tests.recording_backend``. Each message
is recorded, with its port and the ``time.time()`` it was sent, in the file named by
``RECORDING_BACKEND_FILE``; :func:`read_recording` gives them back as ``{"time", "bytes", "port"}``.
Lossless and exact, unlike a real port, so tests can compare what the worker played with the score
message for message.

It is a probe, so it must cost the worker next to nothing: a record is copied into a memory-mapped file,
no system call and no encoder. A write(2) per message released the GIL each time, and Faust's consumer
thread could take it for up to the worker's switch interval: the probe itself spread a chord's notes by
up to 0.3 ms. A JSON line per message (this probe until 2026-11-30) cost 5.7 µs a message and 48 after a
sleep, the notes after the first of each chord that much later; a fixed binary record costs 3 and 34
(``RECORD`` below). The mapped pages belong to the kernel's page cache, so a worker killed with SIGKILL
loses none of what it recorded. Unused room at the end of the file is NUL bytes until the port closes
and trims it; readers stop at the first record whose kind is NUL, and the next writer appends there.
"""
from __future__ import annotations

import mmap
import os
import struct
import threading
import time

from mido.ports import BaseInput, BaseOutput

PORT_NAMES = ["Recorder A", "Recorder B"]
# Room mapped at a time: ~500,000 messages; full, the file grows by as much again.
CHUNK_BYTES = 8 * 1024 * 1024
ZEROS = memoryview(bytes(64 * 1024))
# A record: kind, port number (this file's NAME records say which port), length of what follows, and
# time.time() when sent; then the message's bytes (MESSAGE) or the port's name (NAME). The kind is
# written last, so a reader in another process never sees half a record.
RECORD = struct.Struct("<BBHd")
NAME, MESSAGE = 1, 2


def get_devices(**kwargs):
    return [{"name": name, "is_input": False, "is_output": True} for name in PORT_NAMES]


def records(data: bytes):
    """(kind, port number, time, payload, end offset) of each whole record in ``data``."""
    at = 0
    while at + RECORD.size <= len(data) and data[at]:
        kind, port, length, sent_at = RECORD.unpack_from(data, at)
        end = at + RECORD.size + length
        if end > len(data):
            return
        yield kind, port, sent_at, data[at + RECORD.size:end], end
        at = end


def recorded_length(data: bytes) -> int:
    """Bytes of whole records at the start of ``data``."""
    return max((end for *_, end in records(data)), default=0)


class MappedRecords:
    """Appends records to a file through a shared memory map; ``close`` trims the unused room."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        with open(self.fd, "rb", closefd=False) as existing:
            self.end = recorded_length(existing.read())
        self.lock = threading.Lock()
        self.users = 0
        self.ports = 0
        self._map_from(self.end)

    def _map_from(self, offset: int) -> None:
        # A mapping starts on a page boundary; records go at self.end, wherever that falls in it.
        self.base = offset - offset % mmap.ALLOCATIONGRANULARITY
        os.ftruncate(self.fd, offset + CHUNK_BYTES)
        self.map = mmap.mmap(self.fd, offset + CHUNK_BYTES - self.base, offset=self.base)
        # The first write to each page of a file mapping makes the file system allocate it, up to
        # milliseconds: done here for the whole chunk, not in the middle of a chord. A run of zeros at a
        # time: one 8 MiB bytes object for the chunk stayed in the malloc heap of the process the probe
        # records in, and a worker's anonymous memory stepped by 6.5 MiB at the probe's second chunk.
        for at in range(offset - self.base, len(self.map), len(ZEROS)):
            end = min(at + len(ZEROS), len(self.map))
            self.map[at:end] = ZEROS[:end - at]

    def write(self, kind: int, port: int, sent_at: float, payload) -> None:
        with self.lock:
            start = self.end - self.base
            end = start + RECORD.size + len(payload)
            if end > len(self.map):
                self.map.close()
                self._map_from(self.end)
                start = self.end - self.base
                end = start + RECORD.size + len(payload)
            self.map[start + RECORD.size:end] = payload
            RECORD.pack_into(self.map, start, 0, port, len(payload), sent_at)
            self.map[start] = kind
            self.end += end - start

    def add_port(self, name: str) -> int:
        """The number of the port ``name`` in this file, from here on."""
        with self.lock:
            self.ports += 1
            number = self.ports
        self.write(NAME, number, time.time(), name.encode())
        return number

    def close(self) -> None:
        self.map.close()
        os.ftruncate(self.fd, self.end)
        os.close(self.fd)


# One writer per file in this process: two ports recording to one file must not write over each other.
_writers: dict[str, MappedRecords] = {}
_writers_lock = threading.Lock()


class Output(BaseOutput):
    def _open(self, virtual: bool = False, **kwargs) -> None:
        self.name = self.name or PORT_NAMES[0]
        self._path = os.environ["RECORDING_BACKEND_FILE"]
        with _writers_lock:
            writer = _writers.get(self._path) or _writers.setdefault(self._path, MappedRecords(self._path))
            writer.users += 1
        self._writer = writer
        self._number = writer.add_port(self.name)

    def _send(self, message) -> None:
        sent_at = time.time()
        self._writer.write(MESSAGE, self._number, sent_at, message.bin())

    def _close(self) -> None:
        with _writers_lock:
            self._writer.users -= 1
            if not self._writer.users:
                _writers.pop(self._path).close()


class Input(BaseInput):
    def _open(self, **kwargs) -> None:
        raise OSError("the recording backend has no inputs")


def read_recording(path) -> list[dict]:
    """Every message recorded in ``path``, in order: ``{"time": time.time(), "bytes": [...], "port": name}``."""
    with open(path, "rb") as recording:
        data = recording.read()
    names, played = {}, []
    for kind, port, sent_at, payload, _ in records(data):
        if kind == NAME:
            names[port] = payload.decode()
        else:
            played.append({"time": sent_at, "bytes": list(payload), "port": names[port]})
    return played
