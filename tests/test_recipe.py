"""The authors' recipe: the reference block and its switches, the cells' initialisation,
epsilon annealing with eligible checkpoints, the rate penalty, resuming, parameter budgets,
the first-quadrant BMRU as the circuit paper trains it, and both minGRU forms."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cmru_neuro import CMRU, FirstQuadrantBMRU, MemoryUnit
from cmru_neuro.baselines import LRU, MinGRU
from cmru_neuro.checkpoint import load_checkpoint
from cmru_neuro.cli import main
from cmru_neuro.experiments import sized
from cmru_neuro.models import CELLS, ModelConfig, ProjectedCell, ReferenceModel, build_model, parameter_count
from cmru_neuro.network import MemoryNetwork
from cmru_neuro.quant import dequantize, network_spec, quantize, simulate
from cmru_neuro.training import BEST_NAME, SETTLED_EPSILON, TrainConfig, train

TINY = dict(task="copy-first", task_options=dict(length=10, classes=3, train_size=300, test_size=60),
            hidden=8, progress=False)
PIECES = ("pre_mlp", "post_mlp", "norm_after_cell", "output_gate", "skip_scale")


def reference(**values) -> ModelConfig:
    return ModelConfig(**{"input_size": 3, "output_size": 5, "hidden": 16, "layers": 2, **values})


# -- the reference block ---------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("readout, shape", [("last", (4, 5)), ("mean", (4, 5)), ("sequence", (12, 4, 5))])
def test_reference_block_shapes_for_every_cell(cell, readout, shape):
    model = build_model(reference(cell=cell, readout=readout, state_size=6))
    out = model(torch.randn(12, 4, 3))
    assert out.shape == shape
    out.sum().backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_each_cell_has_its_own_output_projection_from_state_size_to_width():
    model = build_model(reference(state_size=6))
    for layer in model.layers:
        assert isinstance(layer.cell, ProjectedCell)
        assert layer.cell.cell.hidden_size == 6 and layer.cell.output.weight.shape == (16, 6)
    lru = build_model(reference(cell="lru", state_size=6)).layers[0].cell
    assert isinstance(lru, LRU) and lru.C_re.shape == (16, 6)


def test_mean_readout_averages_the_logits_over_time():
    torch.manual_seed(0)
    sequence = build_model(reference(readout="sequence")).eval()
    mean = build_model(reference(readout="mean")).eval()
    mean.load_state_dict(sequence.state_dict())
    x = torch.randn(9, 2, 3)
    torch.testing.assert_close(mean(x), sequence(x).mean(dim=0))


def test_norm_after_the_cell_on_every_layer_but_the_last_and_no_final_norm():
    model = build_model(reference(layers=3))
    assert [layer.cell_norm is not None for layer in model.layers] == [True, True, False]
    assert not hasattr(model, "norm")
    assert all(layer.gate.bias.eq(4.0).all() for layer in model.layers)


@pytest.mark.parametrize("piece", PIECES)
def test_each_piece_switches_off(piece):
    on, off = build_model(reference()), build_model(reference(**{piece: False}))
    assert parameter_count(reference(**{piece: False})) < parameter_count(reference())
    x = torch.randn(7, 2, 3)
    assert off(x).shape == on(x).shape


def test_positional_encoding_is_reinjected_at_every_layer_and_switches_off():
    model = build_model(reference(positional=8))
    assert model.positions.log_frequency.shape == (4,)
    assert all(layer.inject.in_features == 16 + 8 for layer in model.layers)
    plain = build_model(reference(positional=0))
    assert plain.positions is None and all(layer.inject is None for layer in plain.layers)


def test_positional_encoding_gives_order_to_a_one_layer_cmru():
    """Gates that see only x_t sum events regardless of their order; the encoding breaks that."""
    torch.manual_seed(0)
    x = torch.zeros(6, 1, 3)
    x[1, 0, 0] = x[4, 0, 1] = 3.0
    swapped = x.clone()
    swapped[[1, 4]] = x[[4, 1]]
    for positional, same in ((0, True), (8, False)):
        model = build_model(reference(layers=1, positional=positional, pre_mlp=False, post_mlp=False,
                                      output_gate=False, readout="last", dropout=0.0)).eval()
        cell_out = []
        for inputs in (x, swapped):
            captured = {}
            handle = model.layers[0].cell.cell.register_forward_hook(lambda m, a, o: captured.update(h=o[1]))
            model(inputs)
            handle.remove()
            cell_out.append(captured["h"])
        assert torch.equal(cell_out[0], cell_out[1]) == same


def test_causal_conv_does_not_look_ahead():
    model = build_model(reference(conv=4, readout="sequence", dropout=0.0, positional=0)).eval()
    x = torch.randn(10, 2, 3)
    changed = x.clone()
    changed[6:] += 1.0
    torch.testing.assert_close(model(x)[:6], model(changed)[:6])


def test_bad_switch_values_name_the_argument():
    with pytest.raises(ValueError, match="positional: expected an even number"):
        reference(positional=3)
    with pytest.raises(ValueError, match="conv: expected a non-negative integer"):
        reference(conv=-1)
    with pytest.raises(ValueError, match="state_size: expected a positive integer"):
        reference(state_size=0)


# -- initialisation ----------------------------------------------------------------------


@pytest.mark.parametrize("init, expected", [("reference", 0.37), ("pytorch", 0.20)])
def test_fraction_of_gates_open_at_init_on_normalised_input(init, expected):
    torch.manual_seed(0)
    fractions = []
    for _ in range(4):
        unit = CMRU(64, 64, init=init)
        x = torch.nn.functional.layer_norm(torch.randn(50, 16, 64), (64,))
        fractions.append(unit(x, return_trace=True)[2].gates.mean().item())
    assert abs(np.mean(fractions) - expected) < 0.03


def test_reference_init_is_lecun_normal_with_candidate_bias_0_and_threshold_bias_1():
    torch.manual_seed(0)
    unit = CMRU(400, 300)
    weight, bias = unit.projection.weight, unit.projection.bias
    assert abs(weight.std().item() - 400**-0.5) < 0.002 and abs(weight.mean().item()) < 0.001
    assert torch.equal(bias[:300], torch.zeros(300)) and torch.equal(bias[300:], torch.ones(300))
    assert set(unit.initial_level.tolist()) == {-1.0, 1.0}


def test_reset_parameters_reinitialises_like_a_new_unit():
    unit = CMRU(5, 4)
    with torch.no_grad():
        for p in unit.parameters():
            p.fill_(7.0)
    unit.reset_parameters()
    assert unit.alpha.eq(1).all() and unit.projection.bias[4:].eq(1).all() and unit.projection.bias[:4].eq(0).all()


# -- epsilon annealing, best checkpoint, rate penalty, resume -----------------------------


def test_annealing_reaches_epsilon_0_and_keeps_only_settled_checkpoints(tmp_path):
    config = TrainConfig(**TINY, cell="bmru-anneal", anneal_hold=4, anneal_decay=8, steps=24, eval_every=2,
                         checkpoint_every=4, out_dir=str(tmp_path))
    result = train(config)
    epsilons = [row["epsilon"] for row in result.metrics["history"]]
    assert epsilons[0] == 1.0 and epsilons[-1] == 0.0 and epsilons == sorted(epsilons, reverse=True)
    settled = min(row["step"] for row in result.metrics["history"] if row["epsilon"] < SETTLED_EPSILON)
    assert result.metrics["best_step"] >= settled
    best = load_checkpoint(tmp_path / BEST_NAME)
    assert best.metrics["best_step"] == result.metrics["best_step"]
    assert all(unit.epsilon == 0.0 for unit in result.model.modules() if isinstance(unit, MemoryUnit))


def test_an_annealed_checkpoint_reloads_at_the_epsilon_it_was_saved_at(tmp_path):
    """A bmru-anneal model rebuilt from its config starts at epsilon 1 (a CMRU): the
    checkpoint restores the annealed epsilon, so reloading scores what training scored."""
    config = TrainConfig(**TINY, cell="bmru-anneal", anneal_hold=4, anneal_decay=8, steps=24, eval_every=2,
                         out_dir=str(tmp_path))
    result = train(config)
    for name in (BEST_NAME, "model.safetensors"):
        loaded = load_checkpoint(tmp_path / name)
        units = [unit for unit in loaded.model.modules() if isinstance(unit, MemoryUnit)]
        assert units and all(unit.epsilon == 0.0 for unit in units), name
    task = loaded.make_task()
    inputs, targets = task.batch(task.test, torch.arange(len(task.test)))
    with torch.no_grad():
        assert torch.equal(loaded.model(inputs), result.model.eval()(inputs))


def test_stop_at_waits_for_epsilon_to_settle():
    config = TrainConfig(**TINY, cell="bmru-anneal", anneal_hold=4, anneal_decay=8, steps=40, eval_every=2,
                         stop_at=0.0)
    metrics = train(config).metrics
    assert metrics["steps"] == 14 and metrics["history"][-1]["epsilon"] < SETTLED_EPSILON
    assert metrics["history"][-2]["epsilon"] > 0


def test_annealing_that_does_not_settle_keeps_no_best_checkpoint(tmp_path):
    config = TrainConfig(**TINY, cell="bmru-anneal", anneal_hold=4, anneal_decay=100, steps=8, eval_every=2,
                         out_dir=str(tmp_path))
    result = train(config)
    assert result.metrics["best_step"] is None and result.metrics["epsilon"] > 0.5
    assert not (tmp_path / BEST_NAME).exists()


def test_annealing_needs_a_unit_with_a_settable_epsilon():
    with pytest.raises(ValueError, match="MemoryUnit with a settable epsilon"):
        train(TrainConfig(**TINY, cell="cmru", anneal=True, steps=1))


def test_rate_penalty_reaches_the_gates():
    config = TrainConfig(**TINY, rate_penalty=1.0, steps=2, eval_every=2)
    result = train(config)
    plain = train(TrainConfig(**TINY, steps=2, eval_every=2))
    assert not torch.equal(result.model.encoder.weight, plain.model.encoder.weight)
    units = [m for m in result.model.modules() if isinstance(m, MemoryUnit)]
    result.model(torch.randn(10, 4, 3))
    sum(unit.update_rate for unit in units).backward()
    assert units and all(unit.projection.weight.grad.abs().sum() > 0 for unit in units)


@pytest.mark.parametrize("cell", ["cmru", "bmru-anneal"])
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, interrupt_training, cell):
    config = dict(TINY, cell=cell, steps=30, eval_every=5, checkpoint_every=10, anneal_hold=5, anneal_decay=10)
    whole = train(TrainConfig(**config, out_dir=str(tmp_path / "whole")))
    interrupt_training(25)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**config, out_dir=str(tmp_path / "cut")))
    interrupt_training(None)
    assert load_checkpoint(tmp_path / "cut" / "model.safetensors").metrics["steps"] == 20
    resumed = train(TrainConfig(**config, out_dir=str(tmp_path / "cut"), resume=True))
    for name, value in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=0, atol=0)
    for key in ("test_accuracy", "test_loss", "best_step", "steps", "steps_to_converge"):
        assert resumed.metrics[key] == whole.metrics[key]
    assert [r["val_loss"] for r in resumed.metrics["history"]] == [r["val_loss"] for r in whole.metrics["history"]]


def test_resume_refuses_other_settings_and_missing_runs(tmp_path):
    train(TrainConfig(**TINY, steps=4, eval_every=2, checkpoint_every=2, out_dir=str(tmp_path / "run")))
    with pytest.raises(ValueError, match=r"other settings \(lr\)"):
        train(TrainConfig(**TINY, steps=4, eval_every=2, checkpoint_every=2, lr=0.5, out_dir=str(tmp_path / "run"),
                          resume=True))
    with pytest.raises(FileNotFoundError, match="holds no run to continue"):
        train(TrainConfig(**TINY, steps=4, out_dir=str(tmp_path / "empty"), resume=True))
    assert main(["train", "--resume"]) == 2


# -- parameter budgets -------------------------------------------------------------------


def test_compare_sizes_every_cell_to_one_budget():
    base = TrainConfig(task="digits", progress=False)
    counts = {}
    for cell in ("cmru", "lru", "mingru-lin", "acmru"):
        config = sized(base, cell, 30_000)
        counts[cell] = parameter_count(ModelConfig(input_size=1, output_size=10, readout="mean",
                                                   **{k: getattr(config, k) for k in ("cell", "hidden", "layers")}))
    assert all(abs(count - 30_000) / 30_000 < 0.06 for count in counts.values()), counts


def test_compare_table_names_width_and_parameters(tmp_path, capsys):
    code = main(["compare", "--task", "copy-first", "-o", "length=6", "-o", "train_size=80", "-o", "test_size=10",
                 "--cells", "cmru", "mingru-lin", "--seeds", "0", "--steps", "2", "--eval-every", "2",
                 "--budget", "5000", "--no-progress", "--out", str(tmp_path)])
    assert code == 0
    table = capsys.readouterr().out
    assert "| cell | width | parameters |" in table and "| mingru-lin |" in table
    assert json.loads((tmp_path / "compare.json").read_text())["budget"] == 5000


# -- first-quadrant BMRU as the circuit paper trains it ------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 30))
def test_first_quadrant_states_stay_in_zero_or_alpha(seed, steps):
    torch.manual_seed(seed)
    unit = FirstQuadrantBMRU(3, 5)
    h, _ = unit(torch.randn(steps, 2, 3) * 2)
    spacing = unit.level_spacing.detach()
    on_lattice = torch.isclose(h, torch.zeros_like(h)) | torch.isclose(h, spacing.expand_as(h))
    assert on_lattice.all()
    assert (unit.initial_state(2) == 0).logical_or(unit.initial_state(2) == spacing).all()


def test_first_quadrant_form_of_the_circuit_paper():
    torch.manual_seed(0)
    unit = FirstQuadrantBMRU(4, 200)
    assert torch.all(unit.projection.bias == 0.5)
    assert 0.12 <= unit.threshold_low.min() and unit.threshold_low.max() <= 0.18
    width = unit.threshold_high - unit.threshold_low
    assert 0.28 <= width.min() and width.max() <= 0.42
    assert (unit.level_spacing > 0).all()
    negative = -torch.rand(5, 1, 4)  # rectified: negative input is no input
    torch.testing.assert_close(unit.currents(negative).candidate, torch.relu(unit.projection.bias).expand(5, 1, 200))
    with torch.no_grad():
        unit.projection.weight.neg_()  # weights act as magnitudes
    assert torch.equal(unit.projection_weights()[0], unit.projection.weight.abs())


def test_first_quadrant_reset_is_strict_at_the_low_threshold():
    unit = FirstQuadrantBMRU(1, 1, bias=False, rectify_input=False)
    with torch.no_grad():
        unit.projection.weight.fill_(1.0)
        unit.raw_threshold_low.fill_(0.25)
        unit.raw_width.fill_(0.5)
        unit.alpha.fill_(1.0)
        unit.initial_level.fill_(1.0)  # starts high
    x = torch.tensor([[0.25], [0.1], [0.75], [0.25]]).unsqueeze(1)
    h, _ = unit(x)
    assert h.flatten().tolist() == [1.0, 0.0, 1.0, 1.0]  # c == beta_lo holds, below resets, beta_hi sets


def test_first_quadrant_anneals_and_deploys_bit_exact_at_epsilon_0():
    torch.manual_seed(3)
    network = MemoryNetwork(3, [6, 5], 2, unit="fq-bmru", readout="sequence",
                            unit_options={"epsilon": 1.0})
    x = torch.randn(20, 4, 3)
    with pytest.raises(ValueError, match="epsilon 1.0; a fq-bmru deploys at epsilon 0"):
        network_spec(network)
    for unit in network.units:
        unit.epsilon = 0.0
    quantized = quantize(network, x)
    copy = dequantize(quantized.spec, network)
    torch.testing.assert_close(copy(x) * 2.0 ** -quantized.spec.readout.exponent,
                               torch.as_tensor(simulate(quantized.spec, x).outputs, dtype=torch.float32),
                               rtol=0, atol=0)


# -- baselines in both forms ---------------------------------------------------------------


@pytest.mark.parametrize("form", ["log", "linear"])
def test_min_gru_parallel_equals_sequential(form):
    torch.manual_seed(0)
    layer = MinGRU(3, 5, form=form)
    x = torch.randn(30, 2, 3)
    torch.testing.assert_close(layer(x)[0], layer(x, mode="sequential")[0], atol=1e-5, rtol=1e-5)


def test_authors_min_gru_has_a_learned_initial_state_and_a_linear_candidate():
    layer = MinGRU(2, 4, form="linear", bias=False)
    assert layer.initial_state.abs().max() <= 1
    with torch.no_grad():
        layer.projection.weight.zero_()
    out, _ = layer(torch.randn(3, 1, 2))
    expected = layer.initial_state * 0.5**torch.arange(1, 4).view(3, 1, 1)  # z = 0.5, candidate 0
    torch.testing.assert_close(out, expected)


def test_lru_xavier_init_and_output_size():
    torch.manual_seed(0)
    lru = LRU(64, 32, output_size=48, init="xavier")
    bound = (6 / (64 + 32)) ** 0.5 / 2**0.5
    assert lru.B_re.abs().max() <= bound and lru.B_re.abs().max() > 0.9 * bound
    assert lru(torch.randn(5, 2, 64))[0].shape == (5, 2, 48)
