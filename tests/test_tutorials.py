"""Every tutorial runs end to end with small settings (``--quick``), so none can rot."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*.py"))
NEEDS_LAVA = {"03_deploy_to_lava.py"}


def test_there_are_tutorials_for_each_use():
    names = {path.name for path in TUTORIALS}
    assert {"01_snntorch_and_norse.py", "02_energy_per_inference.py", "03_deploy_to_lava.py"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=lambda path: path.name)
def test_tutorial_runs(path, tmp_path):
    if path.name in NEEDS_LAVA and importlib.util.find_spec("lava") is None:
        pytest.skip("lava-nc is not installed (Python 3.10 only)")
    result = subprocess.run([sys.executable, str(path), "--quick"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr[-3000:]
