"""One entry point (functional.memory_sequence) for every front-end; validation without a
sync; meta tensors; empty sequences; dtypes."""

import contextlib

import pytest
import torch

from cmru_neuro import BMRU, CMRU, AlphaCMRU, FirstQuadrantBMRU, MemoryNetwork, MemoryUnit, kernels
from cmru_neuro import functional as F
from cmru_neuro.baselines import LRU, MinGRU

MEMORY_UNITS = {
    "cmru": CMRU,
    "bmru": BMRU,
    "acmru": AlphaCMRU,
    "eps=0.5": lambda *a, **kw: MemoryUnit(*a, epsilon=0.5, **kw),
    "fq-bmru": FirstQuadrantBMRU,
}
LAYERS = {**MEMORY_UNITS, "lru": LRU, "mingru": MinGRU, "mingru-lin": lambda *a, **kw: MinGRU(*a, form="linear", **kw)}


@pytest.fixture
def calls(monkeypatch):
    """Counts of calls to the entry point and to the fused kernels while the test runs."""
    counts = {"entry": 0, "fused": 0}
    entry, fused = F.memory_sequence, kernels.run

    def counted_entry(*args, **kwargs):
        counts["entry"] += 1
        return entry(*args, **kwargs)

    def counted_fused(*args, **kwargs):
        counts["fused"] += 1
        return fused(*args, **kwargs)

    monkeypatch.setattr(F, "memory_sequence", counted_entry)
    monkeypatch.setattr(kernels, "run", counted_fused)
    return counts


@pytest.mark.parametrize("name", ["cmru", "bmru", "acmru", "eps=0.5"])
@pytest.mark.parametrize("trace", [False, True])
def test_layers_call_the_entry_point_once(calls, name, trace):
    unit = MEMORY_UNITS[name](3, 4)
    unit(torch.randn(6, 2, 3), return_trace=trace)
    assert calls == {"entry": 1, "fused": 1}
    unit(torch.randn(6, 2, 3), mode="sequential")
    assert calls == {"entry": 2, "fused": 1}  # the step loop is composed


@pytest.mark.parametrize("unit", ["cmru", "bmru", "acmru"])
def test_network_training_takes_the_fused_path(calls, unit):
    """MemoryNetwork asks its units for traces only when asked itself."""
    net = MemoryNetwork(3, (5, 4), 2, unit=unit)
    net(torch.randn(7, 2, 3)).sum().backward()
    assert calls == {"entry": 2, "fused": 2}
    _, traces = net(torch.randn(7, 2, 3), return_traces=True)
    assert calls["fused"] == 4 and len(traces) == 2 and traces[0].levels.shape == (7, 2, 5)


def test_rate_penalty_takes_the_fused_path(calls):
    unit = CMRU(3, 4)
    unit.record_update_rate = True
    unit(3 * torch.randn(6, 2, 3))
    unit.update_rate.backward()
    assert calls == {"entry": 1, "fused": 1} and 0 < unit.update_rate.item() <= 1


@pytest.mark.parametrize("neuron", ["CMRU", "BMRU", "AlphaCMRU"])
def test_snntorch_and_norse_sequences_call_the_entry_point_once(calls, neuron):
    cs = pytest.importorskip("cmru_neuro.snntorch")
    cn = pytest.importorskip("cmru_neuro.norse")
    streams = 2 if neuron == "AlphaCMRU" else 1
    getattr(cs, neuron)(sequence=True)(torch.randn(5, 2, streams * 3))
    assert calls == {"entry": 1, "fused": 1}
    getattr(cn, neuron)()(torch.randn(5, 2, streams * 3))
    assert calls == {"entry": 2, "fused": 2}  # events and levels from one pass
    getattr(cn, neuron)(mode="sequential")(torch.randn(5, 2, streams * 3))
    assert calls == {"entry": 3, "fused": 2}


@contextlib.contextmanager
def _no_host_reads(monkeypatch):
    """Fail on ``Tensor.__bool__`` / ``.item()`` / ``.tolist()`` inside the block."""

    def refuse(self, *args):
        raise AssertionError("a forward read a tensor's value on the host (a device sync)")

    with monkeypatch.context() as patch:
        for name in ("__bool__", "item", "tolist"):
            patch.setattr(torch.Tensor, name, refuse)
        yield


def _reference(unit: MemoryUnit, weight: torch.Tensor, bias: torch.Tensor) -> MemoryUnit:
    """A plain copy of ``unit`` whose projection holds ``weight`` and ``bias``."""
    plain = type(unit)(unit.input_size, unit.hidden_size)
    plain.load_state_dict({k: v for k, v in unit.state_dict().items() if not k.startswith("projection.")},
                          strict=False)
    with torch.no_grad():
        plain.projection.weight.copy_(weight)
        plain.projection.bias.copy_(bias)
    return plain


