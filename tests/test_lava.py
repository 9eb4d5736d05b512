"""The Lava adapter on Lava's CPU simulator (Python 3.10, lava-nc 0.10.0).

Every test has a hard timeout; run_on_lava stops the runtime in every case.
"""

import multiprocessing
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

pytest.importorskip("lava")

from cmru_neuro.adapters.lava import run_on_lava, to_lava

from cmru_neuro import quant
from cmru_neuro.network import MemoryNetwork

pytestmark = pytest.mark.lava


def random_network(unit, threshold, seed, sizes=(6, 5), readout="sequence"):
    """An untrained network with every parameter perturbed (alpha, h_0 included)."""
    torch.manual_seed(seed)
    options = {"threshold": threshold} if threshold else None
    model = MemoryNetwork(3, list(sizes), 2, unit=unit, readout=readout, unit_options=options)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return model.eval()


def inputs_for(seed, length=10, batch=3):
    return torch.randn(length, batch, 3, generator=torch.Generator().manual_seed(100 + seed))


def no_new_workers(before):
    return set(multiprocessing.active_children()) <= before


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind,threshold,seed,sizes", [
    ("cmru", "input", 0, (6, 5)),
    ("cmru", "input", 1, (4, 6, 5)),
    ("cmru", "fixed", 2, (6, 5)),
    ("bmru", "input", 3, (5, 4, 3)),
    ("bmru", "fixed", 4, (6,)),
    ("fq-bmru", None, 5, (6, 5)),
    ("fq-bmru", None, 6, (3, 4, 5)),
])
def test_fixed_point_equals_the_integer_model_bit_for_bit(kind, threshold, seed, sizes):
    model = random_network(kind, threshold, seed, sizes)
    inputs = inputs_for(seed)
    quantized = quant.quantize(model, inputs)
    run = run_on_lava(quantized.spec, inputs, timeout=45)
    assert run.outputs.dtype == np.int64
    assert np.array_equal(run.outputs, quant.simulate(quantized.spec, inputs).outputs)
    assert run.saturations == run.reference.saturations == {}
    # events differ only at the first step of each sequence (the reference starts from 0)
    for lava_events, reference_events, size in zip(run.messages, run.reference.messages, sizes):
        assert abs(lava_events - reference_events) <= 3 * size


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind,threshold,readout", [
    ("cmru", "input", "last"), ("bmru", "fixed", "mean"), ("fq-bmru", None, "sequence"),
])
def test_floating_point_matches_the_torch_model(kind, threshold, readout):
    model = random_network(kind, threshold, 7, readout=readout)
    inputs = inputs_for(7)
    run = run_on_lava(model, inputs, timeout=45)
    with torch.no_grad():
        torch.testing.assert_close(run.logits, model(inputs), atol=1e-4, rtol=1e-4)


@pytest.mark.timeout(60)
def test_one_sequence_sends_exactly_the_reference_events():
    model = random_network("cmru", "input", 8)
    inputs = inputs_for(8, length=25, batch=1)
    run = run_on_lava(quant.quantize(model, inputs).spec, inputs, timeout=45)
    assert run.messages == run.reference.messages
    assert run.steps == 25 + 3  # two unit layers: three Dense delays


COPY_FIRST = dict(length=20, noise=0.2, train_size=1000, test_size=500)


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    """A CMRU stack trained on copy-first-input by cmru_neuro.training, saved as a checkpoint."""
    from cmru_neuro.training import train

    out = tmp_path_factory.mktemp("copy-first")
    config = dict(task="copy-first", task_options=COPY_FIRST, cell="cmru", arch="stack", hidden=8, steps=200,
                  lr=0.02, dropout=0.0, eval_every=100, progress=False, out_dir=str(out))
    return train(config).checkpoint


