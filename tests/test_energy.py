"""Energy per inference: cross-checks (KerasSpiking, NeuroBench), the event-driven model's
invariants, counts per layer type, reports and errors."""

import json
import re

import pytest
import snntorch as snn
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from cmru_neuro import BMRU, CMRU
from cmru_neuro.baselines import LRU, MinGRU
from cmru_neuro.energy import (
    EnergyParts,
    UnsupportedLayerError,
    available_profiles,
    count_operations,
    estimate_energy,
    estimate_energy_many,
    get_profile,
    plot_reports,
    summary_table,
)
from cmru_neuro.energy.report import energy_figure
from cmru_neuro.energy.units import si
from cmru_neuro.network import MemoryNetwork

EVENT_DRIVEN = ["loihi", "loihi2", "spinnaker", "spinnaker2", "truenorth", "xylo-audio2"]


# -- cross-checks -------------------------------------------------------------------------------


def test_kerasspiking_dense_784_128_on_cpu():
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU())
    report = estimate_energy(model, torch.rand(4, 784) + 0.1, "cpu")
    assert report.total == pytest.approx(784 * 128 * 8.6e-9 + 128 * 8.6e-9, rel=1e-12)
    assert report.energy.compute == report.total
    assert report.counts.time_steps == 1


class SpikingNet(nn.Module):
    """snnTorch net in NeuroBench's layout: ``(B, T, F)`` in, spikes ``(T, B, O)`` out."""

    def __init__(self):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(20, 32), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(32, 16), snn.Synaptic(alpha=0.8, beta=0.9)
        self.fc3, self.lif3 = nn.Linear(16, 4), snn.RLeaky(beta=0.9, linear_features=4)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        syn2, mem2 = self.lif2.init_synaptic()
        spk3, mem3 = self.lif3.init_rleaky()
        out = []
        for t in range(x.shape[1]):
            spk1, mem1 = self.lif1(self.fc1(x[:, t]), mem1)
            spk2, syn2, mem2 = self.lif2(self.fc2(spk1), syn2, mem2)
            spk3, mem3 = self.lif3(self.fc3(spk2), spk3, mem3)
            out.append(spk3)
        return torch.stack(out)


def test_neurobench_synaptic_operations_agree_on_an_snntorch_model():
    from neurobench.metrics.workload import SynapticOperations
    from neurobench.models import SNNTorchModel

    net = SpikingNet()
    with torch.no_grad():
        net.fc1.weight[:, :5] = 0  # zero weights are skipped
    data = (torch.rand(6, 25, 20) * 3).round() / 3  # graded input: MACs
    data[:, :, 10:] = 0  # zero inputs are skipped
    wrapped = SNNTorchModel(net, custom_forward=True)
    wrapped.register_hooks()
    try:
        preds = wrapped(data)
        expected = SynapticOperations()(wrapped, preds, (data, torch.zeros(6)))
    finally:
        wrapped.cleanup_hooks()
    counts = count_operations(net, data)
    assert expected["Effective_ACs"] > 0 and expected["Effective_MACs"] > 0
    assert counts.total("effective_macs") == pytest.approx(expected["Effective_MACs"], rel=1e-12)
    assert counts.total("effective_acs") == pytest.approx(expected["Effective_ACs"], rel=1e-12)
    assert counts.total("dense_ops") == pytest.approx(expected["Dense"], rel=1e-12)


class MemoryNeuronNet(nn.Module):
    """NeuroBench's layout ``(B, T, F)``: Linear, our snnTorch CMRU neuron, Linear, Leaky."""

    def __init__(self, threshold: float):
        super().__init__()
        from cmru_neuro import snntorch as cs

        self.fc1, self.cmru = nn.Linear(3, 8), cs.CMRU(threshold=threshold)
        self.fc2, self.lif = nn.Linear(8, 2), snn.Leaky(beta=0.9)

    def forward(self, x):
        h, mem, out = None, self.lif.init_leaky(), []
        for t in range(x.shape[1]):
            events, h = self.cmru(self.fc1(x[:, t]), h)
            spikes, mem = self.lif(self.fc2(events), mem)
            out.append(spikes)
        return torch.stack(out)


