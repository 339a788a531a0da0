"""The house's layout: every folder says what it owns, and dependencies point one way."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(path.parent.name for path in ROOT.glob("*/__init__.py") if path.parent.name != "tests")
# What each folder must never import: commands and agents use playback, outputs and the Kafka-side
# adjustments, never the reverse.
FORBIDDEN = {
    "models": {"agents", "playback", "producer", "outputs", "adjustments", "web", "harness", "midi_app"},
    "playback": {"agents", "producer", "adjustments", "web", "harness", "midi_app"},
    "outputs": {"agents", "producer", "playback", "adjustments", "web", "harness", "midi_app"},
    "producer": {"agents", "outputs", "web", "harness"},
    "config": {"agents", "producer", "playback", "outputs", "adjustments", "web", "harness", "midi_app"},
    "logs": {"agents", "producer", "playback", "outputs", "web", "harness", "midi_app"},
    "security": {"agents", "producer", "playback", "outputs", "adjustments", "web", "harness", "midi_app"},
}


def imported_packages(package: str) -> set[str]:
    names = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_each_folder_opens_with_a_docstring_saying_what_it_owns(package):
    docstring = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
    assert docstring and len(docstring.split()) >= 10, f"{package}/__init__.py says nothing of what it owns"


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package):
    assert imported_packages(package) & FORBIDDEN[package] == set()


def test_the_top_level_holds_folders_and_the_cards_names_only():
    loose = sorted(path.name for path in ROOT.glob("*.py"))
    assert loose == ["midi_app.py"]
