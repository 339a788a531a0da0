"""adjustments/tripwire.py: a touched name is found on the class, or in what its code sets on self."""
from __future__ import annotations

from adjustments.tripwire import Adjustment, Touch, check


class Library:
    LIMIT = 3

    def __init__(self) -> None:
        self._state = {}

    def _hook(self) -> None: ...


class Subclass(Library):
    pass


def test_methods_class_attributes_and_attributes_set_in_the_code_are_found_inherited_too():
    assert Touch(Library, "_hook").present() and Touch(Library, "LIMIT").present()
    assert Touch(Subclass, "_state", instance_attribute=True).present()


def test_a_missing_name_is_one_line_naming_the_adjustment_and_the_name():
    adjustments = [Adjustment("adjustments/a.py", "fine", (Touch(Library, "_hook"),)),
                   Adjustment("adjustments/b.py", "broken", (Touch(Library, "_gone"),
                                                               Touch(Library, "_lost", instance_attribute=True)))]

    line = check(adjustments)

    assert line is not None and "\n" not in line
    assert "'broken' (adjustments/b.py)" in line
    assert "test_tripwire.Library._gone" in line and "test_tripwire.Library._lost" in line
    assert check(adjustments[:1]) is None
