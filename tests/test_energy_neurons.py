"""Energy counts of the snnTorch / Norse memory neurons agree with the MemoryUnit layers."""

import pytest
import torch
from torch import nn

from cmru_neuro.energy import count_operations, estimate_energy

snntorch_neurons = pytest.importorskip("cmru_neuro.snntorch")
norse_neurons = pytest.importorskip("cmru_neuro.norse")


class StepNet(nn.Module):
    """snnTorch style: one call per step; ``(T, B, F)`` in."""

    def __init__(self):
        super().__init__()
        self.fc, self.neuron, self.out = nn.Linear(3, 4), snntorch_neurons.CMRU(), nn.Linear(4, 2)

    def forward(self, x):
        mem, outputs = None, []
        for step in x:
            spikes, mem = self.neuron(self.fc(step), mem)
            outputs.append(self.out(spikes))
        return torch.stack(outputs)


class NorseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.neuron, self.out = nn.Linear(3, 4), norse_neurons.CMRU(), nn.Linear(4, 2)

    def forward(self, x):
        events, _ = self.neuron(self.fc(x))
        return self.out(events)


def _state_changes(net, x, **options):
    counts = count_operations(net, x, **options)
    fc, neuron, out = counts.layers
    return fc, neuron, out


def test_stepwise_and_sequence_neurons_count_the_same_events():
    torch.manual_seed(1)
    step_net, norse_net = StepNet(), NorseNet()
    norse_net.fc.load_state_dict(step_net.fc.state_dict())
    norse_net.out.load_state_dict(step_net.out.state_dict())
    x = torch.randn(25, 3, 3)
    stepwise = _state_changes(step_net, x, time_first=True)
    sequence = _state_changes(norse_net, x)
    for a, b in zip(stepwise, sequence):
        for name in (
            "dense_ops",
            "effective_macs",
            "message_macs",
            "message_acs",
            "neuron_updates",
            "membrane_updates",
            "state_changes",
            "messages_out",
        ):
            assert getattr(a, name) == pytest.approx(getattr(b, name)), (a.name, name)
    _, neuron, out = sequence
    assert neuron.neuron_updates == 25 * 4 and neuron.state_changes > 0
    assert out.message_acs == pytest.approx(neuron.state_changes * 2)  # events x fan-out 2
    assert sum(neuron.changes_per_step) == pytest.approx(neuron.state_changes)


def test_a_quiet_snntorch_memory_neuron_sends_nothing():
    net = StepNet()
    with torch.no_grad():
        net.fc.weight.zero_()
        net.fc.bias.fill_(0.1)  # |c| = 0.1 < threshold 1: the state holds
    x = torch.randn(30, 2, 3)
    report = estimate_energy(net, x, "loihi", time_first=True)
    neuron = report.counts.layers[1]
    assert neuron.state_changes == 0 and report.counts.layers[2].message_acs == 0
    assert neuron.active_updates == 4  # the first step only
    assert neuron.membrane_updates == 4  # NeuroBench: every unit once, then state changes
