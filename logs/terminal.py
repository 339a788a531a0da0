"""Whether the app's log is read by a person at a terminal, for lines written only for people."""
from __future__ import annotations

import logging


def logging_to_terminal(logger: logging.Logger | None = None) -> bool:
    """True when a handler of ``logger`` (the root logger by default) writes to a terminal."""
    chosen = logging.getLogger() if logger is None else logger
    for handler in chosen.handlers:
        stream = getattr(handler, "stream", None)
        isatty = getattr(stream, "isatty", None)
        if isatty is not None and isatty():
            return True
    return False
