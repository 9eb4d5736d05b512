"""Parallel and sequential evaluations, and the streaming step, compute the same thing."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cmru_neuro import BMRU, CMRU, AlphaCMRU, FirstQuadrantBMRU, MemoryUnit
from cmru_neuro import functional as F
from cmru_neuro.baselines import LRU, MinGRU

UNITS = {
    "cmru": lambda f, h, **kw: CMRU(f, h, **kw),
    "bmru": lambda f, h, **kw: BMRU(f, h, **kw),
    "acmru": lambda f, h, **kw: AlphaCMRU(f, h, **kw),
    "fq-bmru": lambda f, h, **kw: FirstQuadrantBMRU(f, h, **{k: v for k, v in kw.items() if k != "threshold"}),
    "eps=0.3": lambda f, h, **kw: MemoryUnit(f, h, epsilon=0.3, **kw),
    "eps-learned": lambda f, h, **kw: MemoryUnit(f, h, epsilon=0.7, learn_epsilon=True, **kw),
}

shapes = st.fixed_dictionaries(
    {
        "T": st.integers(1, 40),
        "B": st.integers(1, 4),
        "F": st.integers(1, 6),
        "H": st.integers(1, 8),
        "seed": st.integers(0, 2**16),
        "unit": st.sampled_from(sorted(UNITS)),
        "threshold": st.sampled_from(["input", "fixed"]),
        "batch_first": st.booleans(),
        "scale": st.sampled_from([0.5, 2.0, 5.0]),
    }
)


def _build(case):
    torch.manual_seed(case["seed"])
    unit = UNITS[case["unit"]](case["F"], case["H"], threshold=case["threshold"], batch_first=case["batch_first"])
    shape = (case["B"], case["T"], case["F"]) if case["batch_first"] else (case["T"], case["B"], case["F"])
    return unit, case["scale"] * torch.randn(shape)


@given(shapes)
def test_parallel_equals_sequential(case):
    unit, x = _build(case)
    out_p, last_p, trace_p = unit(x, mode="parallel", return_trace=True)
    out_s, last_s, trace_s = unit(x, mode="sequential", return_trace=True)
    assert torch.equal(trace_p.gates, trace_s.gates)
    assert torch.equal(trace_p.events, trace_s.events)
    if case["unit"] in ("cmru", "bmru", "acmru", "fq-bmru"):
        assert torch.equal(trace_p.levels, trace_s.levels)  # integer levels: exactly
        assert torch.equal(trace_p.levels, trace_p.levels.round())
    else:
        torch.testing.assert_close(trace_p.levels, trace_s.levels, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_p, out_s, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last_p, last_s, atol=1e-5, rtol=1e-5)


@given(shapes)
def test_gradients_agree_between_modes(case):
    unit, x = _build(case)
    x.requires_grad_(True)
    grads = []
    for mode in ("parallel", "sequential"):
        unit.zero_grad()
        x.grad = None
        out, _ = unit(x, mode=mode)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append([x.grad.clone()] + [p.grad.clone() for p in unit.parameters()])
    for g_p, g_s in zip(*grads):
        torch.testing.assert_close(g_p, g_s, atol=1e-4, rtol=1e-4)


@given(shapes)
def test_streaming_step_equals_forward(case):
    unit, x = _build(case)
    out, last = unit(x)
    seq = x.transpose(0, 1) if case["batch_first"] else x
    h = None
    states = []
    for x_t in seq:
        h = unit.step(x_t, h)
        states.append(h)
    states = torch.stack(states)
    expected = out.transpose(0, 1) if case["batch_first"] else out
    torch.testing.assert_close(states, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, last, atol=1e-5, rtol=1e-5)


def test_unbatched_input_matches_batch_of_one():
    unit = CMRU(3, 5)
    x = torch.randn(12, 3)
    out, last = unit(x)
    out_b, last_b = unit(x.unsqueeze(1))
    assert out.shape == (12, 5) and last.shape == (5,)
    torch.testing.assert_close(out, out_b.squeeze(1))
    torch.testing.assert_close(last, last_b.squeeze(0))


def test_given_h0_is_used_and_chunks_compose():
    unit = CMRU(3, 4)
    x = 3 * torch.randn(30, 2, 3)
    full, _ = unit(x)
    first, h = unit(x[:13])
    second, _ = unit(x[13:], h)
    torch.testing.assert_close(torch.cat([first, second]), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", [LRU, MinGRU])
@given(T=st.integers(1, 30), B=st.integers(1, 3), seed=st.integers(0, 1000), with_h0=st.booleans())
def test_baselines_parallel_equals_sequential(cls, T, B, seed, with_h0):
    torch.manual_seed(seed)
    layer = cls(4, 6)
    x = torch.randn(T, B, 4)
    h0 = torch.rand(B, 6) + 0.1 if with_h0 else None
    out_p, last_p = layer(x, h0)
    out_s, last_s = layer(x, h0, mode="sequential")
    torch.testing.assert_close(out_p, out_s, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(last_p, last_s, atol=1e-4, rtol=1e-4)


@given(T=st.integers(1, 70), seed=st.integers(0, 1000))
def test_linear_scan_solves_the_recurrence(T, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(T, 3, generator=g, dtype=torch.float64)
    b = torch.randn(T, 3, generator=g, dtype=torch.float64)
    x0 = torch.randn(3, generator=g, dtype=torch.float64)
    x, carry = F.linear_scan(a, b)
    expected, h = [], x0
    for t in range(T):
        h = a[t] * h + b[t]
        expected.append(h)
    torch.testing.assert_close(x + carry * x0, torch.stack(expected))


@given(T=st.integers(1, 300), block=st.sampled_from([4, 32, 64]), seed=st.integers(0, 1000))
def test_blocked_prefix_sum_is_cumsum(T, block, seed):
    g = torch.Generator().manual_seed(seed)
    events = torch.randint(-1, 2, (T, 3, 5), generator=g).float()
    assert torch.equal(F.prefix_sum(events, block), torch.cumsum(events, 0))  # exact on integers
    values = torch.randn(T, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(F.prefix_sum(values, block), torch.cumsum(values, 0))
    (grad,) = torch.autograd.grad((F.prefix_sum(values, block) ** 2).sum(), values)
    (expected,) = torch.autograd.grad((torch.cumsum(values, 0) ** 2).sum(), values)
    torch.testing.assert_close(grad, expected)
