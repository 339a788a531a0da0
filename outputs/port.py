"""MIDI output ports through mido (rtmidi by default; ``MIDO_BACKEND`` picks another backend)."""
from __future__ import annotations

import logging
from typing import Sequence

import mido

from outputs.c_stderr import c_library_noise_at_debug

logger = logging.getLogger(__name__)


class PortError(Exception):
    """No usable MIDI output port; the message says which ports exist."""


def choose_port(available: Sequence[str], wanted: str) -> str:
    """The port named exactly ``wanted``, or the only one containing it, ignoring case."""
    if wanted in available:
        return wanted
    matches = [name for name in available if wanted.lower() in name.lower()]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(repr(name) for name in available) or "none"
    reason = "matches several ports" if matches else "matches no port"
    raise PortError(f"MIDI_OUTPUT_PORT={wanted!r} {reason}; output ports: {listing}")


def output_port_names() -> list[str]:
    try:
        with c_library_noise_at_debug():
            return list(mido.get_output_names())
    except OSError as exc:
        logger.warning("cannot list MIDI output ports (%s)", exc)
        return []


def open_port(wanted: str | None, virtual_name: str | None) -> mido.ports.BaseOutput | None:
    """Open the chosen output port; None when no port is asked for and none exists."""
    try:
        if virtual_name:
            name, options = virtual_name, {"virtual": True}
        else:
            names = output_port_names()
            if wanted:
                name, options = choose_port(names, wanted), {}
            elif names:
                name, options = names[0], {}
            else:
                return None
        with c_library_noise_at_debug():
            port = mido.open_output(name, **options)
    except (OSError, ImportError) as exc:
        raise PortError(f"cannot open MIDI output: {exc}") from None
    logger.info("playing through MIDI output port %r", port.name)
    return port
