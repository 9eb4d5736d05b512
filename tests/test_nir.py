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


# -- lowered export: standard nodes only, read where cmru_neuro is never imported ----------


def on_grid(net: nn.Module) -> nn.Module:
    """Weights and biases on multiples of 1/4: every current is exact in any summation order,
    and with integer inputs |c| hits the thresholds 0.5 / 0.25 exactly (ties)."""
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-4, 5, p.shape) / 4)
    return net


def grid_input() -> torch.Tensor:
    return torch.randint(-3, 4, (40, 5, F_IN)).float()


RUN_ELSEWHERE = """
import sys
import nir, numpy as np, torch
graph, x = nir.read(sys.argv[2]), torch.from_numpy(np.load(sys.argv[3]))
if sys.argv[1] == "snntorch":
    from snntorch.import_nir import import_from_nir
    net, outputs = import_from_nir(graph), []
    for x_t in x:
        outputs.append(net(x_t)[0])
else:
    import norse.torch
    net, state, outputs = norse.torch.from_nir(graph), None, []
    for x_t in x:
        out, state = net(x_t, state)
        outputs.append(out)
assert not any(name.startswith("cmru_neuro") for name in sys.modules), "cmru_neuro imported"
np.save(sys.argv[4], torch.stack(outputs).detach().numpy())
"""


