"""A recording mido backend whose port raises on one note, to crash the worker's agent honestly.

``MIDO_BACKEND=tests.crashing_backend``; the note-on of ``CRASHING_BACKEND_NOTE`` (with a velocity) raises
instead of being recorded, as a port whose device vanished would. Everything else is recorded as
tests.recording_backend does.
"""
from __future__ import annotations

import os

from tests import recording_backend
from tests.recording_backend import Input, get_devices  # noqa: F401  (the backend's interface)


class PortFailed(OSError):
    """The test port refusing a note."""


class Output(recording_backend.Output):
    def _send(self, message) -> None:
        if message.type == "note_on" and message.velocity and message.note == int(os.environ["CRASHING_BACKEND_NOTE"]):
            raise PortFailed(f"test port refuses note {message.note}")
        super()._send(message)
