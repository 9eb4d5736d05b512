"""Gradient blocking (BMRU) vs the skip connection through time (CMRU), and surrogates."""

import math

import pytest
import snntorch.surrogate as snn_surrogate
import torch
from hypothesis import given
from hypothesis import strategies as st

from cmru_neuro import BMRU, CMRU, MemoryUnit
from cmru_neuro import functional as F
from cmru_neuro.baselines import LRU, MinGRU


def _jacobian_diagonal(unit, x_t, h):
    h = h.clone().requires_grad_(True)
    h_t = unit.step(x_t, h)
    (grad,) = torch.autograd.grad(h_t.sum(), h)
    return grad, h_t


@given(seed=st.integers(0, 10_000))
def test_bmru_cuts_the_memory_gradient_at_updates(seed):
    torch.manual_seed(seed)
    unit = BMRU(3, 8)
    x_t, h = 3 * torch.randn(4, 3), torch.randn(4, 8)
    grad, _ = _jacobian_diagonal(unit, x_t, h)
    gate = unit.update(unit.currents(x_t)).gate.detach()
    assert torch.equal(grad, 1 - gate)  # dh_t/dh_{t-1} = 0 at updates, 1 while holding
    assert gate.any()


@given(seed=st.integers(0, 10_000))
def test_cmru_passes_the_memory_gradient_unchanged(seed):
    torch.manual_seed(seed)
    unit = CMRU(3, 8)
    grad, _ = _jacobian_diagonal(unit, 3 * torch.randn(4, 3), torch.randn(4, 8))
    assert torch.equal(grad, torch.ones_like(grad))


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_gradient_to_h0_is_the_product_of_decays(mode):
    torch.manual_seed(1)
    for cls, expected_all_ones in ((CMRU, True), (BMRU, False)):
        unit = cls(3, 6)
        x = 3 * torch.randn(25, 2, 3)
        h0 = torch.randn(2, 6, requires_grad=True)
        out, _, trace = unit(x, h0, mode=mode, return_trace=True)
        (grad,) = torch.autograd.grad(out[-1].sum(), h0)
        expected = (1 - trace.gates).prod(dim=0) if cls is BMRU else torch.ones_like(grad)
        assert torch.equal(grad, expected)
        assert bool((grad == 1).all()) == expected_all_ones


def test_update_gradient_is_nonzero_for_cmru_and_vanishes_for_settled_bmru():
    # dh_t/dz_t = alpha sign(c) for CMRU; alpha sign(c) - h_{t-1} = 0 for a BMRU already there.
    c = torch.tensor([[2.0]], requires_grad=True)
    beta = torch.tensor([[1.0]])
    for epsilon, expected in ((1.0, 1.0), (0.0, 0.0)):
        update = F.hysteresis_update(c, beta, epsilon)
        gate = update.gate.detach().requires_grad_(True)
        direction = update.events.detach() / update.gate.detach()
        h_prev = torch.tensor([[1.0]])
        h = (1 - gate * (1 - epsilon)) * h_prev + gate * direction
        (grad,) = torch.autograd.grad(h.sum(), gate)
        assert grad.item() == expected


@given(x=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=20), slope=st.sampled_from([0.5, 1.0, 2.0]))
def test_surrogate_backward_matches_its_formula(x, slope):
    t = torch.tensor(x, requires_grad=True)
    surrogate = F.atan(slope)
    out = F.heaviside(t, surrogate)
    assert torch.equal(out, (t >= 0).float())
    (grad,) = torch.autograd.grad(out.sum(), t)
    torch.testing.assert_close(grad, slope / (1 + (math.pi * slope * t.detach()) ** 2))
    (grad_sign,) = torch.autograd.grad(F.sign(t, surrogate).sum(), t)
    torch.testing.assert_close(grad_sign, 2 * grad)


