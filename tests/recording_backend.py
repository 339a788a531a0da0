"""A mido backend that records every message its output port is sent, with the wall time it was sent.

Select it the way a user selects any backend: ``MIDO_BACKEND=tests.recording_backend``. Each message
becomes one JSON line ``{"time": <time.time()>, "bytes": [...], "port": name}`` appended to the file
named by ``RECORDING_BACKEND_FILE``. Lossless and exact, unlike a real port, so tests can compare what
the worker played with the score message for message.

It is a probe, so it must cost the worker next to nothing: a line is copied into a memory-mapped file,
no system call and no JSON encoder. A write(2) per message released the GIL each time, and Faust's
consumer thread could take it for up to the worker's switch interval: the probe itself spread a chord's
notes by up to 0.3 ms. The mapped pages belong to the kernel's page cache, so a worker killed with
SIGKILL loses none of what it recorded. Unused room at the end of the file is NUL bytes until the port
closes and trims it; readers stop at the first NUL, and the next writer appends there.
"""
from __future__ import annotations

import json
import mmap
import os
import threading
import time

from mido.ports import BaseInput, BaseOutput

PORT_NAMES = ["Recorder A", "Recorder B"]
# Room mapped at a time: ~80,000 messages; full, the file grows by as much again.
CHUNK_BYTES = 8 * 1024 * 1024
ZEROS = memoryview(bytes(64 * 1024))


def get_devices(**kwargs):
    return [{"name": name, "is_input": False, "is_output": True} for name in PORT_NAMES]


def recorded_length(data: bytes) -> int:
    """Bytes of whole lines in ``data``: up to the first NUL, and up to the last newline before it."""
    end = data.find(b"\0")
    end = len(data) if end < 0 else end
    return data.rfind(b"\n", 0, end) + 1


class MappedLines:
    """Appends lines to a file through a shared memory map; ``close`` trims the unused room."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        with open(self.fd, "rb", closefd=False) as existing:
            self.end = recorded_length(existing.read())
        self.lock = threading.Lock()
        self.users = 0
        self._map_from(self.end)

    def _map_from(self, offset: int) -> None:
        # A mapping starts on a page boundary; lines go at self.end, wherever that falls in it.
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

    def write(self, line: bytes) -> None:
        with self.lock:
            start = self.end - self.base
            if start + len(line) > len(self.map):
                self.map.close()
                self._map_from(self.end)
                start = self.end - self.base
            self.map[start:start + len(line)] = line
            self.end += len(line)

    def close(self) -> None:
        self.map.close()
        os.ftruncate(self.fd, self.end)
        os.close(self.fd)


# One writer per file in this process: two ports recording to one file must not write over each other.
_writers: dict[str, MappedLines] = {}
_writers_lock = threading.Lock()


class Output(BaseOutput):
    def _open(self, virtual: bool = False, **kwargs) -> None:
        self.name = self.name or PORT_NAMES[0]
        self._path = os.environ["RECORDING_BACKEND_FILE"]
        self._port_field = json.dumps(self.name)
        with _writers_lock:
            writer = _writers.get(self._path) or _writers.setdefault(self._path, MappedLines(self._path))
            writer.users += 1
        self._writer = writer

    def _send(self, message) -> None:
        sent_at = time.time()
        data = ",".join(map(str, message.bytes()))
        self._writer.write(f'{{"time": {sent_at!r}, "bytes": [{data}], "port": {self._port_field}}}\n'.encode())

    def _close(self) -> None:
        with _writers_lock:
            self._writer.users -= 1
            if not self._writer.users:
                _writers.pop(self._path).close()


class Input(BaseInput):
    def _open(self, **kwargs) -> None:
        raise OSError("the recording backend has no inputs")


def read_recording(path) -> list[dict]:
    with open(path, "rb") as recording:
        data = recording.read()
    return [json.loads(line) for line in data[:recorded_length(data)].splitlines()]
