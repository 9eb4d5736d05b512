"""Post-training quantization and the integer golden model (cmru_neuro.quant)."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cmru_neuro import quant
from cmru_neuro.network import MemoryNetwork

VARIANTS = [("cmru", "input"), ("cmru", "fixed"), ("bmru", "input"), ("bmru", "fixed"), ("fq-bmru", None)]


def random_network(unit, threshold, seed, sizes=(6, 5), readout="sequence", features=3, outputs=2):
    """An untrained network with every parameter perturbed (alpha, h_0 included)."""
    torch.manual_seed(seed)
    options = {"threshold": threshold} if threshold else None
    model = MemoryNetwork(features, list(sizes), outputs, unit=unit, readout=readout, unit_options=options)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return model.eval()


# the acceptance tasks, small: (cell, task, task options)
TRAINED = [
    ("cmru", "copy-first", dict(length=20, noise=0.2, train_size=1000, test_size=500)),
    ("bmru", "flip-flop", dict(length=30, bits=2, pulse_probability=0.1, train_size=1000, test_size=200)),
]


def train_small(cell, task, options):
    """A MemoryNetwork trained by cmru_neuro.training (about 10 s on 2 cores) and its task."""
    from cmru_neuro.tasks import make_task
    from cmru_neuro.training import train

    config = dict(task=task, task_options=options, cell=cell, arch="stack", hidden=8, steps=200,
                  lr=0.02, dropout=0.0, eval_every=100, progress=False)
    return train(config).model.eval(), make_task(task, **options)


def on_grid(spec, inputs):
    """``inputs`` rounded to the integer model's input step (what the integer model sees)."""
    return torch.as_tensor(quant.encode_inputs(spec, inputs) * 2.0**spec.input_exponent).float()


# --- the weight lattice -------------------------------------------------------------------


@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
              elements=st.floats(-1e4, 1e4, allow_subnormal=False)))
def test_weight_lattice_is_lavas_mixed_sign_8_bit_form(weights):
    mantissas, exponent = quant.weight_lattice(weights)
    assert mantissas.dtype == np.int64 and mantissas.shape == weights.shape
    assert np.all(mantissas % 2 == 0)
    assert mantissas.min() >= -256 and mantissas.max() <= 254
    assert np.all(np.abs(mantissas * 2.0**exponent - weights) <= 2.0**exponent * (1 + 1e-12))
    if np.any(weights != 0):  # the smallest exponent that fits: the top half of the range is used
        assert np.abs(mantissas).max() >= 128


def test_weight_lattice_of_zeros_and_non_finite():
    mantissas, exponent = quant.weight_lattice(np.zeros((2, 3)))
    assert exponent == 0 and not mantissas.any()
    with pytest.raises(ValueError, match="weights: expected finite values"):
        quant.weight_lattice(np.array([[1.0, np.inf]]))


@given(st.floats(1e-6, 1e6), st.integers(2, 24))
def test_input_exponent_fits_the_largest_input(largest, bits):
    exponent = quant.input_exponent(torch.tensor([largest, -largest / 3]), bits)
    limit = 2 ** (bits - 1) - 1
    assert largest / 2.0**exponent <= limit < largest / 2.0 ** (exponent - 1)


# --- the shared step ----------------------------------------------------------------------


def unit(kind, hidden, streams=2, initial=0):
    zeros = np.zeros(hidden, np.int64)
    return quant.UnitSpec(kind, np.zeros(streams * hidden, np.int64), zeros, zeros, zeros + initial)


@given(arrays(np.int64, (3, 8), elements=st.integers(-50, 50)),
       arrays(np.int64, (3, 4), elements=st.integers(-3, 3)))