@pytest.mark.parametrize("name", ["cmru", "acmru"])
def test_a_projection_with_hooks_or_a_subclass_runs_its_own_forward(monkeypatch, name):
    """The bias goes to the fused kernels only for a plain nn.Linear; a forward hook, a
    pruning mask, weight norm or a Linear subclass must still see, or shape, the currents."""
    from torch.nn.utils import parametrizations, prune

    x = torch.randn(9, 2, 3)
    seen = []
    hooked = MEMORY_UNITS[name](3, 4)
    hooked.projection.register_forward_hook(lambda module, inputs, output: seen.append(output))
    out, _ = hooked(x)
    assert len(seen) == 1 and seen[0].shape == (9, 2, hooked.projection.out_features)
    torch.testing.assert_close(out, _reference(hooked, hooked.projection.weight, hooked.projection.bias)(x)[0])

    pruned = MEMORY_UNITS[name](3, 4)
    prune.l1_unstructured(pruned.projection, "weight", amount=0.5)
    with torch.no_grad():
        pruned.projection.weight_orig.mul_(3.0)  # the mask is applied by a pre-hook at each call
    reference = _reference(pruned, pruned.projection.weight_orig * pruned.projection.weight_mask,
                           pruned.projection.bias)
    torch.testing.assert_close(pruned(x)[0], reference(x)[0])

    normed = MEMORY_UNITS[name](3, 4)
    parametrizations.weight_norm(normed.projection)
    with torch.no_grad():
        normed.projection.parametrizations.weight.original0.mul_(2.0)
    weight = normed.projection.weight.detach().clone()
    torch.testing.assert_close(normed(x)[0], _reference(normed, weight, normed.projection.bias)(x)[0])

    class Doubled(torch.nn.Linear):
        def forward(self, inputs):
            return 2 * super().forward(inputs)

    doubled = MEMORY_UNITS[name](3, 4)
    plain_projection = doubled.projection
    doubled.projection = Doubled(3, plain_projection.out_features)
    doubled.projection.load_state_dict(plain_projection.state_dict())
    expected = _reference(doubled, 2 * plain_projection.weight, 2 * plain_projection.bias)(x)[0]
    torch.testing.assert_close(doubled(x)[0], expected)


def test_a_plain_projection_hands_its_bias_to_the_entry_point(monkeypatch):
    biases = []
    entry = F.memory_sequence

    def spy(*args, **kwargs):
        biases.append(kwargs.get("bias"))
        return entry(*args, **kwargs)

    monkeypatch.setattr(F, "memory_sequence", spy)
    unit = CMRU(3, 4)
    unit(torch.randn(5, 2, 3))
    handle = unit.projection.register_forward_pre_hook(lambda module, inputs: None)
    unit(torch.randn(5, 2, 3))
    handle.remove()
    unit(torch.randn(5, 2, 3))
    assert [b is unit.projection.bias for b in biases] == [True, False, True]
    assert biases[1] is None


def test_the_patch_catches_a_host_read(monkeypatch):
    with pytest.raises(AssertionError, match="device sync"), _no_host_reads(monkeypatch):
        bool(torch.ones(()) > 0)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_no_forward_reads_a_tensor_on_the_host(monkeypatch, name, mode):
    layer = LAYERS[name](3, 4)
    x, h0 = torch.randn(6, 2, 3), torch.rand(2, 4) + 0.1
    with _no_host_reads(monkeypatch):
        out, _ = layer(x, h0, mode=mode)
        out.sum().backward()
        if name in MEMORY_UNITS:
            layer(x, return_trace=True)
            layer.step(x[0])


def test_no_front_end_step_or_sequence_reads_a_tensor_on_the_host(monkeypatch):
    cs = pytest.importorskip("cmru_neuro.snntorch")
    cn = pytest.importorskip("cmru_neuro.norse")
    net = MemoryNetwork(3, (4, 4), 2)
    x = torch.randn(6, 2, 3)
    with _no_host_reads(monkeypatch):
        net(x).sum().backward()
        cs.CMRU(sequence=True)(x)
        _, mem = cs.BMRU()(x[0])
        cs.BMRU()(x[1], mem)
        cn.CMRU()(x)
        cn.BMRUCell()(x[0])


def test_invalid_input_still_raises_without_host_reads(monkeypatch):
    x = torch.randn(6, 2, 3)
    x[2, 1, 0] = float("nan")
    with _no_host_reads(monkeypatch), pytest.raises(ValueError, match="x: expected finite values"):
        CMRU(3, 4)(x)
    with _no_host_reads(monkeypatch), pytest.raises(ValueError, match="h0: expected positive values"):
        MinGRU(3, 4)(torch.randn(6, 2, 3), -torch.ones(2, 4))


