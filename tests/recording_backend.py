"""A mido backend that records every message its output port is sent, with the wall time it was sent.

Select it the way a user selects any backend: ``MIDO_BACKEND=tests.recording_backend``. Each message
becomes one JSON line ``{"time": <time.time()>, "bytes": [...], "port": name}`` appended to the file
named by ``RECORDING_BACKEND_FILE``. Lossless and exact, unlike a real port, so tests can compare what
the worker played with the score message for message.
"""
from __future__ import annotations

import json
import os
import time

from mido.ports import BaseInput, BaseOutput

PORT_NAMES = ["Recorder A", "Recorder B"]


def get_devices(**kwargs):
    return [{"name": name, "is_input": False, "is_output": True} for name in PORT_NAMES]


class Output(BaseOutput):
    def _open(self, virtual: bool = False, **kwargs) -> None:
        self.name = self.name or PORT_NAMES[0]
        self._file = open(os.environ["RECORDING_BACKEND_FILE"], "a", buffering=1)

    def _send(self, message) -> None:
        sent_at = time.time()
        self._file.write(json.dumps({"time": sent_at, "bytes": message.bytes(), "port": self.name}) + "\n")

    def _close(self) -> None:
        self._file.close()


class Input(BaseInput):
    def _open(self, **kwargs) -> None:
        raise OSError("the recording backend has no inputs")


def read_recording(path) -> list[dict]:
    with open(path) as recording:
        return [json.loads(line) for line in recording]