def test_step_gate_rule_and_levels(dendrite, level):
    """|c| >= |beta| updates towards sign(c), sign(0) = +1; levels stay on each unit's set."""
    candidate, threshold = dendrite[:, :4], dendrite[:, 4:]
    gate = np.abs(candidate) >= np.abs(threshold)
    direction = np.where(candidate >= 0, 1, -1)
    cmru = quant.unit_step(unit("cmru", 4), np.zeros((3, 8), np.int64), level, dendrite, False, True)
    assert np.array_equal(cmru.message, gate * direction)
    assert np.array_equal(cmru.level, level + gate * direction)
    bistable = np.where(level >= 0, 1, -1)
    bmru = quant.unit_step(unit("bmru", 4), np.zeros((3, 8), np.int64), bistable, dendrite, False, True)
    assert np.array_equal(bmru.level, np.where(gate, direction, bistable))
    fq_level = (level > 0).astype(np.int64)
    first_quadrant = quant.UnitSpec("fq-bmru", np.zeros(4), np.full(4, 10), np.full(4, 3), np.zeros(4))
    fq = quant.unit_step(first_quadrant, np.zeros((3, 4), np.int64), fq_level, candidate, False, True)
    relu = np.maximum(candidate, 0)
    assert np.array_equal(fq.level, np.where(relu >= 10, 1, np.where(relu < 3, 0, fq_level)))


def test_step_reset_starts_from_the_initial_level():
    step = quant.unit_step(unit("bmru", 2, initial=-1), np.zeros(4), np.array([1, 1]),
                           np.array([0, 0, 5, 5]), True, True)
    assert step.level.tolist() == [-1, -1] and step.message.tolist() == [-2, -2]


def test_step_saturates_and_counts():
    limit = quant.STATE_LIMIT
    cmru = quant.UnitSpec("cmru", np.array([1, 1, 0, 0]), np.zeros(2), np.zeros(2), np.zeros(2))
    step = quant.unit_step(cmru, np.array([limit, 0, 0, 0]), np.array([limit, 3]),
                           np.array([5, 0, 0, 0]), False, True)
    assert step.sigma.tolist() == [limit, 0, 0, 0]
    assert step.level.tolist() == [limit, 4]
    assert step.message.tolist() == [0, 1]
    assert step[3:] == (1, 1, 1)  # sigma, current, level
    float_step = quant.unit_step(cmru, np.array([limit, 0, 0, 0.0]), np.array([limit, 3.0]),
                                 np.array([5.0, 0, 0, 0]), False, False)
    assert float_step.level.tolist() == [limit + 1, 4] and float_step.state_saturations == 0


# --- the integer model against the float model --------------------------------------------


