"""The Triton kernels (cmru_neuro.kernels.triton_gpu) compute what the composed PyTorch path
does, checked on CPU with Triton's interpreter: states, events, levels, gates, gradients,
and the gate's edge cases of tests/gate_cases.py (ties |c| = |beta|, signed zeros). Where a
CUDA device exists the same random search also runs the compiled kernels on it.

``TRITON_INTERPRET=1`` must be set before triton is imported, so each interpreter test runs
this file as a script in a fresh process (``python tests/test_triton_interpreter.py GROUP``).
"""

import importlib.util
import os
import subprocess
import sys

import pytest

GROUPS = ("random", "ties")

if __name__ != "__main__":
    pytestmark = pytest.mark.skipif(
        importlib.util.find_spec("triton") is None,
        reason="Triton is not installed (it ships with PyTorch's CUDA wheels, not the CPU ones)",
    )


@pytest.mark.parametrize("group", GROUPS)
def test_triton_kernels_equal_the_composed_path(group):
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, __file__, group], env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{group}: ok" in result.stdout


def test_compiled_triton_kernels_on_cuda_equal_the_composed_path():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (the compiled kernels; the interpreter runs above)")
    assert os.environ.get("TRITON_INTERPRET") != "1", "the interpreter would run on CPU tensors"
    _random(device="cuda")


def _compare(case: dict, device: str = "cpu") -> None:
    """Fused (Triton: interpreted on CPU tensors, compiled on CUDA ones) against composed on
    the same device, every output and gradient."""
    import torch

    from cmru_neuro import functional as F
    from cmru_neuro import kernels
    from cmru_neuro.kernels import triton_gpu

    torch.manual_seed(case["seed"])
    T, B, H, dtype = case["T"], case["B"], case["H"], case["dtype"]
    fixed, per_step = case["fixed"], case["per_step"]
    streams = 1 + (not fixed) + per_step
    on = {"dtype": dtype, "device": device}
    currents = (case["scale"] * torch.randn(T, B, streams * H, **on)).requires_grad_()
    bias = torch.randn(streams * H, **on).requires_grad_() if case["bias"] else None
    threshold = (torch.rand(H, **on) + 0.2).requires_grad_() if fixed else None
    h0 = torch.randn(B, H, **on, requires_grad=True)
    level = torch.randint(-2, 3, (B, H), device=device).to(dtype).requires_grad_()
    alpha = None if per_step else (torch.rand(H, **on) + 0.5).requires_grad_()
    epsilon = case["epsilon"]
    if epsilon == "learned":
        epsilon = torch.rand(H, **on).requires_grad_()
    leaves = [v for v in (currents, bias, threshold, h0, level, alpha, epsilon) if isinstance(v, torch.Tensor)]
    slope = case["slope"]

    def outputs(fused: bool):
        if fused:
            cumulative = isinstance(epsilon, float) and epsilon == 1
            result = kernels.run(triton_gpu, currents, threshold, h0, alpha, epsilon, slope,
                                 level, frozenset(F.RECORDABLE), cumulative, bias)
        else:
            F.use_fused_kernels(False)
            result = F.memory_sequence(currents, threshold, h0, alpha, epsilon, F.atan(slope),
                                       bias=bias, initial_level=level, record=F.RECORDABLE)
            F.use_fused_kernels(True)
        return list(result)

    fused, composed = outputs(True), outputs(False)
    weights = [torch.randn_like(v) for v in composed]
    used = case["used"]  # which outputs reach the loss
    grads = []
    for result in (fused, composed):
        loss = sum((w * v).sum() for w, v, u in zip(weights, result, used) if u)
        grads.append(torch.autograd.grad(loss, leaves, allow_unused=True))
    exact = isinstance(epsilon, float) and epsilon in (0.0, 1.0)
    close = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(fused[0], composed[0], atol=close, rtol=close)  # states
    assert torch.equal(fused[1], composed[1]) and torch.equal(fused[3], composed[3])  # events, gates
    if exact:
        assert torch.equal(fused[2], composed[2])  # integer levels
    else:
        torch.testing.assert_close(fused[2], composed[2], atol=close, rtol=close)
    tolerance = 1e-4 if dtype == torch.float32 else 1e-9
    for grad, grad_ref in zip(*grads):
        if grad_ref is None:
            assert grad is None or not grad.any()
            continue
        scale = 1.0 + (grad_ref.abs().max().item() if grad_ref.numel() else 0.0)
        torch.testing.assert_close(grad, grad_ref, atol=tolerance * scale, rtol=tolerance)


def _random(device: str = "cpu") -> None:
    import torch
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=30, deadline=None, database=None)
    @given(st.fixed_dictionaries({
        "T": st.integers(0, 12), "B": st.integers(1, 3), "H": st.integers(1, 5),
        "seed": st.integers(0, 2**16), "dtype": st.sampled_from([torch.float32, torch.float64]),
        "fixed": st.booleans(), "per_step": st.booleans(), "bias": st.booleans(),
        "epsilon": st.sampled_from([1.0, 0.0, 0.4, "learned"]),
        "slope": st.sampled_from([0.5, 1.0]), "scale": st.sampled_from([0.5, 2.0]),
        "used": st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()).filter(any),
    }))
    def check(case):
        _compare(case, device)

    check()


def _ties() -> None:
    """The gate's edge cases of tests/gate_cases.py (ties |c| = |beta|, signed zeros) and the
    gradients at them."""
    import gate_cases as G  # run as a script: this file's folder is sys.path[0]
    import torch

    from cmru_neuro import functional as F
    from cmru_neuro import kernels
    from cmru_neuro.kernels import triton_gpu

    for kind in G.EPSILON:
        cases = G.select(kind, "float")
        for fixed in (False, True):
            arguments = G.sequence_arguments(cases, fixed)
            currents = arguments["currents"].requires_grad_()
            states, events, levels, gates = kernels.run(
                triton_gpu, currents, arguments["threshold"], arguments["h0"], arguments["step_size"],
                arguments["epsilon"], 1.0, arguments["initial_level"], frozenset(F.RECORDABLE),
                arguments["epsilon"] == 1,
            )
            G.assert_matches(cases, gate=gates, event=events, new_level=levels)
            G.assert_matches(cases, new_level=states)
            (grad,) = torch.autograd.grad(states.sum(), currents)
            F.use_fused_kernels(False)
            (grad_ref,) = torch.autograd.grad(F.memory_sequence(**arguments).states.sum(), currents)
            F.use_fused_kernels(True)
            torch.testing.assert_close(grad, grad_ref)
    for case in ({"T": 7, "B": 2, "H": 3, "seed": 1, "dtype": torch.float32, "fixed": True, "per_step": False,
                  "bias": True, "epsilon": 0.0, "slope": 1.0, "scale": 1.0, "used": (True, True, True, True)},):
        _compare(case)


if __name__ == "__main__":
    assert os.environ.get("TRITON_INTERPRET") == "1", "run through pytest (sets TRITON_INTERPRET=1)"
    group = sys.argv[1]
    {"random": _random, "ties": _ties}[group]()
    print(f"{group}: ok")
