"""cmru_neuro.reset: every stateful neuron inside one network, nested ones included, and
nothing outside it."""

import copy

import pytest
import snntorch as snn
import snntorch.utils
import torch
from torch import nn

from cmru_neuro import snntorch as cs
from cmru_neuro.reset import reset

B, H = 2, 4


class Block(nn.Module):
    """A nested module holding one of ours and one of snnTorch's."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(H, H), cs.CMRU(threshold=0.1, init_hidden=True))
        self.leaky = snn.Synaptic(alpha=0.5, beta=0.5, init_hidden=True)

    def forward(self, x):
        return self.leaky(self.inner(x))


def make_net() -> nn.Module:
    return nn.Sequential(
        Block(), nn.Sequential(cs.BMRU(init_hidden=True), snn.Leaky(beta=0.9, init_hidden=True))
    )


def stateful(net: nn.Module) -> list[torch.Tensor]:
    """Every hidden-state tensor in ``net``."""
    return [
        getattr(m, name)
        for m in net.modules()
        for name in ("mem", "syn")
        if isinstance(m, snn.SpikingNeuron) and isinstance(getattr(m, name, None), torch.Tensor)
    ]


def run(net: nn.Module) -> None:
    for _ in range(3):
        net(2 * torch.ones(B, H))


def test_nested_neurons_ours_and_snntorch_are_reset():
    net = make_net()
    run(net)
    assert any(state.abs().sum() > 0 for state in stateful(net))
    assert reset(net) == 4
    assert all(torch.equal(state, torch.zeros_like(state)) for state in stateful(net))


def test_another_network_is_untouched():
    net, other = make_net(), make_net()
    run(net)
    run(other)
    before = [state.clone() for state in stateful(other)]
    reset(net)
    assert all(torch.equal(a, b) for a, b in zip(stateful(other), before))


def test_deep_copies_are_independent():
    net = make_net()
    with torch.no_grad():  # snnTorch's own neurons cannot deep-copy a state with a graph
        run(net)
    twin = copy.deepcopy(net)
    before = [state.clone() for state in stateful(net)]
    reset(twin)
    assert all(torch.equal(a, b) for a, b in zip(stateful(net), before))
    assert all(torch.equal(s, torch.zeros_like(s)) for s in stateful(twin))
    run(twin)  # the copy still runs after its reset
    assert all(torch.equal(a, b) for a, b in zip(stateful(net), before))


def test_our_neuron_deep_copies_with_a_graph_attached():
    neuron = cs.CMRU(threshold=0.1, init_hidden=True)
    neuron(torch.ones(B, H, requires_grad=True) * 2)
    twin = copy.deepcopy(neuron)
    assert torch.equal(twin.mem, neuron.mem) and not twin.mem.requires_grad
    assert neuron.mem.requires_grad


def test_reset_detaches_the_graph():
    net = make_net()
    x = torch.ones(B, H, requires_grad=True)
    net(x)
    reset(net)
    assert not any(state.requires_grad for state in stateful(net))


def ours(net: nn.Module) -> list[torch.Tensor]:
    return [m.mem for m in net.modules() if isinstance(m, cs.MemoryNeuron)]


def test_snntorch_reset_resets_our_nested_neurons_in_that_network_only():
    """snnTorch's own reset (what snntorch.backprop and NeuroBench call) knows our classes
    once cmru_neuro.snntorch is imported: nested ones in ``net``, none elsewhere."""
    net, other = make_net(), make_net()
    run(net)
    run(other)
    before = [state.clone() for state in ours(other)]
    snntorch.utils.reset(net)
    assert len(ours(net)) == 2 and all(state.numel() == 0 for state in ours(net))
    assert all(torch.equal(a, b) and a.abs().sum() > 0 for a, b in zip(ours(other), before))
    run(net)  # starts again from h0 = 0, as a fresh copy does
    fresh = make_net()
    fresh.load_state_dict(net.state_dict())
    run(fresh)
    assert torch.equal(net[0].inner[1].mem, fresh[0].inner[1].mem)


def test_class_helpers_do_not_crash_on_a_mixed_network():
    run(make_net())
    for cls in (cs.CMRU, cs.BMRU, cs.AlphaCMRU, cs.MemoryNeuron):
        cls.detach_hidden()
        cls.reset_hidden()


def test_reset_rejects_a_non_module():
    with pytest.raises(TypeError, match="net: expected a torch.nn.Module, got list"):
        reset([cs.CMRU()])
