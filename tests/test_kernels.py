"""The fused CPU kernels (cmru_neuro.kernels) compute what the composed PyTorch path does."""

import contextlib
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cmru_neuro import BMRU, CMRU, AlphaCMRU, MemoryUnit, kernels
from cmru_neuro import functional as F

UNITS = {
    "cmru": CMRU,
    "bmru": BMRU,
    "eps=0.3": lambda *a, **kw: MemoryUnit(*a, epsilon=0.3, **kw),
    "eps-learned": lambda *a, **kw: MemoryUnit(*a, epsilon=0.6, learn_epsilon=True, **kw),
}
EXACT = ("cmru", "bmru")  # integer levels: states equal to the last rounding

cases = st.fixed_dictionaries(
    {
        "unit": st.sampled_from(sorted(UNITS)),
        "threshold": st.sampled_from(["input", "fixed"]),
        "T": st.integers(1, 70),
        "B": st.integers(1, 4),
        "F": st.integers(1, 6),
        "H": st.integers(1, 9),
        "seed": st.integers(0, 2**16),
        "dtype": st.sampled_from([torch.float32, torch.float64]),
        "slope": st.sampled_from([0.5, 1.0, 3.0]),
        "scale": st.sampled_from([0.3, 1.0, 4.0]),
        "layout": st.sampled_from(["time-first", "batch-first", "unbatched"]),
        "h0": st.booleans(),
    }
)


@contextlib.contextmanager
def _kernels(fused: bool):
    """The block runs with the fused kernels on or off; they are on again afterwards."""
    F.use_fused_kernels(fused)
    try:
        yield
    finally:
        F.use_fused_kernels(True)


def _run(case, fused: bool):
    """Outputs, last state and the gradients of every input of one layer call."""
    torch.manual_seed(case["seed"])
    batch_first = case["layout"] == "batch-first"
    unit = UNITS[case["unit"]](
        case["F"],
        case["H"],
        batch_first=batch_first,
        threshold=case["threshold"],
        surrogate=F.atan(case["slope"]),
    )
    unit = unit.to(case["dtype"])
    shape = {
        "time-first": (case["T"], case["B"], case["F"]),
        "batch-first": (case["B"], case["T"], case["F"]),
        "unbatched": (case["T"], case["F"]),
    }[case["layout"]]
    x = (case["scale"] * torch.randn(shape, dtype=case["dtype"])).requires_grad_()
    h0 = None
    if case["h0"]:
        h0_shape = (case["H"],) if case["layout"] == "unbatched" else (case["B"], case["H"])
        h0 = torch.randn(h0_shape, dtype=case["dtype"], requires_grad=True)
    with _kernels(fused):
        out, last = unit(x, h0)
    weights = torch.randn_like(out)
    (out * weights).sum().add(last.square().sum()).backward()
    leaves = [x] + ([h0] if h0 is not None else []) + list(unit.parameters())
    return out, last, [leaf.grad for leaf in leaves], out.grad_fn


def _reaches(grad_fn, name: str, depth: int = 3) -> bool:
    """True when an autograd node called ``name...`` is within ``depth`` steps of ``grad_fn``."""
    if grad_fn is None or depth < 0:
        return False
    if type(grad_fn).__name__.startswith(name):
        return True
    return any(_reaches(node, name, depth - 1) for node, _ in grad_fn.next_functions)


@given(cases)
def test_fused_equals_composed(case):
    out, last, grads, grad_fn = _run(case, fused=True)
    out_ref, last_ref, grads_ref, grad_fn_ref = _run(case, fused=False)
    assert _reaches(grad_fn, "HysteresisScan")
    assert not _reaches(grad_fn_ref, "HysteresisScan")
    # Epsilon in {0, 1}: the same integer levels, so alpha L + A h0 differs by at most one
    # rounding (PyTorch's addcmul may fuse the multiply-add). Otherwise the composed path's
    # associative scan re-associates the products.
    close = 2e-7 if case["unit"] in EXACT else 1e-5
    torch.testing.assert_close(out, out_ref, atol=close, rtol=close)
    torch.testing.assert_close(last, last_ref, atol=close, rtol=close)
    tolerance = 1e-4 if case["dtype"] == torch.float32 else 1e-10  # sums in another order
    for grad, grad_ref in zip(grads, grads_ref):
        if grad_ref is None:  # the learned initial state, when h0 is given
            assert grad is None
            continue
        scale = 1.0 + grad_ref.abs().max().item()
        torch.testing.assert_close(grad, grad_ref, atol=tolerance * scale, rtol=tolerance)


