"""NIR: export networks with our units and standard layers, write, read, rebuild, and get
the same outputs step for step."""

import nir
import norse.torch as nt
import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from cmru_neuro import layers
from cmru_neuro import nir as cnir
from cmru_neuro import norse as cn
from cmru_neuro import snntorch as cs
from cmru_neuro.reset import reset

T, B, F_IN, H = 15, 3, 4, 6


def snntorch_outputs(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    reset(net)
    return torch.stack([net(x_t) for x_t in x])


def norse_outputs(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Outputs ``(T, B, O)`` and, flattened, every state tensor after the last step."""
    state, outputs = None, []
    for x_t in x:
        out, state = net(x_t, state)
        outputs.append(out)
    return torch.cat(
        [torch.stack(outputs).flatten(), *(v.flatten() for s in state if s is not None for v in s)]
    )


def round_trip(graph: nir.NIRGraph, tmp_path, backend: str):
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    return cnir.from_nir(nir.read(path), backend=backend)


def trained_like(module: nn.Module) -> nn.Module:
    """Move every parameter and buffer off its default so a lost value shows."""
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.is_floating_point() and tensor.numel():
                tensor.mul_(1 + 0.3 * torch.rand_like(tensor))
    return module


@pytest.mark.parametrize(
    "neuron",
    [
        lambda: cs.CMRU(threshold=0.8, init_hidden=True),
        lambda: cs.BMRU(threshold_from_input=True, alpha=0.5, init_hidden=True),
        lambda: cs.AlphaCMRU(threshold_from_input=True, init_hidden=True),
        lambda: cs.CMRU(
            size=H,
            threshold=torch.rand(H) + 0.5,
            alpha=torch.rand(H) + 0.5,
            init_hidden=True,
            output_state=True,
        ),
    ],
    ids=["cmru", "bmru-from-input", "alpha-cmru", "vector-state-output"],
)
def test_snntorch_round_trip_gives_identical_outputs(neuron, tmp_path):
    neuron = neuron()
    net = nn.Sequential(
        nn.Linear(F_IN, neuron.streams * H),
        neuron,
        nn.Linear(H, 2),
        snn.Leaky(beta=0.8, threshold=0.5, init_hidden=True),
    )
    x = 2 * torch.randn(T, B, F_IN)
    expected = snntorch_outputs(net, x)
    rebuilt = round_trip(cnir.to_nir(net), tmp_path, "snntorch")
    assert [type(m) for m in rebuilt] == [type(m) for m in net]
    assert torch.equal(snntorch_outputs(rebuilt, x), expected)


def test_norse_round_trip_gives_identical_outputs(tmp_path):
    p = cn.CMRUParameters(threshold=None, alpha=torch.rand(H) + 0.5)
    net = nt.SequentialState(
        nn.Linear(F_IN, 2 * H),
        cn.BMRUCell(p, h0=torch.rand(H)),
        nn.Linear(H, H),
        nt.LIFBoxCell(),
        nn.Linear(H, 2),
        nt.LIFCell(nt.LIFParameters(v_th=torch.tensor(0.05))),
    )
    x = 5 * torch.randn(T, B, F_IN)
    expected = norse_outputs(net, x)
    rebuilt = round_trip(cnir.to_nir(net), tmp_path, "norse")
    assert [type(m) for m in rebuilt] == [type(m) for m in net]
    assert torch.equal(norse_outputs(rebuilt, x), expected)


@pytest.mark.parametrize("layer_cls", [layers.CMRU, layers.BMRU, layers.AlphaCMRU])
@pytest.mark.parametrize("threshold", ["input", "fixed"])
@pytest.mark.parametrize("backend", ["snntorch", "norse"])
def test_core_layer_exports_as_a_subgraph_and_runs_the_same(
    layer_cls, threshold, backend, tmp_path
):
    layer = trained_like(layer_cls(F_IN, H, threshold=threshold))
    x = 2 * torch.randn(T, B, F_IN)
    expected, _ = layer(x)
    graph = cnir.to_nir(nn.Sequential(layer))
    assert isinstance(
        next(n for n in graph.nodes.values() if isinstance(n, nir.NIRGraph)), nir.NIRGraph
    )
    rebuilt = round_trip(graph, tmp_path, backend)
    if backend == "snntorch":
        outputs = snntorch_outputs(rebuilt, x)
    else:
        outputs = norse_outputs(rebuilt, x)[: expected.numel()].reshape(expected.shape)
    torch.testing.assert_close(outputs, expected, rtol=0, atol=1e-5)


def test_node_is_documented_with_vector_parameters_and_loads_after_import(tmp_path):
    graph = cnir.to_nir(
        nn.Sequential(nn.Linear(F_IN, 2 * H), cn.CMRUCell(cn.CMRUParameters(threshold=None)))
    )
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    node = next(n for n in nir.read(path).nodes.values() if isinstance(n, cnir.CMRU))
    assert node.alpha.shape == node.threshold.shape == node.epsilon.shape == node.h0.shape == (H,)
    assert node.threshold_from_input and not node.step_from_input
    assert node.input_type["input"].tolist() == [2 * H] and node.output_type["output"].tolist() == [
        H
    ]
    assert "z_t" in cnir.CMRU.__doc__ and "epsilon" in cnir.CMRU.__doc__


def test_export_errors_name_the_module():
    with pytest.raises(TypeError, match=r"net\[1\] \(GRU\)"):
        cnir.to_nir(nn.Sequential(nn.Linear(2, 3), nn.GRU(3, 3)))
    with pytest.raises(TypeError, match=r"net\[0\] \(ReLU\): expected one of nn.Linear"):
        cnir.to_nir(nn.Sequential(nn.ReLU(), nn.Linear(2, 3)))
    with pytest.raises(ValueError, match=r"net\[0\] \(CMRU\): cannot tell its width"):
        cnir.to_nir(nn.Sequential(cs.CMRU(init_hidden=True)))
    with pytest.raises(ValueError, match="multiple of 2, got 5"):
        cnir.to_nir(
            nn.Sequential(nn.Linear(2, 5), cs.CMRU(threshold_from_input=True, init_hidden=True))
        )
    with pytest.raises(
        ValueError, match=r"net\[1\] \(CMRU\): graded_spikes_factor .* expected 1, got 2.0"
    ):
        cnir.to_nir(
            nn.Sequential(nn.Linear(2, 4), cs.CMRU(graded_spikes_factor=2.0, init_hidden=True))
        )
    with pytest.raises(TypeError, match="net: expected a torch.nn.Module, got str"):
        cnir.to_nir("net")


def test_import_errors():
    graph = cnir.to_nir(nn.Sequential(layers.MemoryUnit(F_IN, H, epsilon=0.5)))
    with pytest.raises(
        ValueError, match=r"epsilon all 1 \(CMRU\) or all 0 \(BMRU\), got values \[0.5\]"
    ):
        cnir.from_nir(graph)
    with pytest.raises(
        ValueError, match="backend: expected one of 'snntorch', 'norse', got 'lava'"
    ):
        cnir.from_nir(graph, backend="lava")
    lif = nir.NIRGraph.from_list(
        nir.CubaLIF(
            tau_syn=np.ones(2),
            tau_mem=np.ones(2),
            r=np.ones(2),
            v_leak=np.zeros(2),
            v_threshold=np.ones(2),
        )
    )
    with pytest.raises(TypeError, match="no snntorch module for a CubaLIF node"):
        cnir.from_nir(lif, backend="snntorch")
    branching = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "a": nir.Linear(np.eye(2)),
            "b": nir.Linear(np.eye(2)),
            "output": nir.Output(np.array([2])),
        },
        edges=[("input", "a"), ("input", "b"), ("a", "output"), ("b", "output")],
    )
    with pytest.raises(ValueError, match="expected a chain"):
        cnir.from_nir(branching)


def test_round_trip_keeps_snntorch_output_flags(tmp_path):
    """A step loop that unpacks ``spk, mem = net(x_t)`` works on the rebuilt network too."""
    net = nn.Sequential(
        nn.Linear(3, 4),
        cs.CMRU(threshold=1.0, size=4, init_hidden=True),
        nn.Linear(4, 2),
        snn.Leaky(beta=0.9, init_hidden=True, output=True),
    )
    path = tmp_path / "net.nir"
    nir.write(path, cnir.to_nir(net))
    rebuilt = cnir.from_nir(path, backend="snntorch")
    assert [getattr(m, "output", None) for m in rebuilt if isinstance(m, snn.SpikingNeuron)] == [False, True]
    reset(net), reset(rebuilt)
    for x_t in torch.randn(6, 2, 3):
        (spk, mem), (spk_r, mem_r) = net(x_t), rebuilt(x_t)
        torch.testing.assert_close(spk_r, spk)
        torch.testing.assert_close(mem_r, mem)
