"""The installed layout: everything under cmru_neuro, nothing generic at top level."""

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _package_folders():
    """Map every package folder in the repo to the import name it installs as."""
    found = {}
    for dotted, folder in CONFIG["package-dir"].items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(ROOT / folder).parts
            found[".".join((dotted, *relative))] = init.parent
    return found


def test_every_package_folder_is_listed():
    assert set(_package_folders()) == set(CONFIG["packages"])


def test_nothing_installs_outside_cmru_neuro():
    assert all(name == "cmru_neuro" or name.startswith("cmru_neuro.") for name in CONFIG["packages"])


def test_remapped_packages_import_under_cmru_neuro():
    lava = importlib.util.find_spec("lava") is not None
    for name, folder in _package_folders().items():
        if name.startswith("cmru_neuro.adapters.lava.") and not lava:
            continue  # Lava's processes need lava-nc (Python 3.10 only)
        module = importlib.import_module(name)
        assert Path(module.__file__).parent == folder


def test_importing_the_core_does_not_import_lava():
    """Lava sets the multiprocessing start method on import and exists only on 3.10."""
    code = "import sys, cmru_neuro, cmru_neuro.cli; cmru_neuro.cli.build_parser(); print('lava' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_importing_cmru_neuro_lets_nir_read_our_node(tmp_path):
    """NIR has no extension mechanism; importing the package registers the CMRU node."""
    path = tmp_path / "unit.nir"
    write = ("import torch, nir, cmru_neuro; from cmru_neuro import nir as cnir; "
             f"nir.write({str(path)!r}, cnir.to_nir(torch.nn.Sequential(cmru_neuro.CMRU(3, 4))))")
    subprocess.run([sys.executable, "-c", write], check=True, capture_output=True)
    read = f"import nir, cmru_neuro; print(sorted(nir.read({str(path)!r}).nodes))"
    result = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "input" in result.stdout