@pytest.mark.parametrize("threshold, zeros", [(0.5, False), (0.2, True)])
def test_membrane_updates_equal_neurobench_membrane_updates(threshold, zeros):
    from neurobench.metrics.workload import MembraneUpdates
    from neurobench.models import SNNTorchModel

    torch.manual_seed(0)
    net = MemoryNeuronNet(threshold)
    data = torch.randn(4, 40, 3)
    if zeros:  # a silent stretch: the Leaky membrane decays, the CMRU holds
        data[:, 10:30] = 0
    wrapped = SNNTorchModel(net, custom_forward=True)
    wrapped.register_hooks()
    try:
        metric = MembraneUpdates()
        expected = metric(wrapped, wrapped(data), (data, torch.zeros(4)))
    finally:
        wrapped.cleanup_hooks()
    counts = count_operations(net, data)
    assert counts.total("membrane_updates") == pytest.approx(expected, rel=1e-12)
    cmru = next(layer for layer in counts.layers if layer.kind == "CMRU")
    assert cmru.membrane_updates == pytest.approx(metric.neuron_membrane_updates["CMRU"] / 4)
    # by definition NeuroBench counts state changes (and every unit once), we every step
    assert cmru.membrane_updates == pytest.approx(8 + sum(cmru.changes_per_step[1:]))
    assert cmru.membrane_updates < cmru.neuron_updates


def test_membrane_updates_of_memory_units_are_first_step_and_state_changes():
    net = MemoryNetwork(6, (8,), 3, unit="cmru")
    layer = count_operations(net, torch.randn(30, 4, 6)).layers[0]
    assert layer.membrane_updates == pytest.approx(8 + sum(layer.changes_per_step[1:]))
    assert "membrane upd" in estimate_energy(net, torch.randn(30, 4, 6), "cpu").table()


