#!/usr/bin/env bash
# Create (or refresh) a virtual environment for this project.
#   scripts/venv.sh VENV PYTHON_MINOR EXTRAS [CONSTRAINTS_FILE]
# e.g. scripts/venv.sh .venv 3.10 all,dev   |   scripts/venv.sh .venv311 3.11 nir,data,dev .ci/constraints-core.txt
# Finds pythonX.Y on PATH or through pyenv; fails with one line when none exists.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
venv=${1:?venv dir}; minor=${2:?python version}; extras=${3:?extras}; constraints=${4:-}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

find_python() {
    local cand
    for cand in "python$minor" "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/$minor"*/bin/python \
                "$HOME/.pyenv/versions/$minor"*/bin/python "/usr/bin/python$minor" "/usr/local/bin/python$minor"; do
        [ -n "$cand" ] || continue
        if "$cand" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$minor'.split('.'))))" >/dev/null 2>&1; then
            command -v "$cand" 2>/dev/null || echo "$cand"
            return 0
        fi
    done
    return 1
}

stamp="$venv/.installed-$extras"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt requirements-nodeps.txt ]; then
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    py=$(find_python) || { echo "error: Python $minor not found (looked on PATH and in pyenv); install it, e.g. 'pyenv install $minor'" >&2; exit 1; }
    echo "creating $venv with $py" >&2
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
echo "installing cmru-neuro[$extras] into $venv (first time takes a few minutes)" >&2
"$venv/bin/python" -m pip install --quiet ${constraints:+-c "$constraints"} -e ".[$extras]"
if [[ ",$extras," == *",dev,"* ]]; then
    "$venv/bin/python" -m pip install --quiet --no-deps -r requirements-nodeps.txt
fi
touch "$stamp"
