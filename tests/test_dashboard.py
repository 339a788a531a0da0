"""The Grafana dashboard and the compose profile that provisions it: every series the dashboard queries is
one the worker serves at /metrics, and every file the compose file mounts is in the repository."""
from __future__ import annotations

import json
import re
from pathlib import Path

from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from web.metrics import AppMetrics

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "web" / "dashboard" / "midi_app.json"


def served_names() -> set[str]:
    """Every sample name /metrics can hold: the app's series and Faust's sensor's (named after the app)."""
    registry = CollectorRegistry()
    metrics = AppMetrics(registry, "midi_app")
    FaustMetrics.create(registry, "midi_app")
    # Labelled series appear once they have a value.
    metrics.observe_played("midi", "0", [0.001], [0.0001])
    for kind in metrics.counted:
        metrics.count(kind, "midi", "0", 1)
    metrics.partition("midi", 0, 1, 2, 1)
    text = generate_latest(registry).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_every_series_the_dashboard_queries_is_served():
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queried = {name for expression in expressions for name in re.findall(r"\b((?:midi|kafka)_\w+)", expression)}
    assert queried, "the dashboard queries nothing"
    assert queried - served_names() == set()


def test_the_compose_profile_mounts_files_that_exist():
    compose = (ROOT / "docker-compose.yml").read_text()
    mounted = re.findall(r"- \./(\S+?):", compose)
    assert {"web/dashboard/midi_app.json", "web/dashboard/prometheus.yml"} <= set(mounted)
    assert [path for path in mounted if not (ROOT / path).is_file()] == []