@given(
    sparsity=st.floats(0.0, 0.9),
    ternary=st.booleans(),
    conv=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_single_layers_match_neurobench_rules(sparsity, ternary, conv, seed):
    from neurobench.metrics.utils.layers import single_layer_MACs

    generator = torch.Generator().manual_seed(seed)
    layer = nn.Conv1d(3, 5, 3, padding=1, stride=2) if conv else nn.Linear(7, 5)
    with torch.no_grad():
        layer.weight.mul_(torch.rand(layer.weight.shape, generator=generator) > sparsity)
    shape = (4, 3, 9) if conv else (4, 7)
    x = torch.randint(-1, 2, shape, generator=generator).float()
    if not ternary:
        x = x * torch.rand(shape, generator=generator)
    counts = count_operations(nn.Sequential(layer), x).layers[0]
    effective, spiking = single_layer_MACs(x, layer)
    dense, _ = single_layer_MACs(x, layer, total=True)
    assert counts.dense_ops * 4 == pytest.approx(dense)
    mine = counts.effective_acs if spiking else counts.effective_macs
    assert mine * 4 == pytest.approx(effective)


# -- the event-driven model ---------------------------------------------------------------------


def _pulse_network(readout="sequence") -> MemoryNetwork:
    """1 input -> 4 CMRUs (candidate = x, threshold 0.5) -> 3 outputs: a pulse of 1 moves
    every unit one level up; an input below 0.5 holds the state."""
    net = MemoryNetwork(
        1,
        (4,),
        3,
        readout=readout,
        unit_options={"threshold": "fixed", "threshold_bias": 0.5, "learn_initial_state": False},
    )
    with torch.no_grad():
        net.units[0].projection.weight.fill_(1.0)
        net.units[0].projection.bias.zero_()
    return net


def _pulses(count: int, length: int = 40, rest: float = 0.0) -> torch.Tensor:
    x = torch.full((length, 2, 1), rest)
    x[torch.arange(count) * 4 + 2] = 1.0
    return x


@pytest.mark.parametrize("profile", EVENT_DRIVEN)
def test_event_driven_energy_is_linear_in_state_changes(profile):
    net = _pulse_network()
    reports = [estimate_energy(net, _pulses(k), profile) for k in range(6)]
    changes = [r.counts.layers[0].state_changes for r in reports]
    assert changes == [4.0 * k for k in range(6)]
    dynamic = [r.energy.dynamic for r in reports]
    slope = dynamic[1] - dynamic[0]
    assert slope > 0
    for k, energy in enumerate(dynamic):
        assert energy == pytest.approx(dynamic[0] + k * slope, rel=1e-9)
    statics = {r.energy.static for r in reports}
    assert len(statics) == 1


def test_clocked_energy_ignores_events():
    net = _pulse_network()  # on cpu an AC costs a MAC, so only the op counts matter
    quiet, busy = (estimate_energy(net, _pulses(k), "cpu") for k in (0, 5))
    assert busy.counts.layers[0].state_changes > quiet.counts.layers[0].state_changes
    assert busy.total == pytest.approx(quiet.total, rel=1e-12)


@pytest.mark.parametrize("profile", EVENT_DRIVEN)
def test_a_settled_cmru_on_constant_input_costs_only_static_energy(profile):
    net = _pulse_network()

    def run(length):
        x = _pulses(2, length, rest=0.2)  # two pulses, then 0.2 (inside the band) forever
        return estimate_energy(net, x, profile)

    short, long = run(20), run(80)
    unit = long.counts.layers[0]
    assert unit.changes_per_step[12:] == [0.0] * 68
    assert long.energy.dynamic == short.energy.dynamic  # exactly: no float cancellation
    extra_static = get_profile(profile).value("static_power") * 60 * long.step_duration
    assert long.energy.static - short.energy.static == pytest.approx(
        extra_static, rel=1e-9, abs=1e-30
    )
    clocked = [estimate_energy(net, _pulses(2, n, rest=0.2), "cpu").total for n in (20, 80)]
    assert clocked[1] > 3 * clocked[0]


def test_a_quiet_unit_sends_nothing_to_the_readout():
    net = _pulse_network()
    counts = count_operations(net, _pulses(0)).layers
    unit, readout = counts
    assert unit.messages_out == 0 and readout.message_macs + readout.message_acs == 0
    assert readout.dense_ops == 40 * 4 * 3


# -- counts per layer type ----------------------------------------------------------------------


def test_memory_network_counts_match_its_traces():
    net = MemoryNetwork(6, (8, 5), 3, unit="cmru")
    x = torch.randn(30, 4, 6)
    counts = count_operations(net, x)
    _, traces = net(x, return_traces=True)
    for layer, trace, (fan_in, width) in zip(counts.layers, traces, [(6, 8), (8, 5)]):
        assert layer.state_changes == pytest.approx(float(trace.events.detach().abs().sum()) / 4)
        assert layer.gate_openings == pytest.approx(float(trace.gates.detach().sum()) / 4)
        assert sum(layer.changes_per_step) == pytest.approx(layer.state_changes)
        assert len(layer.changes_per_step) == 30
        assert layer.dense_ops == 30 * fan_in * 2 * width
        assert layer.neuron_updates == 30 * width
        assert layer.message_macs + layer.message_acs <= layer.dense_ops
        assert layer.active_updates <= layer.neuron_updates
    assert counts.layers[-1].dense_ops == 5 * 3  # readout "last": one step
    assert counts.time_steps == 30 and counts.samples == 4


def test_a_bmru_reasserting_its_state_opens_its_gate_without_a_change():
    unit = BMRU(1, 3, threshold="fixed", threshold_bias=0.5)
    with torch.no_grad():
        unit.projection.weight.fill_(1.0)
        unit.projection.bias.zero_()
        unit.initial_level.fill_(-1.0)  # start at -alpha; the input pushes to +alpha
    counts = count_operations(unit, torch.ones(10, 1, 1)).layers[0]
    assert counts.gate_openings == 30
    assert counts.state_changes == 3 and counts.changes_per_step == [3.0] + [0.0] * 9


def test_layouts_give_the_same_counts():
    unit = CMRU(3, 4)
    x = torch.randn(12, 1, 3)
    reference = count_operations(unit, x).layers[0]
    unit.batch_first = True
    batch_first = count_operations(unit, x.transpose(0, 1)).layers[0]
    unit.batch_first = False
    unbatched = count_operations(unit, x[:, 0]).layers[0]
    for other in (batch_first, unbatched):
        assert other.to_dict() == reference.to_dict()


def test_baselines_and_norse_counts():
    import norse.torch as norse

    T, B, F, H = 10, 2, 3, 4
    x = torch.randn(T, B, F)
    lru = count_operations(LRU(F, H), x).layers[0]
    assert lru.dense_ops == T * (3 * H * F + 2 * H * H)
    assert lru.neuron_updates == lru.active_updates == T * H
    gru = count_operations(MinGRU(F, H), x).layers[0]
    assert gru.dense_ops == T * F * 2 * H
    lif = norse.LIF()
    current = torch.rand(T, B, H) * 3
    spikes, _ = lif(current)
    counts = count_operations(lif, current).layers[0]
    assert counts.neuron_updates == T * H and counts.state_variables == 2
    assert counts.messages_out == pytest.approx(float(spikes.detach().sum()) / B)


def test_the_papers_block_models_are_counted():
    models = pytest.importorskip("cmru_neuro.models")
    for arch in ("reference", "block"):
        for cell in ("cmru", "lru", "mingru", "snn"):
            config = {"input_size": 3, "output_size": 2, "cell": cell, "hidden": 8, "arch": arch}
            counts = count_operations(models.build_model(config), torch.randn(6, 2, 3))
            assert counts.time_steps == 6
            assert all(layer.steps in (1, 6) for layer in counts.layers), (arch, cell)
            assert counts.total("dense_ops") > 0
    layers = {layer.kind: layer for layer in counts.layers if layer.kind != "Linear"}
    assert layers["ResidualBlock"].dense_ops == 6 * 8  # its scale, every channel every step
    config["arch"] = "reference"
    counts = count_operations(models.build_model(config), torch.randn(6, 2, 3))
    layers = {layer.kind: layer for layer in counts.layers}
    assert layers["ReferenceLayer"].dense_ops == 3 * 6 * 8  # two skip scales and the gate
    assert layers["ReferenceLayer"].neuron_updates == 6 * 8  # the gate's sigmoid
    assert layers["LearnedPositions"].dense_ops == 0 and layers["LearnedPositions"].notes


# -- errors -------------------------------------------------------------------------------------


class OwnWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(4))
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        return self.linear(x) * self.gain