@pytest.mark.parametrize("name", sorted(MEMORY_UNITS))
def test_layers_run_on_meta_tensors(name):
    unit = MEMORY_UNITS[name](3, 4, device="meta")
    out, h_last, trace = unit(torch.empty(6, 2, 3, device="meta"), return_trace=True)
    assert out.device.type == "meta" and out.shape == (6, 2, 4) and h_last.shape == (2, 4)
    assert trace.levels.shape == (6, 2, 4)
    net = MemoryNetwork(3, (4,), 2).to("meta")
    assert net(torch.empty(6, 2, 3, device="meta")).shape == (2, 2)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("mode", ["parallel", "sequential"])
@pytest.mark.parametrize("layout", ["time-first", "batch-first", "unbatched"])
def test_empty_sequences_give_empty_outputs_and_the_initial_state(name, mode, layout):
    layer = LAYERS[name](3, 4, batch_first=layout == "batch-first")
    shape = {"time-first": (0, 2, 3), "batch-first": (2, 0, 3), "unbatched": (0, 3)}[layout]
    h0 = torch.rand(4) + 0.1 if layout == "unbatched" else torch.rand(2, 4) + 0.1
    out, h_last = layer(torch.randn(shape), h0, mode=mode)
    assert out.shape == shape[:-1] + (4,)
    torch.testing.assert_close(h_last.real if h_last.is_complex() else h_last, h0)
    if name in MEMORY_UNITS:
        _, _, trace = layer(torch.randn(shape), return_trace=True, mode=mode)
        assert trace.events.shape == shape[:-1] + (4,)


def test_empty_sequences_in_the_spiking_front_ends():
    cs = pytest.importorskip("cmru_neuro.snntorch")
    cn = pytest.importorskip("cmru_neuro.norse")
    neuron = cs.CMRU(sequence=True)
    mem = torch.randn(2, 3)
    spk, out = neuron(torch.randn(0, 2, 3), mem)
    assert spk.shape == (0, 2, 3) and out.shape == (0, 2, 3) and torch.equal(neuron.mem, mem)
    state = cn.CMRUState(torch.randn(2, 3), torch.zeros(2, 3))
    for mode in ("parallel", "sequential"):
        events, final = cn.BMRU(mode=mode)(torch.randn(0, 2, 3), state)
        assert events.shape == (0, 2, 3) and final is state
    with pytest.raises(ValueError, match="x: expected at least one time step for readout 'last', got T = 0"):
        MemoryNetwork(3, (4,), 2)(torch.randn(0, 2, 3))
    assert MemoryNetwork(3, (4,), 2, readout="sequence")(torch.randn(0, 2, 3)).shape == (0, 2, 2)


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("given", [torch.float64, torch.float16, torch.bfloat16])
def test_input_of_another_dtype_is_named(name, given):
    with pytest.raises(TypeError, match=rf"x: expected dtype torch.float32 \(the module's parameters\), got {given}"):
        LAYERS[name](3, 4)(torch.randn(6, 2, 3, dtype=given))


def test_state_and_step_input_of_another_dtype_are_named():
    unit = CMRU(3, 4)
    with pytest.raises(TypeError, match="h0: expected dtype torch.float32"):
        unit(torch.randn(6, 2, 3), torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="x_t: expected dtype torch.float32"):
        unit.step(torch.randn(2, 3, dtype=torch.float64))


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_moved_modules_work_end_to_end(name, dtype):
    """``.to(dtype)`` then forward and backward; the 16-bit ones on the composed path."""
    torch.manual_seed(0)
    reference = LAYERS[name](3, 4)
    layer = LAYERS[name](3, 4)
    layer.load_state_dict(reference.state_dict())
    layer = layer.double() if dtype == torch.float64 else layer.half() if dtype == torch.float16 else layer.to(dtype)
    x = torch.randn(12, 2, 3)
    out, _ = layer(x.to(dtype))
    out.float().square().sum().backward()
    grads = [p.grad for p in layer.parameters() if p.grad is not None]
    assert out.dtype == dtype and grads and all(g.dtype == dtype for g in grads)
    expected, _ = reference(x)
    if dtype == torch.float64 or name in ("lru", "mingru", "mingru-lin"):  # no gate to flip
        tolerance = 1e-5 if dtype == torch.float64 else 0.1
        torch.testing.assert_close(out.float(), expected, atol=tolerance, rtol=tolerance)


def test_moved_network_works_end_to_end():
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        net = MemoryNetwork(3, (4, 4), 2).to(dtype)
        out = net(torch.randn(9, 2, 3, dtype=dtype))
        out.float().sum().backward()
        assert out.dtype == dtype and out.shape == (2, 2)