@pytest.mark.timeout(100)
def test_trained_copy_first_on_lava_is_bit_exact_and_keeps_its_accuracy(trained_checkpoint):
    from cmru_neuro.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(trained_checkpoint)
    task = checkpoint.make_task()
    calibration, _ = task.batch(task.train, torch.arange(256))
    inputs, targets = task.batch(task.test, torch.arange(64))
    quantized = quant.quantize(checkpoint.model, calibration)
    run = run_on_lava(quantized.spec, inputs, timeout=80)
    assert np.array_equal(run.outputs, run.reference.outputs)
    with torch.no_grad():
        float_hits, decisions = task.correct(checkpoint.model(inputs), targets)
    lava_hits, _ = task.correct(run.logits, targets)
    assert float_hits >= 0.95 * decisions
    assert lava_hits >= float_hits - 0.01 * decisions


@pytest.mark.timeout(100)
@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux's script for a terminal")
def test_deploy_shows_its_progress_on_a_terminal_and_stays_quiet_in_a_log(trained_checkpoint, tmp_path):
    command = f"{sys.executable} -m cmru_neuro.cli deploy {trained_checkpoint} --sequences 8"
    typescript = tmp_path / "terminal.txt"
    subprocess.run(["script", "-qc", command, str(typescript)], check=True, timeout=100,
                   stdout=subprocess.DEVNULL)
    assert "on Lava (fixed point)" in typescript.read_text(errors="replace")
    logged = subprocess.run(command.split(), capture_output=True, text=True, timeout=100)
    assert logged.returncode == 0 and "on Lava (fixed point)" not in logged.stdout + logged.stderr


def test_deploy_command_reports_parity_accuracy_and_events(trained_checkpoint, capsys):
    from cmru_neuro import cli

    assert cli.main(["deploy", str(trained_checkpoint), "--sequences", "8", "--float"]) == 0
    out = capsys.readouterr().out
    assert "parity: Lava fixed point vs integer model: bit-exact (0 of 640 outputs differ)" in out
    assert "accuracy on 8 test sequences: float" in out and "messages sent:" in out
    assert "Lava floating point vs torch: largest output difference" in out


def test_deploy_command_rejects_what_it_cannot_run(tmp_path, capsys):
    from cmru_neuro import cli
    from cmru_neuro.checkpoint import save_checkpoint
    from cmru_neuro.models import ModelConfig, build_model

    assert cli.main(["deploy", str(tmp_path / "missing.safetensors")]) == 2
    assert "deploy: error: checkpoint: no file at" in capsys.readouterr().err
    config = ModelConfig(input_size=4, output_size=4, arch="block").to_dict()
    path = save_checkpoint(tmp_path / "block.safetensors", build_model(config), {"model": config})
    assert cli.main(["deploy", str(path)]) == 2
    assert "holds a model with arch='block'" in capsys.readouterr().err
    assert cli.main(["deploy", str(path), "--sequences", "0"]) == 2
    assert "--sequences: expected a positive integer, got 0" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_saturation_on_lava_is_counted_like_the_reference():
    model = MemoryNetwork(1, [1], 1, unit="cmru", unit_options={"learn_initial_state": False})
    with torch.no_grad():
        model.units[0].projection.weight.zero_()
        model.units[0].projection.bias.copy_(torch.tensor([5.0, 0.0]))  # an event every step
        model.readout.weight.fill_(1.0)
        model.readout.bias.fill_((quant.STATE_LIMIT - 200) * 2.0**-7)
    inputs = torch.ones(6, 2, 1)
    with pytest.warns(UserWarning, match="saturate"):
        spec = quant.quantize(model, inputs).spec
    run = run_on_lava(spec, inputs, timeout=45)
    assert run.saturations == run.reference.saturations == {"readout output": 10}
    assert np.array_equal(run.outputs, run.reference.outputs)


def test_to_lava_builds_the_graph_without_running():
    spec = quant.quantize(random_network("bmru", "input", 9, sizes=(4, 3)), inputs_for(9)).spec
    graph = to_lava(spec, sequence_length=10)
    assert graph.select_tag == "fixed_pt" and graph.latency == 3
    assert [type(unit).__name__ for unit in graph.units] == ["BMRU", "BMRU"]
    assert graph.input_port.shape == (3,) and graph.output_port.shape == (2,)
    assert to_lava(random_network("cmru", "input", 9), sequence_length=4).select_tag == "floating_pt"