def test_unsupported_layers_raise_naming_them_or_warn_in_lenient_mode():
    model = nn.Sequential(nn.Linear(4, 4), nn.GRU(4, 4))
    with pytest.raises(
        UnsupportedLayerError,
        match=r"layer '1' \(GRU\) has no energy counting rule.*supported: .*MemoryUnit.*Leaky",
    ):
        estimate_energy(model, torch.randn(3, 4))
    with pytest.raises(UnsupportedLayerError, match=r"'OwnWeights'.*holds its own parameters"):
        count_operations(OwnWeights(), torch.randn(3, 4))
    with pytest.warns(UserWarning, match="OwnWeights"):
        counts = count_operations(OwnWeights(), torch.randn(3, 4), strict=False)
    assert any("NOT COUNTED" in line for line in counts.left_out)
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module"):
        count_operations("model", torch.randn(3))
    with pytest.raises(ValueError, match="step_duration: expected a positive"):
        estimate_energy(nn.Linear(2, 2), torch.randn(1, 2), step_duration=0)


@pytest.mark.parametrize("shape", [(0, 2, 3), (0, 3)])
def test_empty_sequences_are_a_clear_error(shape):
    net = MemoryNetwork(3, (8,), 2)
    with pytest.raises(ValueError, match=r"example_input: an inference needs at least one time "
                       r"step, got T = 0 \(shape \(0, "):
        estimate_energy(net, torch.zeros(shape), "loihi")
    with pytest.raises(ValueError, match=r"example_input: expected a tensor with at least one "
                       r"value, got shape \(4, 0, 20\)"):
        count_operations(SpikingNet(), torch.zeros(4, 0, 20))  # (B, T = 0, F), step-wise
    with pytest.raises(ValueError, match="time_steps: expected a positive number of steps, got 0"):
        count_operations(net, torch.zeros(5, 2, 3), time_steps=0)


# -- reports ------------------------------------------------------------------------------------


@given(st.lists(st.floats(0, 1e-3, allow_subnormal=True), min_size=4, max_size=4))
def test_dynamic_energy_is_the_sum_of_its_parts_never_negative(parts):
    energy = EnergyParts(*parts)
    assert energy.dynamic == parts[0] + parts[1] + parts[2] >= 0
    assert energy.total == energy.dynamic + energy.static
    assert energy.to_dict()["dynamic"] == energy.dynamic