@given(cases)
def test_fused_equals_sequential(case):
    torch.manual_seed(case["seed"])
    unit = UNITS[case["unit"]](case["F"], case["H"], threshold=case["threshold"]).to(case["dtype"])
    x = case["scale"] * torch.randn(case["T"], case["B"], case["F"], dtype=case["dtype"])
    out, _ = unit(x)
    out_s, _, trace = unit(x, mode="sequential", return_trace=True)
    torch.testing.assert_close(out, out_s, atol=1e-5, rtol=1e-5)
    if case["unit"] == "cmru":  # on the lattice h0 + alpha Z
        torch.testing.assert_close(out, unit.initial_state(case["B"]) + unit.alpha * trace.levels)


def test_gradcheck_smooth_inputs():
    """Exact derivatives w.r.t. h0, alpha and epsilon (the currents' gradient is the surrogate's)."""
    torch.manual_seed(0)
    currents = torch.randn(9, 3, 8, dtype=torch.float64)
    h0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    alpha = torch.rand(4, dtype=torch.float64, requires_grad=True)
    epsilon = torch.tensor([0.0, 0.3, 0.8, 1.0], dtype=torch.float64, requires_grad=True)
    scan = lambda h, a, e: kernels.HysteresisScan.apply(currents, h, a, e, 1.0)
    assert torch.autograd.gradcheck(scan, (h0, alpha, epsilon))


def test_bmru_blocks_the_gradient_at_updates():
    """dh_t/dh_{t-1} = 1 - z_t: only h0's units whose gate never opened see a gradient."""
    currents = torch.tensor(
        [[[2.0, 0.5, 1.0, 1.0]], [[0.1, -3.0, 1.0, 1.0]]]
    )  # unit 0 updates at t=0
    h0 = torch.ones(1, 2, requires_grad=True)
    h = kernels.HysteresisScan.apply(currents, h0, torch.ones(2), torch.zeros(2), 1.0)
    h[-1].sum().backward()
    assert h0.grad.tolist() == [[0.0, 0.0]]  # unit 1 updates at t=1
    h0.grad = None
    kernels.HysteresisScan.apply(
        currents[:1], h0, torch.ones(2), torch.zeros(2), 1.0
    ).sum().backward()
    assert h0.grad.tolist() == [[0.0, 1.0]]


def test_surrogate_gradient_of_the_currents():
    """d h_T / d c_t for one unit: the arctan formula of functional._gate_backward."""
    currents = torch.tensor([[[0.5, -1.0]], [[2.0, 1.0]], [[-0.3, 0.1]]], requires_grad=True)
    alpha = torch.tensor([1.5])
    h = kernels.HysteresisScan.apply(currents, torch.zeros(1, 1), alpha, torch.ones(1), 1.0)
    h[-1].sum().backward()
    candidate, threshold = currents.detach()[..., 0], currents.detach()[..., 1]
    direction = torch.where(candidate >= 0, 1.0, -1.0)
    margin = candidate.abs() - threshold.abs()
    gate = (margin >= 0).float()
    derivative = lambda v: 1.0 / (1.0 + (torch.pi * v) ** 2)
    grad_gate = alpha * direction * derivative(margin)
    expected_candidate = grad_gate * direction + 2.0 * alpha * gate * derivative(candidate)
    torch.testing.assert_close(currents.grad[..., 0], expected_candidate)
    torch.testing.assert_close(
        currents.grad[..., 1], -grad_gate * torch.where(threshold >= 0, 1.0, -1.0)
    )


def test_ties_and_signed_zeros():
    """|c| = |beta| opens the gate; sign(-0.0) = +1: as in functional.hysteresis_update."""
    values = torch.tensor([0.0, -0.0, 1.0, -1.0, 0.5])
    candidate, threshold = torch.cartesian_prod(values, values).T  # every pair, one step each
    currents = torch.stack([candidate, threshold], dim=-1).view(-1, 1, 2)
    alpha = torch.tensor([1.0])
    h = kernels.HysteresisScan.apply(currents, torch.zeros(1, 1), alpha, torch.ones(1), 1.0)
    update = F.hysteresis_update(candidate.view(-1, 1, 1), threshold.view(-1, 1, 1))
    assert torch.equal(h, update.events.cumsum(0))