# --- bad data fails before run() -------------------------------------------------------------


def overflowing_spec(features=300):
    """Integer CMRU whose accumulator would reach 300 * 254 * 127 > 2**23."""
    hidden = np.zeros(1, np.int64)
    unit = quant.UnitSpec("cmru", np.zeros(2, np.int64), hidden, hidden, hidden)
    layer = quant.LayerSpec(np.full((2, features), 254, np.int64), unit)
    readout = quant.ReadoutSpec(np.full((1, 1), 2, np.int64), np.zeros(1, np.int64))
    return quant.NetworkSpec((layer,), readout, "sequence", True, features, 0, 8)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case,message", [
    ("features", r"inputs: expected shape \(\*, \*, 3\) \(time, batch, features\), got \(10, 3, 4\)"),
    ("range", r"inputs: max \|x\| = .* overflows the quantized input range"),
    ("accumulator", "accumulators would overflow 24 bits"),
    ("payload", "overflow the 24-bit payload"),
    ("odd weights", r"layer 0 weights: expected even integers in \[-256, 254\]"),
    ("shapes", r"layer 1: expected weights \(10, 6\) and bias \(10,\)"),
    ("alpha-CMRU", "unit 'acmru' has no integer form"),
    ("not a network", "network: expected a MemoryNetwork, an snnTorch / Norse pipeline"),
])
def test_bad_data_fails_before_run(case, message):
    model = random_network("cmru", "input", 10)
    inputs = inputs_for(10)
    spec = quant.quantize(model, inputs).spec
    network = spec
    if case == "features":
        inputs = torch.randn(10, 3, 4)
    elif case == "range":
        inputs = 10 * inputs
    elif case == "accumulator":
        network, inputs = overflowing_spec(), torch.full((4, 1, 300), 127.0)
    elif case == "payload":
        unit = spec.layers[1].unit
        big = replace(unit, initial_level=np.full(unit.hidden_size, 5_000_000, np.int64))
        silent = replace(spec.readout, weights=np.zeros_like(spec.readout.weights))
        network = replace(spec, layers=(spec.layers[0], replace(spec.layers[1], unit=big)), readout=silent)
    elif case == "odd weights":
        network = replace(spec, layers=(replace(spec.layers[0], weights=spec.layers[0].weights + 1),
                                              spec.layers[1]))
    elif case == "shapes":
        network = replace(spec, layers=(spec.layers[0], replace(spec.layers[1], weights=spec.layers[1].weights[:, :-1])))
    elif case == "alpha-CMRU":
        network = MemoryNetwork(3, [4], 2, unit="acmru")
    elif case == "not a network":
        network = torch.nn.Linear(3, 2)
    before = set(multiprocessing.active_children())
    with pytest.raises((ValueError, TypeError), match=message):
        run_on_lava(network, inputs, timeout=20)
    assert no_new_workers(before)


def test_process_rejects_parameters_of_the_wrong_shape():
    from cmru_neuro.adapters.lava.processes import CMRU, FirstQuadrantBMRU

    with pytest.raises(ValueError, match=r"CMRU bias: expected shape \(8,\), got \(6,\)"):
        CMRU(shape=(4,), streams=2, bias=np.zeros(6), sequence_length=5)
    with pytest.raises(ValueError, match="FirstQuadrantBMRU streams: expected 1, got 2"):
        FirstQuadrantBMRU(shape=(4,), streams=2, bias=np.zeros(8), sequence_length=5)
    with pytest.raises(ValueError, match="CMRU sequence_length: expected a positive integer, got 0"):
        CMRU(shape=(4,), streams=1, bias=np.zeros(4), sequence_length=0)


@pytest.mark.timeout(60)
def test_a_run_past_its_timeout_is_stopped_and_leaves_no_workers():
    model = random_network("cmru", "input", 11)
    before = set(multiprocessing.active_children())
    with pytest.raises(TimeoutError, match="did not finish within 0.5 s; its worker processes were ended"):
        run_on_lava(model, torch.randn(500, 20, 3), timeout=0.5)
    assert no_new_workers(before)


# --- snnTorch and Norse pipelines, as users build them ------------------------------------------