def test_the_report_says_how_much_is_static_power_over_what_duration():
    net = MemoryNetwork(3, (8,), 2)
    x = torch.randn(20, 2, 3)
    loihi, cpu = estimate_energy_many(net, x, ["loihi", "cpu"])
    table = loihi.table()
    assert f"= dynamic {si(loihi.energy.dynamic, 'J')} + static" in table
    assert "duration 20 ms = 20 steps x 1 ms per step (assumed)" in table
    assert re.search(r"static energy \(power drawn whatever the work, x duration\) is >?99\.9\d*% "
                     "of the total", table)
    assert loihi.static_share > 0.99 and cpu.static_share == 0
    given = estimate_energy(net, x, "loihi", step_duration=1e-5)
    assert "20 steps x 10 us per step (given)" in given.table()
    summary = summary_table([loihi, cpu])
    assert re.search(r"mostly static power: loihi \(>?99\.9\d*%\)", summary)
    assert "cpu (" not in summary


@pytest.mark.parametrize("count", [1, 2, 3, 13])
def test_the_chart_legend_covers_no_axis_label(count):
    net = MemoryNetwork(3, (8,), 2)
    names = ["cpu", "loihi", "analog-bistable-180nm"] + sorted(
        set(available_profiles()) - {"cpu", "loihi", "analog-bistable-180nm"}
    )
    figure = energy_figure(estimate_energy_many(net, torch.randn(10, 2, 3), names[:count]))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legends = [legend.get_window_extent(renderer) for legend in figure.legends]
    legends += [
        axis.get_legend().get_window_extent(renderer) for axis in figure.axes if axis.get_legend()
    ]
    assert legends
    page = figure.bbox
    for axis in figure.axes:
        texts = [axis.xaxis.label, *axis.get_xticklabels(), *axis.get_yticklabels()]
        boxes = [t.get_window_extent(renderer) for t in texts if t.get_text()]
        boxes.append(axis.get_window_extent(renderer))
        for legend in legends:
            assert not any(legend.overlaps(box) for box in boxes)
    for legend in legends:
        assert page.x0 <= legend.x0 and legend.x1 <= page.x1 and page.y0 <= legend.y0




def test_reports_split_flag_and_render(tmp_path):
    net = MemoryNetwork(4, (8,), 3, readout="mean")
    x = torch.randn(25, 3, 4)
    reports = estimate_energy_many(
        net, x, ["cpu", "loihi2", "analog-bistable-180nm", "asic-45nm-fp32"]
    )
    for report in reports:
        parts = report.energy
        assert parts.total == pytest.approx(
            sum(layer.energy.total for layer in report.layers) + report.system.total
        )
        assert report.total == pytest.approx(sum(report.by_figure.values()))
        data = json.loads(report.to_json())
        assert data["joules_per_inference"] == pytest.approx(report.total)
        assert data["layers"][0]["counts"]["dense_ops"] > 0
        assert data["left_out"]
        assert "units.0" in report.table() and "Left out:" in report.table()
        assert any("MemoryNetwork" in line for line in report.left_out)  # mean pooling
    loihi2 = reports[1]
    assert loihi2.assumed_share == pytest.approx(1.0)
    assert any("loihi2: mac" in line and "assumed" in line for line in loihi2.assumed)
    assert "100% of this estimate rests on assumed" in loihi2.table()
    assert reports[3].assumed == [] and reports[3].assumed_share == 0
    png = plot_reports(reports, tmp_path / "chart.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analog_energy_is_bias_power_times_duration():
    net = MemoryNetwork(4, (8,), 3)
    x = torch.randn(25, 1, 4)
    one, two = (
        estimate_energy(net, x, "analog-bistable-180nm", step_duration=s) for s in (0.01, 0.02)
    )
    assert two.energy.static == pytest.approx(2 * one.energy.static)
    profile = get_profile("analog-bistable-180nm")
    unit = one.counts.layers[0]
    expected = (
        8 * profile.value("unit_bias_power") + unit.synapses * profile.value("synapse_bias_power")
    ) * 0.25
    assert one.layers[0].energy.static == pytest.approx(expected)
    assert one.system.communication == pytest.approx(
        25 * 4 * profile.value("dac") + 3 * profile.value("adc")
    )
    assert not any("step_duration" in line for line in one.assumed)  # given by the user