@pytest.mark.parametrize("kind,threshold", VARIANTS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_integer_model_equals_the_float_model_with_quantized_weights(kind, threshold, seed):
    model = random_network(kind, threshold, seed)
    inputs = torch.randn(12, 5, 3, generator=torch.Generator().manual_seed(seed))
    quantized = quant.quantize(model, inputs)
    run = quant.simulate(quantized.spec, inputs)
    assert not run.saturations
    grid = on_grid(quantized.spec, inputs)
    expected = quant.dequantize(quantized.spec, model)(grid)
    assert torch.equal(quant.logits(quantized.spec, run.outputs), expected)


@pytest.mark.parametrize("kind,threshold", VARIANTS)
@pytest.mark.parametrize("readout", ["last", "mean", "sequence"])
def test_float_form_matches_the_torch_model(kind, threshold, readout):
    model = random_network(kind, threshold, 3, readout=readout)
    inputs = torch.randn(10, 4, 3)
    spec = quant.network_spec(model)
    outputs = quant.logits(spec, quant.simulate(spec, inputs).outputs)
    torch.testing.assert_close(outputs, model(inputs), atol=1e-5, rtol=1e-5)


def test_events_are_the_state_changes():
    model = random_network("cmru", "input", 4, sizes=(6,))
    inputs = torch.randn(9, 3, 3)
    quantized = quant.quantize(model, inputs)
    with torch.no_grad():
        _, traces = quant.dequantize(quantized.spec, model)(on_grid(quantized.spec, inputs), return_traces=True)
    assert quant.simulate(quantized.spec, inputs).messages == [int(traces[0].events.abs().sum())]


def test_saturation_is_counted_and_reported():
    """A unit that steps up every step drives a readout biased near the 24-bit limit."""
    model = MemoryNetwork(1, [1], 1, unit="cmru", unit_options={"learn_initial_state": False})
    with torch.no_grad():
        model.units[0].projection.weight.zero_()
        model.units[0].projection.bias.copy_(torch.tensor([5.0, 0.0]))  # always |c| >= |beta|, c > 0
        model.readout.weight.fill_(1.0)
        model.readout.bias.fill_((quant.STATE_LIMIT - 200) * 2.0**-7)  # weight 1 = 128 units of 2**-7
    with pytest.warns(UserWarning, match="saturate the integer model"):
        quantized = quant.quantize(model, torch.ones(6, 2, 1))
    assert quantized.spec.readout.exponent == -7
    assert quantized.calibration.saturations == {"readout output": 2 * 5}  # steps 2..6, two sequences
    assert np.all(quantized.calibration.outputs[1:] == quant.STATE_LIMIT)


# --- accuracy --------------------------------------------------------------------------------


@pytest.mark.parametrize("cell,task,options", TRAINED, ids=[t[1] for t in TRAINED])
def test_trained_model_loses_at_most_one_point(cell, task, options):
    model, task = train_small(cell, task, options)
    calibration, _ = task.batch(task.train, torch.arange(256))
    inputs, targets = task.batch(task.test, torch.arange(len(task.test)))
    quantized = quant.quantize(model, calibration)
    report = quant.accuracy_report(model, quantized.spec, inputs, targets, correct=task.correct)
    assert report.float_accuracy >= 95.0, report
    assert report.difference >= -1.0, report
    assert not report.saturations
    assert "difference" in str(report)


# --- errors ------------------------------------------------------------------------------------


def test_alpha_cmru_has_no_integer_form():
    with pytest.raises(ValueError, match="unit 'acmru' has no integer form"):
        quant.quantize(MemoryNetwork(2, [3], 2, unit="acmru"), torch.randn(4, 2, 2))


def test_quantize_wants_a_memory_network_or_a_pipeline():
    with pytest.raises(TypeError, match="model: expected a cmru_neuro.network.MemoryNetwork, or an nn.Sequential "
                                        "/ Norse SequentialState pipeline, got Linear"):
        quant.quantize(torch.nn.Linear(2, 2), torch.randn(4, 2, 2))


def test_calibration_inputs_are_checked():
    model = random_network("cmru", "input", 0)
    with pytest.raises(ValueError, match=r"inputs: expected shape \(\*, \*, 3\)"):
        quant.quantize(model, torch.randn(4, 2, 5))
    with pytest.raises(ValueError, match="input_bits: expected 2..24, got 30"):
        quant.quantize(model, torch.randn(4, 2, 3), input_bits=30)


def test_inputs_beyond_the_calibrated_range_overflow():
    model = random_network("cmru", "input", 0)
    quantized = quant.quantize(model, torch.ones(4, 2, 3))
    with pytest.raises(ValueError, match=r"inputs: max \|x\| = 2 overflows the quantized input range \+-1.984"):
        quant.simulate(quantized.spec, 2 * torch.ones(4, 2, 3))


def test_bias_beyond_24_bits_overflows():
    model = random_network("cmru", "input", 0)
    with torch.no_grad():
        model.readout.weight.fill_(1e-6)
        model.readout.bias.fill_(100.0)
    with pytest.raises(ValueError, match="readout bias: needs .* beyond the 24-bit limit"):
        quant.quantize(model, torch.randn(4, 2, 3))


def test_float_spec_is_not_an_integer_model():
    model = random_network("cmru", "input", 0)
    with pytest.raises(TypeError, match="spec: expected an integer NetworkSpec"):
        quant.dequantize(quant.network_spec(model), model)


def test_quant_and_the_lava_adapter_import_without_lava():
    """Lava sets the multiprocessing start method on import and exists only on Python 3.10."""
    code = ("import sys, cmru_neuro.quant, cmru_neuro.adapters.lava, cmru_neuro.commands.deploy; "
            "print('lava' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- snnTorch and Norse pipelines ------------------------------------------------------------


def perturbed(net, seed):
    """``net`` with every parameter moved by 0.3 N(0, 1) (seeded), in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    return net.eval()


def snntorch_pipeline(case, seed=0):
    """``nn.Sequential`` of Linear, our snnTorch neurons and an ``snn.Leaky`` readout."""
    import snntorch as snn

    from cmru_neuro import snntorch as cs

    neurons = {
        "cmru-state": lambda: cs.CMRU(threshold_from_input=True, output_state=True, alpha=0.7, h0=0.2,
                                      init_hidden=True),
        "cmru-events": lambda: cs.CMRU(threshold=torch.linspace(0.2, 0.8, 5), size=5, init_hidden=True),
        "bmru-events": lambda: cs.BMRU(threshold=0.3, graded_spikes_factor=0.5, init_hidden=True),
        "bmru-state": lambda: cs.BMRU(threshold_from_input=True, output_state=True, alpha=0.5, h0=-0.5,
                                      init_hidden=True),
    }
    first, second, reset_mechanism = case
    streams = [2 if name in ("cmru-state", "bmru-state") else 1 for name in (first, second)]
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 5 * streams[0]), neurons[first](),
        torch.nn.Linear(5, 5 * streams[1]), neurons[second](),
        torch.nn.Linear(5, 2),
        snn.Leaky(beta=0.8, threshold=0.5, reset_mechanism=reset_mechanism, init_hidden=True, output=True),
    )
    return perturbed(net, seed)


def run_snntorch(net, inputs):
    """The readout's ``mem`` every step ``(T, B, O)``: snnTorch's own reset, then the step loop."""
    import snntorch.utils

    snntorch.utils.reset(net)
    with torch.no_grad():
        return torch.stack([net(x_t)[1] for x_t in inputs])


PIPELINES = [
    ("cmru-state", "bmru-events", "none"),
    ("cmru-events", "cmru-state", "subtract"),
    ("bmru-state", "cmru-events", "zero"),
    ("bmru-events", "bmru-state", "subtract"),
]


@pytest.mark.parametrize("case", PIPELINES)
def test_snntorch_pipeline_spec_computes_what_the_pipeline_computes(case):
    net = snntorch_pipeline(case)
    inputs = torch.randn(15, 4, 3, generator=torch.Generator().manual_seed(1))
    spec = quant.network_spec(net)
    assert [layer.unit.output for layer in spec.layers] == [
        "changes" if "state" in name else "events" for name in case[:2]]
    run = quant.simulate(spec, inputs)
    assert sum(run.messages) > 0
    np.testing.assert_allclose(run.outputs, run_snntorch(net, inputs).double().numpy(), atol=1e-5)


def norse_pipeline(readout, seed=0):
    """``SequentialState`` of Linear, our Norse cells and a Norse leaky-integrator cell."""
    import norse.torch as nt

    from cmru_neuro import norse as cn

    torch.manual_seed(seed)
    net = nt.SequentialState(
        torch.nn.Linear(3, 10), cn.CMRUCell(cn.CMRUParameters(threshold=None), output_state=True, h0=0.3),
        torch.nn.Linear(5, 6), cn.BMRUCell(cn.CMRUParameters(threshold=torch.full((6,), 0.4))),
        torch.nn.Linear(6, 2), readout(),
    )
    return perturbed(net, seed)


def run_norse(net, inputs):
    """Norse's own step loop: ``out, state = net(x_t, state)``."""
    state, outputs = None, []
    with torch.no_grad():
        for x_t in inputs:
            out, state = net(x_t, state)
            outputs.append(out)
    return torch.stack(outputs)


def test_norse_pipelines_spec_computes_what_the_pipeline_computes():
    import norse.torch as nt

    from cmru_neuro import norse as cn

    inputs = torch.randn(15, 4, 3, generator=torch.Generator().manual_seed(2))
    for readout in (nt.LICell, nt.LIBoxCell):
        net = norse_pipeline(readout)
        run = quant.simulate(quant.network_spec(net), inputs)
        np.testing.assert_allclose(run.outputs, run_norse(net, inputs).double().numpy(), atol=1e-5)
    # whole-sequence modules, as the README's Norse pipeline
    net = perturbed(nt.SequentialState(torch.nn.Linear(3, 8), cn.CMRU(cn.CMRUParameters(threshold=None),
                                                                       output_state=True),
                                       torch.nn.Linear(4, 2), nt.LI()), 3)
    with torch.no_grad():
        expected, _ = net(inputs)
    np.testing.assert_allclose(quant.simulate(quant.network_spec(net), inputs).outputs, expected.double().numpy(),
                               atol=1e-5)


def test_quantized_pipeline_uses_integer_decays_and_stays_close():
    net = snntorch_pipeline(PIPELINES[0])
    inputs = torch.randn(15, 8, 3, generator=torch.Generator().manual_seed(4))
    spec = quant.quantize(net, inputs).spec
    assert spec.readout.membrane_decay.tolist() == [round(0.8 * 4096)] * 2
    assert spec.readout.threshold.dtype == np.int64 and spec.readout.reset_mechanism == "none"
    integer = quant.logits(spec, quant.simulate(spec, inputs).outputs)
    float_outputs = run_snntorch(net, inputs)
    # 8-bit weights move a few gate decisions; most outputs stay within a tenth of the range
    close = (integer - float_outputs).abs() <= 0.1 * float_outputs.abs().max()
    assert close.float().mean() > 0.8


def test_integer_leaky_readout_truncates_toward_zero_as_lavas_lif():
    readout = quant.ReadoutSpec(np.zeros((2, 1), np.int64), np.zeros(2, np.int64),
                                membrane_decay=np.array([2048, 4096]))
    previous = np.array([[-7, 5]])
    step = quant.readout_step(readout, np.zeros((1, 2)), np.zeros((1, 2)), previous, np.array([[0, 3]]), False,
                              True, accumulate=False)
    assert step.output.tolist() == [[-3, 8]]  # -7 / 2 -> -3 (not -4); 5 * 1 + 3


@pytest.mark.parametrize("build,message", [
    (lambda cs, snn, nt, cn: [cs.CMRU(size=2, init_hidden=True)], r"net: expected an nn.Linear first, got net\[0\]"),
    (lambda cs, snn, nt, cn: [torch.nn.Linear(3, 4), cs.CMRU(init_hidden=True), cs.CMRU(init_hidden=True)],
     r"net: expected an nn.Linear after each neuron, got net\[2\] \(CMRU\)"),
    (lambda cs, snn, nt, cn: [torch.nn.Linear(3, 4), cs.AlphaCMRU(init_hidden=True), torch.nn.Linear(2, 2)],
     "alpha-CMRU has no integer form"),
    (lambda cs, snn, nt, cn: [torch.nn.Linear(3, 4), cs.BMRU(h0=0.3, init_hidden=True), torch.nn.Linear(4, 2)],
     r"a BMRU deploys with h0 in \{-alpha, 0, \+alpha\}"),
    (lambda cs, snn, nt, cn: [torch.nn.Linear(3, 4), cs.CMRU(init_hidden=True), torch.nn.Linear(5, 2)],
     r"net\[2\] \(Linear\): expected in_features 4 \(the neurons before it\), got 5"),
    (lambda cs, snn, nt, cn: [torch.nn.Linear(3, 4), cs.CMRU(size=3, init_hidden=True), torch.nn.Linear(3, 2)],
     r"net\[1\] \(CMRU\): expected the Linear before it to give 1 x 3 = 3 currents \(candidate\), got 4"),
    (lambda cs, snn, nt, cn: [torch.nn.Linear(3, 2), torch.nn.ReLU()],
     r"net\[1\] \(ReLU\): expected a readout snn.Leaky, Norse LI / LICell / LIBoxCell"),
    (lambda cs, snn, nt, cn: [torch.nn.Linear(3, 2), snn.Leaky(beta=0.5), torch.nn.Linear(2, 2)],
     r"net\[2\] \(Linear\): expected the chain to end after the readout net\[1\]"),
    (lambda cs, snn, nt, cn: [torch.nn.Linear(3, 2), nt.LIFBoxCell()], r"net\[1\] \(LIFBoxCell\): expected a readout"),
    (lambda cs, snn, nt, cn: [torch.nn.Linear(3, 2), snn.Leaky(beta=0.5)], "net: expected at least one memory neuron"),
    (lambda cs, snn, nt, cn: [torch.nn.Linear(3, 2), nt.LICell(dt=0.1)], r"expected dt \* tau_inv in \[0, 1\]"),
])
def test_pipelines_that_cannot_deploy_say_why(build, message):
    import norse.torch as nt
    import snntorch as snn

    from cmru_neuro import norse as cn
    from cmru_neuro import snntorch as cs

    with pytest.raises(ValueError, match=message):
        quant.network_spec(torch.nn.Sequential(*build(cs, snn, nt, cn)))