def snntorch_pipeline(seed, reset_mechanism="subtract"):
    """Linear -> CMRU (state out, threshold from input) -> Linear -> BMRU (spikes) -> Linear -> snn.Leaky."""
    import snntorch as snn

    from cmru_neuro import snntorch as cs

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 12), cs.CMRU(threshold_from_input=True, output_state=True, alpha=0.7, h0=0.2,
                                        init_hidden=True),
        torch.nn.Linear(6, 5), cs.BMRU(threshold=0.3, init_hidden=True),
        torch.nn.Linear(5, 2), snn.Leaky(beta=0.8, threshold=0.5, reset_mechanism=reset_mechanism,
                                         init_hidden=True, output=True),
    )
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return net.eval()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("seed,reset_mechanism", [(0, "subtract"), (1, "none"), (2, "zero")])
def test_snntorch_pipeline_on_lava_fixed_point_is_bit_exact(seed, reset_mechanism):
    net = snntorch_pipeline(seed, reset_mechanism)
    inputs = inputs_for(seed, length=12, batch=3)
    spec = quant.quantize(net, inputs).spec
    run = run_on_lava(spec, inputs, timeout=60)
    assert np.array_equal(run.outputs, run.reference.outputs)
    assert run.saturations == run.reference.saturations == {}
    assert all(run.messages) and np.any(run.outputs)


@pytest.mark.timeout(90)
def test_norse_pipelines_on_lava_fixed_point_are_bit_exact():
    import norse.torch as nt

    from cmru_neuro import norse as cn

    torch.manual_seed(3)
    cells = nt.SequentialState(  # per-step cells, Norse's current-based leaky integrator
        torch.nn.Linear(3, 8), cn.CMRUCell(cn.CMRUParameters(threshold=torch.full((8,), 0.5))),
        torch.nn.Linear(8, 2), nt.LICell())
    sequence = nt.SequentialState(  # whole-sequence modules, as the README's Norse pipeline
        torch.nn.Linear(3, 8), cn.CMRU(cn.CMRUParameters(threshold=None), output_state=True),
        torch.nn.Linear(4, 2), nt.LI())
    inputs = inputs_for(3, length=12, batch=2)
    for net in (cells, sequence):
        spec = quant.quantize(net, inputs).spec
        run = run_on_lava(spec, inputs, timeout=40)
        assert np.array_equal(run.outputs, run.reference.outputs)
        assert spec.readout.synapse_decay.tolist() == [round((1 - 0.001 * 200) * 4096)] * 2


@pytest.mark.timeout(60)
def test_lava_floating_point_runs_the_pipeline_the_torch_way():
    """Lava's floating_pt equals the float spec, which equals the snnTorch step loop (test_quant)."""
    import snntorch.utils

    net = snntorch_pipeline(4)
    inputs = inputs_for(4, length=12, batch=2)
    run = run_on_lava(net, inputs, timeout=45)
    snntorch.utils.reset(net)
    with torch.no_grad():
        expected = torch.stack([net(x_t)[1] for x_t in inputs]).double().numpy()
    np.testing.assert_allclose(run.outputs, expected, atol=1e-4)


@pytest.mark.timeout(120)
def test_trained_snntorch_pipeline_keeps_its_accuracy_on_lava(fit_copy_first):
    """The README's snnTorch pipeline trained with BPTT on copy-first, deployed bit-exact."""
    import snntorch as snn
    import snntorch.utils

    from cmru_neuro import snntorch as cs
    from cmru_neuro.tasks import copy_first

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 16), cs.CMRU(threshold=1.0, size=16, init_hidden=True, output_state=True),
        torch.nn.Linear(16, 2), snn.Leaky(beta=0.9, init_hidden=True, output=True),
    )

    def last_membrane(x):
        snntorch.utils.reset(net)
        return [net(x_t)[1] for x_t in x][-1]

    accuracy = fit_copy_first(net.parameters(), last_membrane, length=20, batch=64, iterations=40)
    assert accuracy >= 0.95
    task = copy_first(length=20, classes=2, noise=0.15, train_size=64 * 40, test_size=512)
    calibration, _ = task.batch(task.train, torch.arange(256))
    inputs, labels = task.batch(task.test, torch.arange(64))
    inputs, calibration = 2 * inputs, 2 * calibration
    run = run_on_lava(quant.quantize(net.eval(), calibration).spec, inputs, timeout=90)
    assert np.array_equal(run.outputs, run.reference.outputs)
    with torch.no_grad():
        float_hits = int((last_membrane(inputs).argmax(-1) == labels).sum())
    lava_hits = int((torch.as_tensor(run.outputs[-1]).argmax(-1) == labels).sum())
    assert lava_hits >= float_hits - 1


