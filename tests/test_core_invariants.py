"""State invariants: lattices, holding, bistability, schedules."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cmru_neuro import BMRU, CMRU, EpsilonSchedule, FirstQuadrantBMRU, MemoryUnit

cases = st.fixed_dictionaries(
    {
        "T": st.integers(1, 50),
        "B": st.integers(1, 3),
        "H": st.integers(1, 6),
        "seed": st.integers(0, 2**16),
        "mode": st.sampled_from(["parallel", "sequential"]),
        "scale": st.sampled_from([0.5, 2.0, 5.0]),
    }
)


def _run(cls, case, **kwargs):
    torch.manual_seed(case["seed"])
    unit = cls(3, case["H"], **kwargs)
    with torch.no_grad():
        unit.alpha.uniform_(0.2, 2.0)
    x = case["scale"] * torch.randn(case["T"], case["B"], 3)
    out, _, trace = unit(x, mode=case["mode"], return_trace=True)
    h0 = unit.initial_state(case["B"]).detach()
    return unit, out.detach(), trace, h0


@given(cases)
def test_bmru_states_are_plus_or_minus_alpha(case):
    unit, out, _, _ = _run(BMRU, case)
    alpha = unit.alpha.detach()
    assert torch.all((out == alpha) | (out == -alpha))


@given(cases)
def test_cmru_states_stay_on_the_lattice(case):
    unit, out, trace, h0 = _run(CMRU, case)
    levels = trace.levels
    assert torch.equal(levels, levels.round())  # integer levels
    torch.testing.assert_close(out, h0 + unit.alpha.detach() * levels, atol=1e-5, rtol=0)
    # each step moves by at most one level
    steps = torch.diff(torch.cat([torch.zeros_like(levels[:1]), levels]), dim=0)
    assert torch.equal(steps, trace.events)


@given(cases)
def test_first_quadrant_states_are_zero_or_alpha(case):
    unit, out, _, _ = _run(FirstQuadrantBMRU, case)
    alpha = unit.alpha.detach()
    assert torch.all((out == 0) | (out == alpha))


def _held(cls, case):
    _, out, trace, h0 = _run(cls, case)
    previous = torch.cat([h0.unsqueeze(0), out[:-1]])
    closed = trace.gates == 0
    return out[closed], previous[closed]


@pytest.mark.parametrize("cls", [CMRU, BMRU, FirstQuadrantBMRU])
@given(case=cases)
def test_state_holds_exactly_while_the_gate_is_closed(cls, case):
    assert torch.equal(*_held(cls, case))


@given(case=cases)
def test_leaky_family_holds_exactly_in_sequence_and_to_rounding_in_parallel(case):
    """0 < epsilon < 1: the parallel scan re-associates sums, so a hold is exact to rounding."""
    held, previous = _held(lambda f, h: MemoryUnit(f, h, epsilon=0.4), case)
    if case["mode"] == "sequential":
        assert torch.equal(held, previous)
    else:
        torch.testing.assert_close(held, previous, atol=1e-6, rtol=1e-6)


def test_gate_follows_the_hysteresis_band():
    unit = CMRU(1, 1, threshold="fixed", learn_initial_state=False, bias=False)
    with torch.no_grad():
        unit.projection.weight.fill_(1.0)
        unit.threshold.fill_(1.0)
    x = torch.tensor([0.5, 1.0, 2.0, -0.99, -1.0, -3.0]).view(-1, 1, 1)
    out, _, trace = unit(x, return_trace=True)
    assert trace.gates.flatten().tolist() == [0, 1, 1, 0, 1, 1]  # |c| >= |beta| updates
    assert trace.events.flatten().tolist() == [0, 1, 1, 0, -1, -1]
    assert out.flatten().tolist() == [0, 1, 2, 2, 1, 0]


def test_epsilon_schedule_holds_then_decays():
    schedule = EpsilonSchedule(hold=10, decay=20)
    assert schedule(0) == 1.0 and schedule(9) == 1.0
    assert schedule(20) == pytest.approx(0.5)
    assert schedule(30) == 0.0 and schedule(1000) == 0.0
    assert not schedule.done(29) and schedule.done(30)


def test_epsilon_schedule_sets_units_and_changes_behaviour():
    model = torch.nn.Sequential(MemoryUnit(2, 3))
    schedule = EpsilonSchedule(hold=1, decay=2)
    assert schedule.apply(model, 0) == 1.0 and model[0].cumulative
    schedule.apply(model, 2)
    assert model[0].epsilon == 0.5 and not model[0].cumulative
    schedule.apply(model, 5)
    x = 3 * torch.randn(20, 1, 2)
    out, _ = model[0](x)
    alpha = model[0].alpha.detach()
    updated = (out.abs() - alpha).abs() < 1e-6
    assert updated.any()  # at epsilon 0 a MemoryUnit is bistable once updated


def test_epsilon_schedule_refuses_models_without_schedulable_units():
    with pytest.raises(ValueError, match="MemoryUnit"):
        EpsilonSchedule().apply(torch.nn.Sequential(CMRU(2, 2)), 0)
    with pytest.raises(ValueError, match="start"):
        EpsilonSchedule(start=2.0)
