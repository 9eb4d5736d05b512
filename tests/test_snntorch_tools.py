"""Our snnTorch neurons through snnTorch's own tools and NeuroBench's harness, called at
their own entry points: ``snntorch.utils.reset``, ``snntorch.backprop.BPTT``, the
class-style ``init_*`` idiom, NeuroBench's ``Benchmark`` with ``SNNTorchModel``."""

import warnings

import pytest
import snntorch as snn
import snntorch.functional as SF
import snntorch.utils
import torch
from torch import nn

from cmru_neuro import snntorch as cs

with warnings.catch_warnings():  # snntorch.backprop warns on import that it will go away
    warnings.simplefilter("ignore", DeprecationWarning)
    from snntorch import backprop

T, B, F_IN, H, C = 10, 4, 3, 8, 2


def memory_net(**cmru) -> nn.Sequential:
    """The README's pipeline: Linear -> CMRU (state output) -> Linear -> Leaky readout."""
    return nn.Sequential(
        nn.Linear(F_IN, H),
        cs.CMRU(threshold=0.3, init_hidden=True, output_state=True, **cmru),
        nn.Linear(H, C),
        snn.Leaky(beta=0.5, init_hidden=True, output=True),
    )


def membrane_trace(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``(T, B, F)`` -> the readout's membrane ``(T, B, C)``, from a fresh state."""
    snntorch.utils.reset(net)
    return torch.stack([net(x_t)[1] for x_t in x])


def test_bptt_with_state_output_trains_batch_after_batch_from_a_fresh_state():
    """BPTT calls snntorch.utils.reset before each batch; the state of the last batch (and
    its graph) must not carry over. lr = 0: BPTT's mean loss equals each batch's loss from
    a fresh state."""
    net = memory_net(h0=0.5)
    batches = [(2 * torch.randn(T, B, F_IN), torch.randint(0, C, (B,))) for _ in range(2)]
    criterion = SF.ce_max_membrane_loss()
    with torch.no_grad():
        expected = sum(criterion(membrane_trace(net, x), y) for x, y in batches) / len(batches)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    loss = backprop.BPTT(net, batches, optimizer, criterion, time_var=True, time_first=True)
    torch.testing.assert_close(loss.detach(), expected)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_bptt_trains_a_memory_task(fit_copy_first):
    """snnTorch's own trainer, a cue at t = 0 read out 40 noisy steps later."""
    from cmru_neuro.tasks import copy_first

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(2, 16),
        cs.CMRU(init_hidden=True, output_state=True),
        nn.Linear(16, 2),
        snn.Leaky(beta=0.5, init_hidden=True, output=True),
    )
    task = copy_first(length=40, classes=2, noise=0.15, train_size=64 * 25, test_size=256)
    batches = [task.batch(task.train, slice(64 * i, 64 * (i + 1))) for i in range(25)]
    batches = [(2 * x, label) for x, label in batches]
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    backprop.BPTT(net, batches, optimizer, SF.ce_max_membrane_loss(), time_var=True)
    with torch.no_grad():
        x, label = task.batch(task.test, slice(None))
        correct = (membrane_trace(net, 2 * x).max(0).values.argmax(-1) == label).float().mean()
    assert correct >= 0.95, correct


class ClassStyle(nn.Module):
    """snnTorch tutorials' class-style network: states initialised in ``forward``."""

    def __init__(self):
        super().__init__()
        self.fc1, self.cmru = nn.Linear(F_IN, H), cs.CMRU(threshold=0.3, h0=0.5)
        self.fc2, self.lif = nn.Linear(H, C), snn.Leaky(beta=0.5)

    def forward(self, x):
        mem1, mem2 = self.cmru.init_cmru(), self.lif.init_leaky()
        for x_t in x:
            _spk1, mem1 = self.cmru(self.fc1(x_t), mem1)
            _spk2, mem2 = self.lif(self.fc2(mem1), mem2)
        return mem2


def test_class_style_idiom_is_independent_of_batch_size_and_of_the_last_call():
    net = ClassStyle()
    x = 2 * torch.randn(T, B + 3, F_IN)
    whole = net(x)
    parts = torch.cat([net(x[:, :B]), net(x[:, B:])], dim=0)
    torch.testing.assert_close(parts, whole)
    torch.testing.assert_close(net(x), whole)


def test_event_output_into_an_integrating_readout_carries_the_memory():
    """Spike output (events) + Linear without bias + Leaky(beta=1, no reset): the readout's
    membrane is ``W (h_t - h_0) / alpha``, the same as reading the state out."""
    alpha, h0 = 0.5, 0.25
    events = cs.CMRU(threshold=0.3, alpha=alpha, h0=h0, init_hidden=True)
    state = cs.CMRU(threshold=0.3, alpha=alpha, h0=h0, init_hidden=True, output_state=True)
    readout = nn.Linear(H, C, bias=False)
    integrator = snn.Leaky(beta=1.0, reset_mechanism="none", init_hidden=True, output=True)
    integrating = nn.Sequential(events, readout, integrator)
    snntorch.utils.reset(integrating)
    state.reset_mem()
    for c_t in 2 * torch.randn(T, B, H):
        _spk, mem = integrating(c_t)
        h = state(c_t)
        torch.testing.assert_close(mem, readout(h - h0) / alpha, rtol=1e-5, atol=1e-5)
    assert h.abs().sum() > 0


def test_neurobench_results_do_not_depend_on_the_batch_size():
    """NeuroBench's SNNTorchModel resets with snntorch.utils.reset before each batch."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import (
        ActivationSparsity,
        ClassificationAccuracy,
        MembraneUpdates,
        SynapticOperations,
    )
    from neurobench.models import SNNTorchModel
    from neurobench.processors.postprocessors import ChooseMaxCount

    # h0 = 0.5: states h0 + k are never 0 or +-1, so NeuroBench, which calls a layer's input
    # spikes (ACs) or not (MACs) per batch, counts MACs in every batch
    net = memory_net(h0=0.5)
    with torch.no_grad():
        net[2].weight.mul_(4.0)  # readout spikes often enough to decide the class
    data = torch.utils.data.TensorDataset(
        2 * torch.randn(10, T, F_IN), torch.randint(0, C, (10,))  # NeuroBench: batch first
    )
    metrics = [ClassificationAccuracy, SynapticOperations, MembraneUpdates, ActivationSparsity]
    benchmark = Benchmark(SNNTorchModel(net), None, [], [ChooseMaxCount()], [[], metrics])
    results = [
        benchmark.run(quiet=True, dataloader=torch.utils.data.DataLoader(data, batch_size=size))
        for size in (1, 4)  # 4: batches of 4, 4 and 2
    ]
    flat = [{**r.pop("SynapticOperations"), **r} for r in results]
    assert flat[0]["MembraneUpdates"] > 0 and flat[0]["Effective_MACs"] > 0
    assert flat[0] == pytest.approx(flat[1], rel=1e-9)