# --- Lava's own processes next to ours -----------------------------------------------------------


@pytest.mark.timeout(30)
def test_a_binary_dense_after_our_units_is_refused():
    from cmru_neuro.adapters.lava import check_graph
    from lava.proc.dense.process import Dense

    graph = to_lava(quant.quantize(random_network("cmru", "input", 12), inputs_for(12)).spec, sequence_length=10)
    with pytest.raises(ValueError, match=r"cmru1.s_out -> binary: expected num_message_bits > 0 .* a binary "
                                         r"Dense turns -1 messages into \+1"):
        graph.units[-1].s_out.connect(Dense(weights=np.ones((2, 5)), name="binary").s_in)
    backwards = Dense(weights=np.ones((2, 6)), name="backwards")
    backwards.s_in.connect_from(graph.units[0].s_out)  # Lava's other way in: checked before run()
    with pytest.raises(ValueError, match="cmru0.s_out -> backwards: expected num_message_bits > 0"):
        check_graph(graph.readout)
    fresh = to_lava(graph.spec, sequence_length=10)  # the refused connect above left nothing behind
    graded = Dense(weights=np.ones((2, 5)), num_message_bits=24)
    fresh.units[-1].s_out.connect(graded.s_in)
    check_graph(graded)
    assert graph.units[-1].s_out.out_connections == [graph.denses[-1].s_in]


@pytest.mark.timeout(40)
def test_lavas_binary_dense_reads_minus_one_as_plus_one():
    """Why the check exists: Lava's Dense with num_message_bits=0 sums the weights of the non-zero inputs."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    events = np.array([[-1.0, 0.0, 1.0, 0.0]])  # one channel, four steps
    received = {}
    for bits in (0, 24):
        source, sink = Source(data=events), Sink(shape=(1,), buffer=4)
        dense = Dense(weights=np.array([[2.0]]), num_message_bits=bits)
        source.s_out.connect(dense.s_in)
        dense.a_out.connect(sink.a_in)
        try:
            sink.run(condition=RunSteps(num_steps=4), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
            received[bits] = sink.data.get()[0, 1:].tolist()  # Dense delays by one step
        finally:
            sink.stop()
    assert received == {0: [2.0, 0.0, 2.0], 24: [-2.0, 0.0, 2.0]}


@pytest.mark.timeout(40)
def test_lavas_monitor_records_graded_events_and_levels():
    """Lava's Monitor on a unit's s_out keeps the sign of events; they add up to the probed level."""
    from cmru_neuro.adapters.lava import source_data
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.monitor.process import Monitor

    inputs = inputs_for(13, length=12, batch=1)
    spec = quant.quantize(random_network("cmru", "input", 13, sizes=(6,)), inputs).spec
    graph = to_lava(spec, sequence_length=12, sequences=1)
    steps = 12 + graph.latency
    source, sink = Source(data=source_data(spec, inputs, graph.latency)), Sink(shape=(2,), buffer=steps)
    source.s_out.connect(graph.input_port)
    graph.output_port.connect(sink.a_in)
    events, levels = Monitor(), Monitor()
    events.probe(graph.units[0].s_out, steps)
    levels.probe(graph.units[0].level, steps)
    try:
        sink.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        sent = events.get_data()[graph.units[0].name]["s_out"]
        level = levels.get_data()[graph.units[0].name]["level"]
    finally:
        sink.stop()
    assert -1 in sent and 1 in sent
    assert np.array_equal(np.cumsum(sent, axis=0), level)
