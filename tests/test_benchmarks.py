"""The benchmark scripts run (at their smallest settings) and print their ratios."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RUNS = {
    "bench_core.py": (["--quick"], "CMRU sequential / CMRU parallel"),
    "bench_snn.py": (["--widths", "8", "--steps", "16", "--repeats", "1", "--batch", "2"], "Leaky"),
    "bench_lava.py": (["--quick"], "target <= 1.3"),
    "bench_copy_first.py": (["--cells", "cmru", "--length", "20", "--budget", "5", "--steps", "5"], "cmru"),
}


def test_every_benchmark_is_exercised():
    assert {path.name for path in BENCHMARKS.glob("bench_*.py")} == set(RUNS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_benchmark_runs(name):
    if name == "bench_lava.py" and importlib.util.find_spec("lava") is None:
        pytest.skip("lava-nc is not installed (Python 3.10 only)")
    arguments, expected = RUNS[name]
    result = subprocess.run([sys.executable, str(BENCHMARKS / name), *arguments], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert expected.lower() in result.stdout.lower()
