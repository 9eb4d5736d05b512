"""Bad input gets an error that names the argument, the expectation and what came in."""

import pytest
import torch

from cmru_neuro import BMRU, CMRU, AlphaCMRU, EpsilonSchedule, FirstQuadrantBMRU, MemoryUnit
from cmru_neuro.baselines import LRU, MinGRU
from cmru_neuro.network import MemoryNetwork, set_mode

LAYERS = [CMRU, BMRU, AlphaCMRU, FirstQuadrantBMRU, LRU, MinGRU]


@pytest.mark.parametrize("cls", LAYERS)
def test_wrong_rank(cls):
    with pytest.raises(ValueError, match=r"x: expected a 3-D tensor .*got 4-D with shape \(2, 3, 4, 5\)"):
        cls(5, 4)(torch.randn(2, 3, 4, 5))


@pytest.mark.parametrize("cls", LAYERS)
def test_wrong_feature_size(cls):
    with pytest.raises(ValueError, match=r"x: expected shape \(\*, \*, 5\) \(time, batch, features\), got \(7, 2, 6\)"):
        cls(5, 4)(torch.randn(7, 2, 6))


def test_wrong_feature_size_batch_first_names_the_layout():
    with pytest.raises(ValueError, match=r"\(batch, time, features\), got \(2, 7, 3\)"):
        CMRU(5, 4, batch_first=True)(torch.randn(2, 7, 3))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("cls", LAYERS)
def test_non_finite_input(cls, bad):
    x = torch.randn(7, 2, 5)
    x[3, 1, 2] = bad
    with pytest.raises(ValueError, match="x: expected finite values, got NaN or inf"):
        cls(5, 4)(x)


@pytest.mark.parametrize("cls", LAYERS)
def test_integer_dtype(cls):
    with pytest.raises(TypeError, match=r"x: expected a floating-point tensor, got dtype torch.int64"):
        cls(5, 4)(torch.ones(7, 2, 5, dtype=torch.long))


@pytest.mark.parametrize("cls", LAYERS)
def test_not_a_tensor(cls):
    with pytest.raises(TypeError, match="x: expected a torch.Tensor, got list"):
        cls(5, 4)([[1.0] * 5])


@pytest.mark.parametrize("cls", LAYERS)
def test_h0_of_the_wrong_shape(cls):
    with pytest.raises(ValueError, match=r"h0: expected shape \(2, 4\) \(batch, hidden\), got \(3, 4\)"):
        cls(5, 4)(torch.randn(7, 2, 5), torch.ones(3, 4))


def test_h0_with_nan_and_step_state_shape():
    unit = CMRU(5, 4)
    with pytest.raises(ValueError, match="h0: expected finite values"):
        unit(torch.randn(7, 2, 5), torch.full((2, 4), float("nan")))
    with pytest.raises(ValueError, match=r"h: expected shape \(2, 4\) \(batch, hidden\), got \(2, 5\)"):
        unit.step(torch.randn(2, 5), torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"x_t: expected shape \(\*, 5\) \(batch, features\), got \(2, 4\)"):
        unit.step(torch.randn(2, 4))


def test_unbatched_h0_must_be_one_dimensional():
    with pytest.raises(ValueError, match=r"h0: expected shape \(4,\) \(hidden\), got \(1, 4\)"):
        CMRU(5, 4)(torch.randn(7, 5), torch.zeros(1, 4))


