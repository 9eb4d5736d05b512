"""Every code block in README.md runs, so the README cannot rot.

- ```python blocks run in a fresh interpreter, in a temporary folder, in order of the file
  (each on its own). A block whose first line is ``# needs: lava`` is skipped where
  lava-nc is missing (Python != 3.10).
- ```bash blocks run line by line in one temporary folder. Two lines are set-up commands
  that cannot run inside the test suite as written: ``make test`` (it would run this very
  suite) is checked with ``make -n`` (a dry run), ``make demo`` runs the demo with
  ``--quick``. ``cmru-neuro deploy`` lines need lava-nc (Python 3.10) and are skipped
  without it. Every other line runs exactly as written, with the venv's ``cmru-neuro``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall((ROOT / "README.md").read_text()) if lang == language]


PYTHON_BLOCKS = _blocks("python")
BASH_BLOCKS = _blocks("bash")


def test_readme_has_runnable_blocks():
    assert len(PYTHON_BLOCKS) >= 4 and BASH_BLOCKS
    assert "make demo" in BASH_BLOCKS[0] and "make test" in BASH_BLOCKS[0]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs(index, tmp_path):
    code = PYTHON_BLOCKS[index]
    if code.startswith("# needs: lava") and importlib.util.find_spec("lava") is None:
        pytest.skip("lava-nc is not installed (Python 3.10 only)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, f"README python block {index} failed:\n{code}\n{result.stderr[-3000:]}"


def _command(line: str, out: Path) -> list[str]:
    words = shlex.split(line)
    if words[:2] == ["make", "test"]:
        return ["make", "-n", "-C", str(ROOT), "test"]
    if words[:2] == ["make", "demo"]:
        return [sys.executable, "-m", "cmru_neuro.cli", "demo", "--quick", "--out", str(out / "demo")]
    if words[0] == "cmru-neuro":
        return [sys.executable, "-m", "cmru_neuro.cli", *words[1:]]
    raise AssertionError(f"README bash line not understood by the test: {line!r}")


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BASH_BLOCKS)))
def test_bash_block_runs(index, tmp_path):
    for line in BASH_BLOCKS[index].splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("cmru-neuro deploy") and importlib.util.find_spec("lava") is None:
            continue  # Lava runs on Python 3.10 only
        result = subprocess.run(_command(line, tmp_path), cwd=tmp_path, capture_output=True, text=True,
                                timeout=900, env={**os.environ, "MPLBACKEND": "Agg"})
        assert result.returncode == 0, f"README line failed: {line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
