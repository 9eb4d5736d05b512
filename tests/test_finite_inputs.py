"""NaN and inf input: every front-end refuses it with the same error, through the one shared
check (``cmru_neuro._checks.check_finite``); on CUDA the check queues without a host sync."""

import subprocess
import sys

import pytest
import torch

from cmru_neuro import layers
from cmru_neuro import norse as cn
from cmru_neuro import snntorch as cs
from cmru_neuro._checks import check_finite

T, B, H = 4, 3, 5
BAD = [float("nan"), float("inf"), -float("inf")]

FRONT_ENDS = {  # name -> (argument name, call on a (T, B, H) tensor)
    "core layer": ("x", lambda x: layers.CMRU(H, H)(x)),
    "snnTorch step": ("input_", lambda x: cs.CMRU()(x[0])),
    "snnTorch step, mem given": ("input_", lambda x: cs.BMRU()(x[0], torch.zeros(B, H))),
    "snnTorch sequence": ("input_", lambda x: cs.CMRU(sequence=True)(x)),
    "snnTorch alpha-CMRU": ("input_", lambda x: cs.AlphaCMRU(sequence=True)(x.repeat(1, 1, 2))),
    "Norse cell": ("input_tensor", lambda x: cn.CMRUCell()(x[0])),
    "Norse sequence": ("input_tensor", lambda x: cn.BMRU()(x)),
}


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_every_front_end_rejects_nan_and_inf_the_same_way(front_end, bad):
    name, call = FRONT_ENDS[front_end]
    x = torch.randn(T, B, H)
    call(x)  # finite input runs
    x[0, 1, 2] = bad
    with pytest.raises(ValueError, match=rf"^{name}: expected finite values, got NaN or inf$"):
        call(x)


def test_finite_values_whose_sum_overflows_are_accepted():
    big = torch.full((B, H), 3e38)
    assert check_finite(big, "x") is big
    cs.CMRU()(big)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_on_cuda_the_check_does_not_synchronise():
    x = torch.randn(B, H, device="cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        check_finite(x, "x")
    finally:
        torch.cuda.set_sync_debug_mode("default")


@cuda
def test_on_cuda_nan_fails_at_the_next_synchronisation():
    """A device-side assertion ends the CUDA context, so it runs in its own process."""
    code = (
        "import torch\n"
        "from cmru_neuro._checks import check_finite\n"
        "check_finite(torch.tensor([1.0, float('nan')], device='cuda'), 'x')\n"
        "torch.cuda.synchronize()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode != 0 and "assert" in done.stderr.lower(), done.stderr[-2000:]