def test_mingru_h0_must_be_positive():
    with pytest.raises(ValueError, match="h0: expected positive values"):
        MinGRU(5, 4)(torch.randn(7, 2, 5), -torch.ones(2, 4))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "fast"}, "mode: expected one of 'parallel', 'sequential', got 'fast'"),
        ({"threshold": "adaptive"}, "threshold: expected one of 'input', 'fixed', got 'adaptive'"),
        ({"epsilon": 1.5}, r"epsilon: expected a number in \[0, 1\], got 1.5"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MemoryUnit(5, 4, **kwargs)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_bad_sizes(size):
    with pytest.raises(ValueError, match=f"hidden_size: expected a positive integer, got {size!r}"):
        CMRU(5, size)


def test_fixed_units_refuse_epsilon():
    with pytest.raises(TypeError, match="epsilon: not an option of this unit"):
        CMRU(5, 4, epsilon=0.5)


def test_mode_override_is_checked():
    with pytest.raises(ValueError, match="mode: expected one of"):
        CMRU(5, 4)(torch.randn(3, 1, 5), mode="scan")
    with pytest.raises(ValueError, match="mode: expected one of"):
        set_mode(MemoryNetwork(5, [4], 2), "scan")


def test_network_options_are_checked():
    with pytest.raises(ValueError, match="unit: expected one of 'cmru', 'bmru', 'acmru', 'fq-bmru', got 'gru'"):
        MemoryNetwork(5, [4], 2, unit="gru")
    with pytest.raises(ValueError, match="hidden_sizes: expected at least one layer size"):
        MemoryNetwork(5, [], 2)
    with pytest.raises(ValueError, match="hidden_sizes: expected a positive integer, got 0"):
        MemoryNetwork(5, [4, 0], 2)


def test_schedule_rejects_negative_lengths():
    with pytest.raises(ValueError, match="hold, decay: expected non-negative"):
        EpsilonSchedule(hold=-1)


def test_lru_ring_must_be_ordered():
    with pytest.raises(ValueError, match="r_min, r_max"):
        LRU(5, 4, r_min=0.99, r_max=0.9)


def test_a_unit_that_changes_its_update_must_say_whether_it_is_fusable():
    """Overriding currents() or update() without the class attribute would be skipped by the
    fused path silently: refused at class creation, accepted once fusable is stated."""
    with pytest.raises(TypeError, match=r"Scaled overrides currents\(\): set the class attribute fusable = False"):
        class Scaled(MemoryUnit):
            def currents(self, x):
                return super().currents(2 * x)

    class Stated(MemoryUnit):
        fusable = False

        def currents(self, x):
            return super().currents(2 * x)

    torch.manual_seed(0)
    unit, x = Stated(3, 4), torch.randn(6, 2, 3)
    reference = MemoryUnit(3, 4)
    reference.load_state_dict(unit.state_dict())
    assert torch.equal(unit(x)[0], reference(2 * x)[0])


@pytest.mark.parametrize("arch", ["reference", "block"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_training_models_name_x_and_the_dtype_they_expect(arch, dtype):
    from cmru_neuro.models import build_model

    model = build_model(dict(input_size=3, output_size=2, hidden=4, arch=arch))
    with pytest.raises(TypeError, match=rf"x: expected dtype torch.float32 \(the module's parameters\), got {dtype}"):
        model(torch.randn(5, 2, 3).to(dtype))
    with pytest.raises(ValueError, match=r"x: expected shape \(\*, \*, 3\) \(time, batch, features\), got \(5, 2, 4\)"):
        model(torch.randn(5, 2, 4))
    with pytest.raises(ValueError, match="x: expected finite values"):
        model(torch.full((5, 2, 3), float("nan")))
    with pytest.raises(ValueError, match="x: expected at least one time step for readout 'mean', got T = 0"):
        model(torch.randn(0, 2, 3))


@pytest.mark.parametrize("arch", ["reference", "block"])
def test_a_double_training_model_runs_end_to_end_for_every_cell(arch):
    from cmru_neuro.models import CELLS, build_model

    for cell in CELLS:
        model = build_model(dict(input_size=3, output_size=2, hidden=4, layers=1, positional=2, arch=arch,
                                 cell=cell, readout="last")).double()
        x = torch.randn(5, 2, 3, dtype=torch.float64)
        out = model(x)
        assert out.dtype == torch.float64 and out.shape == (2, 2), cell
        out.square().sum().backward()
        assert all(p.grad is None or p.grad.dtype == torch.float64 for p in model.parameters()), cell
        assert model(x[:, 0]).shape == (2,), cell  # unbatched (T, F)
