"""Every private name of Faust and aiokafka the adjustments touch, checked when the worker starts.

An upgrade that renames or drops one would otherwise fail far from its cause (a note held 100 ms, a
commit past an unplayed record) or not at all. Each adjustment module declares its ``ADJUSTMENT``: the
names it touches and the versions it was written for; ``check`` finds those missing on the installed
libraries and says so in one line.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib.metadata import version

WRITTEN_FOR = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}


@dataclass(frozen=True)
class Touch:
    """A name on ``owner``: an attribute the class defines (``method``), or one its code sets on
    ``self`` (an instance attribute, found in the class's source)."""

    owner: type
    name: str
    instance_attribute: bool = False

    def present(self) -> bool:
        if not self.instance_attribute:
            return hasattr(self.owner, self.name)
        try:
            return any(f"self.{self.name}" in inspect.getsource(klass) for klass in self.owner.__mro__
                       if klass is not object)
        except (OSError, TypeError):
            return False

    def __str__(self) -> str:
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"


@dataclass(frozen=True)
class Adjustment:
    module: str
    what: str
    touches: tuple[Touch, ...]


def installed_versions() -> str:
    return ", ".join(f"{name} {version(name)}" for name in WRITTEN_FOR)


def check(adjustments: list[Adjustment]) -> str | None:
    """None when every touched name exists; else one line naming the first adjustment that would break."""
    for adjustment in adjustments:
        missing = [str(touch) for touch in adjustment.touches if not touch.present()]
        if missing:
            written_for = ", ".join(f"{name} {pinned}" for name, pinned in WRITTEN_FOR.items())
            return (f"the adjustment {adjustment.what!r} ({adjustment.module}) relies on "
                    f"{', '.join(missing)}, which the installed libraries ({installed_versions()}) do not have; "
                    f"it was written for {written_for}: pin those versions or update the adjustment")
    return None