def test_snntorch_surrogate_changes_gradient_not_forward():
    t = torch.tensor([-1.0, 0.0, 0.3], requires_grad=True)
    out = F.heaviside(t, snn_surrogate.fast_sigmoid(slope=25))
    assert out.tolist() == [0.0, 1.0, 1.0]  # 1[x >= 0], unlike snnTorch's own x > 0
    (grad,) = torch.autograd.grad(out.sum(), t)
    torch.testing.assert_close(grad, 1 / (25 * t.detach().abs() + 1) ** 2)


@given(seed=st.integers(0, 10_000))
def test_fused_gate_equals_composed_surrogates(seed):
    """The fused arctan gate has the gradients of H(|c| - |beta|) and sign(c) composed."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(5, 4, generator=g).requires_grad_(True)
    beta = torch.randn(5, 4, generator=g).requires_grad_(True)
    weights = torch.randn(3, 5, 4, generator=g)
    results = []
    for surrogate in (None, snn_surrogate.atan(alpha=2.0)):  # the same arctan family
        update = F.hysteresis_update(c, beta, 0.5, surrogate)
        loss = sum((w * t).sum() for w, t in zip(weights, update))
        results.append((update, torch.autograd.grad(loss, (c, beta))))
    (fused, fused_grads), (composed, composed_grads) = results
    for a, b in zip(fused, composed):
        assert torch.equal(a, b)
    for a, b in zip(fused_grads, composed_grads):
        torch.testing.assert_close(a, b)


def test_per_unit_threshold_gradient_is_reduced_to_its_shape():
    c = torch.randn(7, 3, 4, requires_grad=True)
    beta = torch.full((4,), 0.5, requires_grad=True)
    update = F.hysteresis_update(c, beta)
    update.gate.sum().backward()
    assert beta.grad.shape == (4,)
    assert torch.all(beta.grad <= 0)  # a wider band closes gates


def test_gradcheck_linear_scan():
    a = torch.rand(9, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: F.linear_scan(a, b), (a, b))


def test_gradcheck_smooth_parts_of_the_layers():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    lru = LRU(3, 4).double()
    assert torch.autograd.gradcheck(lambda x: lru(x)[0], (x,))
    mingru = MinGRU(3, 4).double()
    assert torch.autograd.gradcheck(lambda x: mingru(x)[0], (x,))
    # alpha and h0 enter a memory unit's output smoothly
    unit = MemoryUnit(3, 4, epsilon=0.5).double()
    alpha = unit.alpha.detach().clone().requires_grad_(True)
    h0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)

    def run(alpha, h0):
        with torch.no_grad():
            unit.alpha.copy_(alpha)
        currents = unit.currents(x.detach())
        update = unit.update(currents)
        return F.scan_parallel(update, h0, alpha, cumulative=False)[0]

    assert torch.autograd.gradcheck(run, (alpha, h0))


def test_learned_epsilon_receives_gradient():
    unit = MemoryUnit(3, 4, epsilon=0.5, learn_epsilon=True)
    out, _ = unit(3 * torch.randn(10, 2, 3))
    out.sum().backward()
    assert unit.raw_epsilon.grad is not None and unit.raw_epsilon.grad.abs().sum() > 0


@pytest.mark.slow
def test_compiled_kernels_match_eager():
    """The fused (torch.compile) gate gives the same values and gradients as eager PyTorch."""
    torch.manual_seed(3)
    unit = CMRU(4, 6, threshold="fixed")
    x = 3 * torch.randn(40, 3, 4)
    results = []
    try:
        for compiled in (False, True):
            F.use_compiled_kernels(compiled)
            unit.zero_grad()
            out, _, trace = unit(x, return_trace=True)
            (out * torch.arange(out.numel()).view_as(out)).sum().backward()
            results.append([out, trace.events] + [p.grad.clone() for p in unit.parameters()])
    finally:
        F.use_compiled_kernels(False)
    assert F._Kernels.forward is F._gate_forward  # switched back
    for eager, fused in zip(*results):
        torch.testing.assert_close(fused, eager, atol=1e-5, rtol=1e-5)
