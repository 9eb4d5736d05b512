#!/usr/bin/env bash
# Issue 13's GPU checks in one run, for a session lent a CUDA machine (the device tool):
#
#   bash benchmarks/device_check.sh [OUT_DIR]      # OUT_DIR: default $OUT, else /tmp
#
# Uses the machine's own python3 (its image holds torch, triton, numba, pytest, hypothesis;
# PYTHON overrides) with this repository on PYTHONPATH, nothing installed:
#   1. the compiled Triton kernels against the composed path on CUDA, the layers on CUDA
#      against the CPU, a training step without a host sync (tests; OUT_DIR/tests.log);
#   2. the GPU speed table of docs/benchmarks.md (T = 4096, B = 64, H = 256; OUT_DIR/bench.log
#      and bench_core_cuda.json). Record it there with the machine named, or the row stays open.
# Exits non-zero when a step fails; the next step still runs.
set -uo pipefail
out=${1:-${OUT:-/tmp}}
py=${PYTHON:-python3}
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
"$py" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" || exit 1
status=0
"$py" -m pytest -q -p no:cacheprovider -rs \
    tests/test_triton_interpreter.py::test_compiled_triton_kernels_on_cuda_equal_the_composed_path \
    tests/test_cuda.py 2>&1 | tee "$out/tests.log" || status=1
"$py" benchmarks/bench_core.py --device cuda --lengths 4096 --batch 64 --hidden 256 \
    --skip "CMRU sequential" LRU MinGRU --repeats 5 --json "$out/bench_core_cuda.json" 2>&1 \
    | tee "$out/bench.log" || status=1
exit $status