def run_elsewhere(backend: str, graph: nir.NIRGraph, x: torch.Tensor, tmp_path) -> torch.Tensor:
    """Outputs ``(T, B, H)`` of the other project's own NIR importer, in a fresh process."""
    import subprocess
    import sys

    paths = [tmp_path / name for name in ("net.nir", "x.npy", "out.npy")]
    nir.write(paths[0], graph)
    np.save(paths[1], x.numpy())
    done = subprocess.run(
        [sys.executable, "-c", RUN_ELSEWHERE, backend, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.from_numpy(np.load(paths[2]))


def events_and_ties(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Our neuron's events ``(T, B, H)`` and how many currents sat exactly on a threshold."""
    neuron = net[-1]
    threshold = neuron.threshold if isinstance(neuron, cs.MemoryNeuron) else neuron.p.threshold
    ties = int((net[0](x).abs() == threshold.abs()).sum())
    if isinstance(neuron, cs.MemoryNeuron):
        return snntorch_outputs(net, x), ties
    shape = (*x.shape[:2], H)
    return norse_outputs(net, x)[: shape[0] * shape[1] * H].reshape(shape), ties


def test_lowered_graph_holds_standard_nodes_only():
    net = nn.Sequential(nn.Linear(F_IN, H), cs.CMRU(threshold=0.5, init_hidden=True))
    graph = cnir.to_nir(net, lowered=True)
    kinds = [type(node).__name__ for node in graph.nodes.values()]
    assert kinds == ["Input", "Affine", "Affine", "LIF", "Affine", "Output"]
    lif, margins = graph.nodes["lif"], graph.nodes["affine_1"]
    assert not lif.v_threshold.any()  # one threshold per node (snnTorch's importer asserts it)
    np.testing.assert_array_equal(margins.bias, np.full(2 * H, 0.5, np.float32))  # |beta| -+ c
    np.testing.assert_array_equal(lif.tau, np.full(2 * H, cnir.SNNTORCH_DT))


@pytest.mark.parametrize("threshold", [0.5, torch.tensor([0.5, 0.25, 0.0, 0.75, 0.5, 0.25])])
@pytest.mark.parametrize("cls", [cs.CMRU, cs.BMRU])
def test_lowered_graph_in_snntorch_import_from_nir_gives_our_events_ties_included(cls, threshold, tmp_path):
    """Per-unit thresholds (one of them 0: sign(0) = +1) too, since every LIF threshold is 0."""
    net = on_grid(nn.Sequential(nn.Linear(F_IN, H), cls(threshold=threshold, size=H, init_hidden=True)))
    x = grid_input()
    expected, ties = events_and_ties(net, x)
    assert ties > 0 and (expected == -1).any() and (expected == 1).any()
    graph = cnir.to_nir(net, lowered=True, dt=cnir.SNNTORCH_DT)
    assert torch.equal(run_elsewhere("snntorch", graph, x, tmp_path), expected)


def test_lowered_graph_in_norse_from_nir_gives_our_events_ties_included(tmp_path):
    """Per-unit thresholds (one of them 0: sign(0) = +1) pass Norse's importer too."""
    threshold = torch.tensor([0.5, 0.25, 0.0, 0.75, 0.5, 0.25])
    p = cn.CMRUParameters(threshold=threshold, alpha=torch.ones(H))
    net = on_grid(nt.SequentialState(nn.Linear(F_IN, H), cn.CMRUCell(p)))
    x = grid_input()
    expected, ties = events_and_ties(net, x)
    assert ties > 0
    graph = cnir.to_nir(net, lowered=True, dt=cnir.NORSE_DT)
    assert torch.equal(run_elsewhere("norse", graph, x, tmp_path), expected)


@pytest.mark.parametrize("from_input", [False, True])  # the threshold
@pytest.mark.parametrize("output_state", [False, True])
@pytest.mark.parametrize("backend", ["snntorch", "norse"])
def test_lowered_graph_imports_back_as_our_neuron(backend, output_state, from_input, tmp_path):
    threshold = {"threshold_from_input": True} if from_input else {"threshold": torch.rand(H) + 0.25}
    neuron = cs.CMRU(**threshold, size=H, alpha=torch.rand(H) + 0.5,
                     h0=torch.rand(H), init_hidden=True, output_state=output_state)
    net = nn.Sequential(nn.Linear(F_IN, neuron.streams * H), neuron)
    x = 2 * torch.randn(T, B, F_IN)
    expected = snntorch_outputs(net, x)
    rebuilt = round_trip(cnir.to_nir(net, lowered=True), tmp_path, backend)
    if backend == "snntorch":
        assert [type(m) for m in rebuilt] == [nn.Linear, cs.CMRU]
        assert rebuilt[1].threshold_from_input == from_input
        assert torch.equal(snntorch_outputs(rebuilt, x), expected)
    else:
        assert [type(m) for m in rebuilt] == [nn.Linear, cn.CMRUCell]
        outputs = norse_outputs(rebuilt, x)[: expected.numel()].reshape(expected.shape)
        assert torch.equal(outputs, expected)


@pytest.mark.parametrize("backend", ["snntorch", "norse"])
def test_lowered_events_without_our_metadata_import_as_standard_modules(backend):
    """A tool that drops node metadata leaves Linear, LIF (tau = dt), Linear: same events."""
    neuron = cs.CMRU(threshold=torch.rand(H) + 0.25, size=H, init_hidden=True)
    net = nn.Sequential(nn.Linear(F_IN, H), neuron)
    x = 2 * torch.randn(T, B, F_IN)
    expected = snntorch_outputs(net, x)
    graph = cnir.to_nir(net, lowered=True, dt=cnir.SNNTORCH_DT)
    for node in graph.nodes.values():
        node.metadata = {}
    rebuilt = cnir.from_nir(graph, backend=backend, dt=cnir.SNNTORCH_DT)
    spiking = snn.Leaky if backend == "snntorch" else nt.LIFBoxCell
    assert [type(m) for m in rebuilt] == [nn.Linear, nn.Linear, spiking, nn.Linear]
    if backend == "snntorch":
        outputs = snntorch_outputs(rebuilt, x)
    else:
        outputs = norse_outputs(rebuilt, x)[: expected.numel()].reshape(expected.shape)
    assert torch.equal(outputs, expected)


def test_lowered_state_output_is_an_integrator_of_alpha_events():
    """NIR's I node, ``dv/dt = r x``, under forward Euler at ``dt``: ``h = h0 + alpha sum e``."""
    alpha, h0 = torch.rand(H) + 0.5, torch.rand(H)
    neuron = cs.CMRU(threshold=0.5, size=H, alpha=alpha, h0=h0, init_hidden=True, output_state=True)
    net = nn.Sequential(nn.Linear(F_IN, H), neuron)
    graph = cnir.to_nir(net, lowered=True, dt=cnir.NORSE_DT)
    kinds = [type(node).__name__ for node in graph.nodes.values()]
    assert kinds == ["Input", "Affine", "Affine", "LIF", "Affine", "I", "Affine", "Output"]
    x = 2 * torch.randn(T, B, F_IN)
    expected = snntorch_outputs(net, x)
    events = snntorch_outputs(nn.Sequential(net[0], cs.CMRU(threshold=0.5, init_hidden=True)), x)
    integrator, offset = graph.nodes["i"], graph.nodes["affine_3"]
    v = torch.cumsum(cnir.NORSE_DT * torch.from_numpy(integrator.r).float() * events, dim=0)
    state = v @ torch.from_numpy(offset.weight).T + torch.from_numpy(offset.bias)
    torch.testing.assert_close(state, expected, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("backend", ["snntorch", "norse"])
def test_a_file_lowered_before_2026_12_07_still_imports_as_our_neuron(backend, tmp_path):
    """The earlier layout: ``[W; -W]`` folded into the projection, per-unit LIF thresholds
    just below |beta|, no ``cmru_lowering`` key."""
    neuron = cs.CMRU(threshold=torch.rand(H) + 0.25, size=H, init_hidden=True)
    net = nn.Sequential(nn.Linear(F_IN, H), neuron)
    weight, bias = (v.detach().numpy() for v in (net[0].weight, net[0].bias))
    threshold = neuron.threshold.detach().numpy()
    below = np.nextafter(np.abs(threshold), np.float32(-np.inf))
    unit = {"cmru_alpha": np.ones(H, np.float32), "cmru_threshold": threshold,
            "cmru_epsilon": np.ones(H, np.float32), "cmru_h0": np.zeros(H, np.float32),
            "cmru_output_state": False}
    identity = np.eye(H, dtype=np.float32)
    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=np.concatenate([weight, -weight]), bias=np.concatenate([bias, -bias])),
        nir.LIF(tau=np.full(2 * H, 1e-4), r=np.ones(2 * H), v_leak=np.zeros(2 * H),
                v_threshold=np.concatenate([below, below]), v_reset=np.zeros(2 * H), metadata=unit),
        nir.Linear(weight=np.concatenate([identity, -identity], axis=1)),
    )
    rebuilt = round_trip(graph, tmp_path, backend)
    x = 2 * torch.randn(T, B, F_IN)
    expected = snntorch_outputs(net, x)
    if backend == "snntorch":
        assert [type(m) for m in rebuilt] == [nn.Linear, cs.CMRU]
        assert torch.equal(snntorch_outputs(rebuilt, x), expected)
    else:
        assert [type(m) for m in rebuilt] == [nn.Linear, cn.CMRUCell]
        assert torch.equal(norse_outputs(rebuilt, x)[: expected.numel()].reshape(expected.shape), expected)


# -- the threshold from the input (the paper's form), lowered ------------------------------


def input_threshold_net(cls, **options) -> nn.Sequential:
    """``Linear(F, 2H) -> [c | beta] -> cls(threshold_from_input=True)``, weights on the grid."""
    return on_grid(nn.Sequential(nn.Linear(F_IN, 2 * H), cls(threshold_from_input=True, init_hidden=True, **options)))


def input_threshold_events(net: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Our events ``(T, B, H)``, and how often ``|c| = |beta|`` and ``c = beta = 0`` happened."""
    candidate, threshold = net[0](x).chunk(2, dim=-1)
    ties = {"ties": int((candidate.abs() == threshold.abs()).sum()),
            "zeros": int(((candidate == 0) & (threshold == 0)).sum()),
            "negative ties": int(((candidate < 0) & (candidate.abs() == threshold.abs())).sum())}
    events = snntorch_outputs(nn.Sequential(net[0], type(net[1])(threshold_from_input=True, init_hidden=True)), x)
    return events, ties


def test_lowered_input_threshold_holds_standard_nodes_only():
    graph = cnir.to_nir(input_threshold_net(cs.CMRU), lowered=True)
    kinds = [type(node).__name__ for node in graph.nodes.values()]
    assert kinds == ["Input", "Affine", "Linear", "LIF", "Affine", "LIF", "Linear", "Output"]
    for name in ("lif", "lif_1"):  # one threshold per node (snnTorch's importer asserts it)
        assert not graph.nodes[name].v_threshold.any()
    assert graph.nodes["linear"].weight.shape == (5 * H, 2 * H)


@pytest.mark.parametrize("backend", ["snntorch", "norse"])
@pytest.mark.parametrize("cls", [cs.CMRU, cs.BMRU])
def test_lowered_input_threshold_in_the_other_importers_gives_our_events(backend, cls, tmp_path):
    """snnTorch's ``import_from_nir`` and Norse's ``from_nir``, in a fresh process: the same
    events, ties |c| = |beta| of both signs and c = beta = 0 (sign(0) = +1) included."""
    net = input_threshold_net(cls)
    x = grid_input()
    expected, ties = input_threshold_events(net, x)
    assert all(ties.values()) and (expected == -1).any() and (expected == 1).any(), ties
    dt = cnir.SNNTORCH_DT if backend == "snntorch" else cnir.NORSE_DT
    graph = cnir.to_nir(net, lowered=True, dt=dt)
    assert torch.equal(run_elsewhere(backend, graph, x, tmp_path), expected)


@pytest.mark.parametrize("backend", ["snntorch", "norse"])
def test_lowered_input_threshold_without_our_metadata_imports_as_standard_modules(backend):
    net = input_threshold_net(cs.BMRU)
    x = grid_input()
    expected, _ = input_threshold_events(net, x)
    graph = cnir.to_nir(net, lowered=True, dt=cnir.SNNTORCH_DT)
    for node in graph.nodes.values():
        node.metadata = {}
    rebuilt = cnir.from_nir(graph, backend=backend, dt=cnir.SNNTORCH_DT)
    spiking = snn.Leaky if backend == "snntorch" else nt.LIFBoxCell
    assert [type(m) for m in rebuilt] == [nn.Linear, nn.Linear, spiking, nn.Linear, spiking, nn.Linear]
    if backend == "snntorch":
        outputs = snntorch_outputs(rebuilt, x)
    else:
        outputs = norse_outputs(rebuilt, x)[: expected.numel()].reshape(expected.shape)
    assert torch.equal(outputs, expected)


def test_lowered_export_errors_say_what_has_no_standard_form():
    for neuron, words in [
        (cs.AlphaCMRU(init_hidden=True), "step_from_input=True"),
        (cs.BMRU(init_hidden=True, output_state=True), "output_state=True"),
    ]:
        net = nn.Sequential(nn.Linear(F_IN, neuron.streams * H), neuron)
        with pytest.raises(ValueError, match=r"net\[1\] \(\w+\): lowered export expected") as info:
            cnir.to_nir(net, lowered=True)
        assert words in str(info.value) and "lowered=False" in str(info.value)


# -- Norse's LI readouts -------------------------------------------------------------------


def test_norse_li_readouts_round_trip(tmp_path):
    net = nt.SequentialState(
        nn.Linear(F_IN, H),
        cn.CMRUCell(cn.CMRUParameters(threshold=torch.tensor(0.5)), output_state=True),
        trained_like(nt.LILinearCell(H, H)),
        trained_like(nt.LIBoxCell(nt.LIBoxParameters(tau_mem_inv=torch.tensor(50.0)))),
        nn.Linear(H, 2),
        trained_like(nt.LICell(nt.LIParameters(tau_syn_inv=torch.tensor(80.0)))),
    )
    x = 2 * torch.randn(T, B, F_IN)
    expected = norse_outputs(net, x)
    rebuilt = round_trip(cnir.to_nir(net), tmp_path, "norse")
    assert [type(m) for m in rebuilt] == [
        nn.Linear, cn.CMRUCell, nn.Linear, nt.LICell, nt.LIBoxCell, nn.Linear, nt.LICell
    ]
    torch.testing.assert_close(norse_outputs(rebuilt, x), expected)