def test_other_cases_use_the_composed_path():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 3)
    snntorch_surrogate = pytest.importorskip("snntorch.surrogate").fast_sigmoid()
    for unit in (
        CMRU(3, 4, surrogate=snntorch_surrogate),  # not the arctan surrogate
        AlphaCMRU(3, 4),  # a step size per time step
    ):
        out, _ = unit(x)
        assert not _reaches(out.grad_fn, "HysteresisScan")
    out, _, _ = CMRU(3, 4)(x, return_trace=True)  # the trace comes from the composed path
    assert not _reaches(out.grad_fn, "HysteresisScan")
    assert not kernels.supports(torch.zeros(2, dtype=torch.bfloat16))
    assert not kernels.supports(torch.zeros(2, device="meta"))
    assert kernels.supports(torch.zeros(2, dtype=torch.float64))


def test_environment_switches_the_fused_path_off():
    code = "from cmru_neuro import functional as F; print(F._Kernels.fused)"
    env = {**os.environ, "CMRU_NEURO_FUSED": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@given(
    steps=st.integers(1, 50),
    shape=st.sampled_from([(2,), (1,), (2, 3)]),  # batch dims, conv-like ones included
    hidden=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    neuron=st.sampled_from(["CMRU", "BMRU"]),
    loss=st.sampled_from(["spikes", "states", "both"]),
    from_input=st.booleans(),
)
def test_snntorch_sequence_neuron_fused_equals_composed(
    steps, shape, hidden, seed, neuron, loss, from_input
):
    """Spikes, states and gradients of a whole-sequence snnTorch neuron, both paths."""
    cs = pytest.importorskip("cmru_neuro.snntorch")

    def run(fused: bool):
        torch.manual_seed(seed)
        cell = getattr(cs, neuron)(
            size=hidden,
            threshold_from_input=from_input,
            sequence=True,
            learn_alpha=True,
            alpha=torch.rand(hidden) + 0.5,
            h0=torch.randn(hidden),
            threshold=torch.rand(hidden) + 0.5,
            learn_threshold=not from_input,
        )
        currents = (
            2 * torch.randn(steps, *shape, (2 if from_input else 1) * hidden)
        ).requires_grad_()
        with _kernels(fused):
            spk, mem = cell(currents)
        value = {"spikes": spk.sum(), "states": mem.square().sum(), "both": spk.sum() + mem.sum()}[
            loss
        ]
        value.backward()
        return spk, mem, cell.mem, currents.grad, cell.alpha.grad, cell.threshold.grad, spk.grad_fn

    spk, mem, kept, grad, grad_alpha, grad_threshold, grad_fn = run(True)
    spk_ref, mem_ref, kept_ref, grad_ref, grad_alpha_ref, grad_threshold_ref, _ = run(False)
    assert _reaches(grad_fn, "HysteresisScan")
    assert torch.equal(spk, spk_ref)
    torch.testing.assert_close(mem, mem_ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(kept, kept_ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(grad, grad_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grad_alpha, grad_alpha_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(grad_threshold, grad_threshold_ref, atol=1e-4, rtol=1e-4)


@given(
    steps=st.integers(1, 40),
    hidden=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    epsilon=st.sampled_from([0.0, 1.0]),
    from_input=st.booleans(),
)
def test_norse_memory_scan_fused_equals_composed(steps, hidden, seed, epsilon, from_input):
    """Events, states, levels and input gradients of cmru_neuro.norse.memory_scan, both paths."""
    norse = pytest.importorskip("cmru_neuro.norse")

    def run(fused: bool):
        torch.manual_seed(seed)
        threshold = None if from_input else torch.rand(hidden) + 0.5
        p = norse.CMRUParameters(threshold=threshold, alpha=torch.rand(hidden) + 0.5)
        state = norse.CMRUState(
            torch.randn(2, 3, hidden), torch.randint(-2, 3, (2, 3, hidden)).float()
        )
        x = (2 * torch.randn(steps, 2, 3, (2 if from_input else 1) * hidden)).requires_grad_()
        with _kernels(fused):
            events, states = norse.memory_scan(x, state, p, epsilon)
        (events.sum() + states.h.square().sum()).backward()
        assert _reaches(events.grad_fn, "HysteresisScan") == fused
        return events, states, x.grad

    events, states, grad = run(True)
    events_ref, states_ref, grad_ref = run(False)
    assert torch.equal(events, events_ref) and torch.equal(states.level, states_ref.level)
    torch.testing.assert_close(states.h, states_ref.h, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(grad, grad_ref, atol=1e-5, rtol=1e-4)
