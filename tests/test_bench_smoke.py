"""CI runs each benchmark briefly: it must run end to end and print its comparison with raw aiokafka.

The figures themselves are not asserted: benchmarks are for a quiet machine, not for CI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize("script, expected_rows", [
    ("throughput.py", ["produce-midi -s 0 (events/s)", "worker into null (events/s)"]),
    ("latency.py", ["live latency_ms p99", "live timing_error_ms p99", "buffered 0.2 s timing_error_ms p99"]),
    ("parse.py", ["read_song (events/s)"]),
])
def test_benchmark_smoke_run_prints_its_comparison(script, expected_rows):
    result = subprocess.run([sys.executable, str(BENCH / script), "--smoke"], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    for row in expected_rows:
        line = next((line for line in result.stdout.splitlines() if line.startswith(row)), None)
        assert line is not None, f"{row!r} missing from:\n{result.stdout}"
        assert "app/raw" in line
