"""The fused CPU kernels (cmru_neuro.kernels.numba_cpu) compute what the composed PyTorch
path of functional.memory_sequence does: states, events, levels, gates and gradients."""

import contextlib
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cmru_neuro import BMRU, CMRU, AlphaCMRU, MemoryUnit, kernels
from cmru_neuro import functional as F

UNITS = {
    "cmru": CMRU,
    "bmru": BMRU,
    "acmru": AlphaCMRU,
    "eps=0.3": lambda *a, **kw: MemoryUnit(*a, epsilon=0.3, **kw),
    "eps-learned": lambda *a, **kw: MemoryUnit(*a, epsilon=0.6, learn_epsilon=True, **kw),
}
EXACT = ("cmru", "bmru")  # integer levels, per-unit step: states equal to the last rounding

cases = st.fixed_dictionaries(
    {
        "unit": st.sampled_from(sorted(UNITS)),
        "threshold": st.sampled_from(["input", "fixed"]),
        "T": st.integers(0, 70),
        "B": st.integers(1, 4),
        "F": st.integers(1, 6),
        "H": st.integers(1, 9),
        "seed": st.integers(0, 2**16),
        "dtype": st.just(torch.float32),  # float64: test_float64_fused_equals_composed
        "slope": st.sampled_from([0.5, 1.0, 3.0]),
        "scale": st.sampled_from([0.3, 1.0, 4.0]),
        "layout": st.sampled_from(["time-first", "batch-first", "unbatched"]),
        "h0": st.booleans(),
        "bias": st.booleans(),
        "trace": st.booleans(),
        "rate": st.booleans(),
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
    """Outputs, trace and the gradients of every input of one layer call."""
    torch.manual_seed(case["seed"])
    batch_first = case["layout"] == "batch-first"
    unit = UNITS[case["unit"]](
        case["F"], case["H"], batch_first=batch_first, threshold=case["threshold"],
        surrogate=F.atan(case["slope"]), bias=case["bias"],
    ).to(case["dtype"])
    unit.record_update_rate = case["rate"]
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
        out, last, *trace = unit(x, h0, return_trace=case["trace"])
    loss = (out * torch.randn_like(out)).sum() + last.square().sum()
    if trace:  # gradients through gates, events and levels too
        loss = loss + sum((t * torch.randn_like(t)).sum() for t in trace[0])
    if case["rate"] and case["T"]:
        loss = loss + unit.update_rate
    leaves = [x] + ([h0] if h0 is not None else []) + list(unit.parameters())
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return out, last, trace, grads, out.grad_fn


def _reaches(grad_fn, name: str, depth: int = 3) -> bool:
    """True when an autograd node called ``name...`` is within ``depth`` steps of ``grad_fn``."""
    if grad_fn is None or depth < 0:
        return False
    if type(grad_fn).__name__.startswith(name):
        return True
    return any(_reaches(node, name, depth - 1) for node, _ in grad_fn.next_functions)


@settings(max_examples=120, deadline=None)
@given(cases)
def test_fused_equals_composed(case):
    out, last, trace, grads, grad_fn = _run(case, fused=True)
    out_ref, last_ref, trace_ref, grads_ref, grad_fn_ref = _run(case, fused=False)
    if case["T"]:
        assert _reaches(grad_fn, "FusedScan")
    assert not _reaches(grad_fn_ref, "FusedScan")
    # Epsilon in {0, 1} with a per-unit step: the same integer levels, so alpha L + A h0
    # differs by at most one rounding. Otherwise sums run in another order.
    close = 2e-7 if case["unit"] in EXACT else 1e-5
    torch.testing.assert_close(out, out_ref, atol=close, rtol=close)
    torch.testing.assert_close(last, last_ref, atol=close, rtol=close)
    for recorded, recorded_ref in zip(trace[:1] and trace[0], trace_ref[:1] and trace_ref[0]):
        if case["unit"] in ("eps=0.3", "eps-learned"):  # levels re-associated
            torch.testing.assert_close(recorded, recorded_ref, atol=1e-5, rtol=1e-5)
        else:
            assert torch.equal(recorded, recorded_ref)  # gates, events, integer levels
    tolerance = 1e-4 if case["dtype"] == torch.float32 else 1e-10  # sums in another order
    for grad, grad_ref in zip(grads, grads_ref):
        if grad_ref is None:  # the learned initial state, when h0 is given
            assert grad is None or not grad.any()
            continue
        scale = 1.0 + (grad_ref.abs().max().item() if grad_ref.numel() else 0.0)
        torch.testing.assert_close(grad, grad_ref, atol=tolerance * scale, rtol=tolerance)


@pytest.mark.parametrize("unit", sorted(UNITS))
@pytest.mark.parametrize("trace", [False, True])
def test_float64_fused_equals_composed(unit, trace):
    """The same kernels in float64 (each dtype compiles its own: a few cases, not a search)."""
    case = {"unit": unit, "threshold": "input" if trace else "fixed", "T": 33, "B": 3, "F": 4, "H": 5,
            "seed": 7, "dtype": torch.float64, "slope": 1.0, "scale": 2.0, "layout": "time-first",
            "h0": trace, "bias": not trace, "trace": trace, "rate": False}
    test_fused_equals_composed.hypothesis.inner_test(case)


@settings(max_examples=60, deadline=None)
@given(cases)
def test_fused_equals_sequential(case):
    torch.manual_seed(case["seed"])
    unit = UNITS[case["unit"]](case["F"], case["H"], threshold=case["threshold"]).to(case["dtype"])
    x = case["scale"] * torch.randn(case["T"], case["B"], case["F"], dtype=case["dtype"])
    out, _, trace = unit(x, return_trace=True)
    out_s, _, trace_s = unit(x, mode="sequential", return_trace=True)
    torch.testing.assert_close(out, out_s, atol=1e-5, rtol=1e-5)
    assert torch.equal(trace.events, trace_s.events) and torch.equal(trace.gates, trace_s.gates)
    if case["unit"] == "cmru":  # on the lattice h0 + alpha Z
        torch.testing.assert_close(out, unit.initial_state(case["B"]) + unit.alpha * trace.levels)


def _sequence(currents, h0, alpha, epsilon, level, threshold=None, cumulative_epsilon=False):
    """The fused path of memory_sequence with every record; ``alpha`` None: per step."""
    result = F.memory_sequence(
        currents, threshold, h0, alpha, 1.0 if cumulative_epsilon else epsilon,
        initial_level=level, record=F.RECORDABLE,
    )
    return result.states, result.levels


@pytest.mark.parametrize("per_step", [False, True])
@pytest.mark.parametrize("fixed", [False, True])
def test_gradcheck_smooth_inputs(per_step, fixed):
    """Exact derivatives w.r.t. h0, alpha, epsilon, the initial level and a per-unit
    threshold (the currents' gradient is the surrogate's, not the true one)."""
    torch.manual_seed(0)
    streams = 1 + (not fixed) + per_step
    currents = torch.randn(9, 3, 4 * streams, dtype=torch.float64)
    h0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    level = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    alpha = torch.rand(4, dtype=torch.float64, requires_grad=True)
    epsilon = torch.tensor([0.0, 0.3, 0.8, 1.0], dtype=torch.float64, requires_grad=True)
    inputs = [h0, level, epsilon] + ([] if per_step else [alpha])
    if fixed:  # the threshold moves no gate for these margins: its true derivative is 0
        threshold = torch.full((4,), 1e-3, dtype=torch.float64)
        currents[..., :4] = currents[..., :4].sign() * (currents[..., :4].abs() + 0.1)

    def scan(h, l, e, a=None):
        return _sequence(currents, h, a, e, l, threshold if fixed else None)

    assert torch.autograd.gradcheck(scan, inputs)
    if per_step:  # the step currents enter smoothly through softplus
        raw = currents[..., -4:].clone().requires_grad_()

        def by_raw(r):
            return _sequence(torch.cat([currents[..., :-4], r], -1), h0.detach(), None,
                             epsilon.detach(), level.detach(), threshold if fixed else None)[0]

        assert torch.autograd.gradcheck(by_raw, (raw,))


@settings(max_examples=40, deadline=None)
@given(
    steps=st.integers(0, 20), hidden=st.integers(1, 5), seed=st.integers(0, 2**16),
    fixed=st.booleans(), per_step=st.booleans(), epsilon=st.sampled_from([1.0, 0.0, 0.5]),
    fused=st.booleans(),
)
def test_bias_is_added_to_the_currents(steps, hidden, seed, fixed, per_step, epsilon, fused):
    """``bias`` (the projection's, added inside the kernels) is ``currents + bias`` on both
    paths: the same states to the bit (one rounding either way) and, as its gradient, the
    currents' gradient summed over time and batch."""
    torch.manual_seed(seed)
    streams = 1 + (not fixed) + per_step
    currents = torch.randn(steps, 3, streams * hidden, requires_grad=True)
    bias = torch.randn(streams * hidden, requires_grad=True)
    threshold = torch.rand(hidden) + 0.2 if fixed else None
    alpha = None if per_step else torch.rand(hidden) + 0.5
    weights = torch.randn(steps, 3, hidden)
    with _kernels(fused):
        with_bias = F.memory_sequence(currents, threshold, torch.zeros(3, hidden), alpha, epsilon, bias=bias)
        added = F.memory_sequence(currents + bias, threshold, torch.zeros(3, hidden), alpha, epsilon)
    assert torch.equal(with_bias.states, added.states)
    assert _reaches(with_bias.states.grad_fn, "FusedScan") == fused
    grad_currents, grad_bias = torch.autograd.grad((weights * with_bias.states).sum(), (currents, bias))
    (grad_added,) = torch.autograd.grad((weights * added.states).sum(), currents)
    torch.testing.assert_close(grad_currents, grad_added)
    torch.testing.assert_close(grad_bias, grad_added.sum((0, 1)), atol=1e-5, rtol=1e-5)


def test_bmru_blocks_the_gradient_at_updates():
    """dh_t/dh_{t-1} = 1 - z_t: only h0's units whose gate never opened see a gradient."""
    currents = torch.tensor([[[2.0, 0.5, 1.0, 1.0]], [[0.1, -3.0, 1.0, 1.0]]])  # unit 0 updates at t=0
    h0 = torch.ones(1, 2, requires_grad=True)
    alpha = torch.ones(2)
    F.memory_sequence(currents, None, h0, alpha, 0.0).states[-1].sum().backward()
    assert h0.grad.tolist() == [[0.0, 0.0]]  # unit 1 updates at t=1
    h0.grad = None
    F.memory_sequence(currents[:1], None, h0, alpha, 0.0).states.sum().backward()
    assert h0.grad.tolist() == [[0.0, 1.0]]


def test_surrogate_gradient_of_the_currents():
    """d h_T / d c_t for one unit: the arctan formula of functional._gate_backward."""
    currents = torch.tensor([[[0.5, -1.0]], [[2.0, 1.0]], [[-0.3, 0.1]]], requires_grad=True)
    alpha = torch.tensor([1.5])
    h = F.memory_sequence(currents, None, torch.zeros(1, 1), alpha).states
    assert _reaches(h.grad_fn, "FusedScan")
    h[-1].sum().backward()
    candidate, threshold = currents.detach()[..., 0], currents.detach()[..., 1]
    direction = torch.where(candidate >= 0, 1.0, -1.0)
    margin = candidate.abs() - threshold.abs()
    gate = (margin >= 0).float()
    derivative = lambda v: 1.0 / (1.0 + (torch.pi * v) ** 2)
    grad_gate = alpha * direction * derivative(margin)
    expected_candidate = grad_gate * direction + 2.0 * alpha * gate * derivative(candidate)
    torch.testing.assert_close(currents.grad[..., 0], expected_candidate)
    torch.testing.assert_close(currents.grad[..., 1], -grad_gate * torch.where(threshold >= 0, 1.0, -1.0))


def test_other_cases_use_the_composed_path():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 3)
    snntorch_surrogate = pytest.importorskip("snntorch.surrogate").fast_sigmoid()
    out, _ = CMRU(3, 4, surrogate=snntorch_surrogate)(x)  # not the arctan surrogate
    assert not _reaches(out.grad_fn, "FusedScan")
    out, _ = CMRU(3, 4)(x, mode="sequential")
    assert not _reaches(out.grad_fn, "FusedScan")
    for unit in (CMRU(3, 4), AlphaCMRU(3, 4, threshold="fixed")):  # the trace and alpha-CMRU are fused
        out, _, _ = unit(x, return_trace=True)
        assert _reaches(out.grad_fn, "FusedScan")
    assert kernels.backend(torch.zeros(2, dtype=torch.bfloat16), 1.0) is None
    assert kernels.backend(torch.zeros(2, device="meta"), 1.0) is None
    assert kernels.backend(torch.zeros(2), None) is None  # another surrogate
    assert kernels.backend(torch.zeros(2, dtype=torch.float64), 1.0) is kernels.numba_cpu


def test_record_is_checked():
    with pytest.raises(ValueError, match=r"record: expected any of events, levels, gates, got \['spikes'\]"):
        F.memory_sequence(torch.zeros(2, 1, 2), None, torch.zeros(1, 1), torch.ones(1), record=["spikes"])
    with pytest.raises(ValueError, match=r"mode: expected one of 'parallel', 'sequential', got 'scan'"):
        F.memory_sequence(torch.zeros(2, 1, 2), None, torch.zeros(1, 1), torch.ones(1), mode="scan")


def test_environment_switches_the_fused_path_off():
    code = "from cmru_neuro import kernels; print(kernels.Switches.fused)"
    env = {**os.environ, "CMRU_NEURO_FUSED": "0"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@settings(deadline=None)
@given(
    steps=st.integers(0, 50),
    shape=st.sampled_from([(2,), (1,), (2, 3)]),  # batch dims, conv-like ones included
    hidden=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    neuron=st.sampled_from(["CMRU", "BMRU", "AlphaCMRU"]),
    loss=st.sampled_from(["spikes", "states", "both"]),
    from_input=st.booleans(),
)
def test_snntorch_sequence_neuron_fused_equals_composed(steps, shape, hidden, seed, neuron, loss, from_input):
    """Spikes, states and gradients of a whole-sequence snnTorch neuron, both paths."""
    cs = pytest.importorskip("cmru_neuro.snntorch")
    alpha_cmru = neuron == "AlphaCMRU"

    def run(fused: bool):
        torch.manual_seed(seed)
        options = {} if alpha_cmru else {"learn_alpha": True, "alpha": torch.rand(hidden) + 0.5}
        cell = getattr(cs, neuron)(
            size=hidden, threshold_from_input=from_input, sequence=True, h0=torch.randn(hidden),
            threshold=torch.rand(hidden) + 0.5, learn_threshold=not from_input, **options,
        )
        streams = 1 + from_input + alpha_cmru
        currents = (2 * torch.randn(steps, *shape, streams * hidden)).requires_grad_()
        with _kernels(fused):
            spk, mem = cell(currents)
        value = {"spikes": spk.sum(), "states": mem.square().sum(), "both": spk.sum() + mem.sum()}[loss]
        leaves = [currents] + [p for p in cell.parameters()]
        grads = torch.autograd.grad(value, leaves, allow_unused=True) if value.requires_grad else [None] * len(leaves)
        return spk, mem, cell.mem, grads, spk.grad_fn

    spk, mem, kept, grads, grad_fn = run(True)
    spk_ref, mem_ref, kept_ref, grads_ref, _ = run(False)
    if steps:
        assert _reaches(grad_fn, "FusedScan")
    assert torch.equal(spk, spk_ref)
    torch.testing.assert_close(mem, mem_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(kept, kept_ref, atol=1e-5, rtol=1e-5)
    for grad, grad_ref in zip(grads, grads_ref):
        if grad_ref is None:
            assert grad is None or not grad.any()
        else:
            torch.testing.assert_close(grad, grad_ref, atol=1e-4, rtol=1e-4)


@settings(deadline=None)
@given(
    steps=st.integers(0, 40),
    hidden=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    epsilon=st.sampled_from([0.0, 1.0]),
    from_input=st.booleans(),
    alpha_cmru=st.booleans(),
)
def test_norse_memory_scan_fused_equals_composed(steps, hidden, seed, epsilon, from_input, alpha_cmru):
    """Events, states, levels and gradients of cmru_neuro.norse.memory_scan, both paths."""
    norse = pytest.importorskip("cmru_neuro.norse")

    def run(fused: bool):
        torch.manual_seed(seed)
        threshold = None if from_input else torch.rand(hidden) + 0.5
        p = norse.CMRUParameters(threshold=threshold, alpha=torch.rand(hidden) + 0.5)
        state = norse.CMRUState(
            torch.randn(2, 3, hidden), torch.randint(-2, 3, (2, 3, hidden)).float().requires_grad_()
        )
        streams = 1 + from_input + alpha_cmru
        x = (2 * torch.randn(steps, 2, 3, streams * hidden)).requires_grad_()
        with _kernels(fused):
            events, states = norse.memory_scan(x, state, p._replace(epsilon=epsilon, step_from_input=alpha_cmru))
        if steps:
            assert _reaches(events.grad_fn, "FusedScan") == fused
        value = events.sum() + states.h.square().sum() + (states.level * torch.arange(states.level.numel()).view_as(states.level)).sum()
        grads = torch.autograd.grad(value, (x, state.level), allow_unused=True)
        return events, states, grads

    events, states, grads = run(True)
    events_ref, states_ref, grads_ref = run(False)
    assert torch.equal(events, events_ref) and torch.equal(states.level, states_ref.level)
    torch.testing.assert_close(states.h, states_ref.h, atol=1e-5, rtol=1e-5)
    for grad, grad_ref in zip(grads, grads_ref):  # level weights up to T B H: scale the tolerance
        scale = 1.0 + (grad_ref.abs().max().item() if grad_ref.numel() else 0.0)
        torch.testing.assert_close(grad, grad_ref, atol=1e-5 * scale, rtol=1e-4)
