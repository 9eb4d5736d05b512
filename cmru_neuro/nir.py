"""NIR export and import for networks holding memory units.

:func:`to_nir` turns a chain of modules (``nn.Sequential`` / ``norse.torch.SequentialState``,
nested ones flattened) into a ``nir.NIRGraph``; :func:`from_nir` rebuilds a per-step snnTorch
``nn.Sequential`` or Norse ``SequentialState`` from one (or from a file). Standard layers map
to standard nodes:

=================================  =====================================================
module                             NIR node
=================================  =====================================================
``nn.Linear``                      ``Affine`` (``Linear`` without bias)
``snn.Leaky``                      ``LIF`` (snnTorch's convention: ``tau = 1e-4 / (1 - beta)``,
                                   ``r = tau / 1e-4``; reset mechanism kept in metadata)
Norse ``LIFBoxCell`` / ``LIFCell``  ``LIF`` / ``CubaLIF`` (``tau = 1 / tau_inv``, ``r = 1``)
Norse ``LIBoxCell`` / ``LICell``    ``LI`` / ``CubaLI`` (same convention); ``LILinearCell``:
                                   ``Linear`` then ``CubaLI``
our neurons and cells              :class:`CMRU` (below)
core ``CMRU`` / ``BMRU`` /          a sub-graph ``Input -> Affine (projection) -> CMRU
``AlphaCMRU`` layers               (output_state) -> Output``
=================================  =====================================================

Importing this module registers :class:`CMRU` with NIR, so ``nir.read`` loads files that hold
it. Round trip: ``from_nir(nir.read(path))`` gives the same outputs, step for step.

``to_nir(net, lowered=True, dt=...)`` writes our units (CMRU and BMRU, the threshold fixed
or from the input) in standard nodes only (:func:`lower`), for readers that never import
this package.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import nir
import nir.ir
import norse.torch as nt
import numpy as np
import snntorch as snn
import torch
from torch import nn

from . import layers
from . import norse as cn
from . import snntorch as cs
from .unit_kinds import neuron_kind

BACKENDS = ("snntorch", "norse")
SNNTORCH_DT = 1e-4  # snnTorch's NIR convention: tau = dt / (1 - beta)
NORSE_DT = 1e-3  # norse.torch.from_nir's default time step


@dataclass(eq=False)
class CMRU(nir.NIRNode):
    r"""Memory recurrent unit (the CMRU / BMRU / alpha-CMRU family), discrete time.

    One step per input sample, elementwise over H units::

        input  = [c | beta (threshold_from_input) | a (step_from_input)]    (k H,)
        z_t    = H(|c_t| - |beta_t|)               beta_t = threshold unless from input
        e_t    = z_t sign(c_t)                     event in {-1, 0, +1}
        h_t    = (1 - z_t (1 - epsilon)) h_{t-1} + s_t e_t,   h_0 = h0
        s_t    = alpha, or softplus(a_t) with step_from_input
        output = e_t, or h_t with output_state     (H,)

    Fields: ``alpha``, ``threshold``, ``epsilon`` (1: CMRU, 0: BMRU), ``h0``, each ``(H,)``;
    the three flags as booleans. ``threshold`` is ignored with ``threshold_from_input``,
    ``alpha`` with ``step_from_input``. H(0) = 1 and sign(0) = +1.
    """

    alpha: np.ndarray
    threshold: np.ndarray
    epsilon: np.ndarray
    h0: np.ndarray
    threshold_from_input: bool = False
    step_from_input: bool = False
    output_state: bool = False

    def __post_init__(self):
        for name in ("alpha", "threshold", "epsilon", "h0"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float32))
        shapes = {
            name: getattr(self, name).shape for name in ("alpha", "threshold", "epsilon", "h0")
        }
        if len(set(shapes.values())) != 1 or len(shapes["alpha"]) != 1:
            raise ValueError(
                f"CMRU: expected alpha, threshold, epsilon, h0 of one shape (H,), got {shapes}"
            )
        for name in ("threshold_from_input", "step_from_input", "output_state"):
            setattr(self, name, bool(getattr(self, name)))
        width = self.alpha.shape[0]
        streams = 1 + int(self.threshold_from_input) + int(self.step_from_input)
        self.input_type = {"input": np.array([streams * width])}
        self.output_type = {"output": np.array([width])}


def _register() -> None:
    """Let ``nir.read`` / ``nir.dict2NIRNode`` build :class:`CMRU` nodes."""
    known = getattr(nir.ir, "__all_ir")
    if "CMRU" not in known:
        known.append("CMRU")
    nir.ir.CMRU = CMRU


_register()


# --------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------


def to_nir(net: nn.Module, lowered: bool = False, dt: float = SNNTORCH_DT) -> nir.NIRGraph:
    """A chain of modules -> ``nir.NIRGraph`` (Input, one node per module, Output).

    ``lowered``: our units as standard nodes (:func:`lower`) instead of :class:`CMRU`, for
    the importer that steps with ``dt`` (``SNNTORCH_DT`` for snnTorch, ``NORSE_DT`` for Norse).
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"net: expected a torch.nn.Module, got {type(net).__name__}")
    nodes, width = [], None
    for index, module in enumerate(_chain(net)):
        exported = _export(module, width, index)
        if not lowered:
            nodes.append(exported)
        else:
            parts = exported.nodes.values() if isinstance(exported, nir.NIRGraph) else [exported]
            for node in parts:
                if isinstance(node, CMRU):
                    nodes.extend(lower(node, dt, f"net[{index}] ({type(module).__name__})"))
                elif not isinstance(node, (nir.Input, nir.Output)):
                    nodes.append(node)
        width = int(exported.output_type["output"][0])
    if not nodes:
        raise ValueError("net: expected at least one module to export, got an empty chain")
    return nir.NIRGraph.from_list(*nodes)


def lower(node: CMRU, dt: float = SNNTORCH_DT, where: str = "node") -> list[nir.NIRNode]:
    """A :class:`CMRU` node -> standard NIR nodes, in a chain, every threshold 0 (snnTorch's
    importer wants one threshold per node; NIR's thresholds are strict, ours are not). A
    fixed threshold ``beta``::

        Affine [-I; I], |beta|      (|beta| - c, c + |beta|)                    (2H,)
        LIF tau = dt, r = 1, 0      s1 = [c < |beta|], s2 = [c > -|beta|]       (2H,)
        Affine                      e = s2 - s1; where beta = 0, 1 - 2 s1       (H,)

    (``c >= |beta|`` is not ``s1``, ``c <= -|beta|`` not ``s2``; sign(0) = +1.) The threshold
    from the input (``[c | beta]`` in), in two threshold layers::

        Linear                      (beta - c, -c - beta, c + beta, c - beta, -c)  (5H,)
        LIF tau = dt, r = 1, 0      s1 .. s5 = [each > 0]                          (5H,)
        Affine                      (0.5 - s1 - s2, s5 - s3 - s4 - 0.5)            (2H,)
        LIF tau = dt, r = 1, 0      [c >= |beta|] and [-c >= |beta|, c < 0]        (2H,)
        Linear [I, -I]              e                                              (H,)

    Only a sum or difference of two of the reader's own values (or small integers) meets a
    threshold, and the sign of a rounded sum of two floats is exact: the events are ours to
    the bit, ties included, for the ``c`` and ``beta`` a reader computes. So the first node
    is not folded into the layer before (that would round differently), and no float just
    below a threshold is made up (an importer that rounds its membrane update, Norse's
    ``v + (x - v)``, would lose it). Then, with ``output_state``, ``I`` with
    ``r = alpha / dt`` and ``Affine (I, h0)``: h = h0 + alpha sum e.

    A LIF with ``tau = dt`` forgets its membrane in one Euler step of ``dt``, so an importer
    stepping with ``dt`` sees a threshold. Events hold for CMRU and BMRU; the state only for
    CMRU (a BMRU latches, which no standard node does). The first LIF node's metadata keeps
    the unit (``cmru_*`` keys, ``cmru_lowering`` naming the form), so :func:`from_nir`
    rebuilds our neuron; other readers ignore it.
    """
    if node.step_from_input:
        raise ValueError(
            f"{where}: lowered export expected a fixed step (step_from_input False), got "
            f"step_from_input=True (alpha-CMRU: its step is softplus of the input, which no "
            "standard node computes); export with lowered=False"
        )
    epsilon = set(np.unique(node.epsilon).tolist())
    if epsilon not in ({1.0}, {0.0}) or (node.output_state and neuron_kind(epsilon).level_rule != "count"):
        raise ValueError(
            f"{where}: lowered export expected epsilon all 1 (CMRU), or all 0 (BMRU) with event "
            f"output, got epsilon {sorted(epsilon)} with output_state={node.output_state}; "
            "export with lowered=False"
        )
    width = node.alpha.shape[0]
    identity = np.eye(width, dtype=np.float32)
    unit = {f"cmru_{name}": getattr(node, name) for name in _LOWERED_FIELDS}
    form = "differences" if node.threshold_from_input else "margins"
    metadata = {**unit, "cmru_lowering": form, **node.metadata}
    if node.threshold_from_input:
        nodes = _lowered_input_threshold(width, dt, metadata)
    else:
        magnitude, zero = np.abs(node.threshold), node.threshold == 0
        nodes = [
            nir.Affine(weight=np.concatenate([-identity, identity]), bias=np.tile(magnitude, 2)),
            _threshold_layer(np.zeros(2 * width, np.float32), dt, metadata),
            nir.Affine(  # e = s2 - s1, or 1 - 2 s1 where beta = 0
                weight=np.concatenate([np.diag(np.where(zero, -2.0, -1.0)),
                                       np.diag(np.where(zero, 0.0, 1.0))], axis=1).astype(np.float32),
                bias=zero.astype(np.float32),
            ),
        ]
    if node.output_state:
        nodes.append(nir.I(r=node.alpha.astype(np.float64) / dt))
        nodes.append(nir.Affine(weight=identity, bias=node.h0.copy()))
    return nodes


_LOWERED_FIELDS = ("alpha", "threshold", "epsilon", "h0", "output_state", "threshold_from_input")


def _threshold_layer(threshold: np.ndarray, dt: float, metadata: dict | None = None) -> nir.LIF:
    """A memoryless threshold at step ``dt``: LIF with ``tau = dt``, ``r = 1``, ``v = x``."""
    size = threshold.shape[0]
    return nir.LIF(tau=np.full(size, dt), r=np.ones(size), v_leak=np.zeros(size),
                   v_threshold=threshold, v_reset=np.zeros(size), metadata=metadata or {})


def _lowered_input_threshold(width: int, dt: float, metadata: dict) -> list[nir.NIRNode]:
    """The events of :func:`lower` for a threshold from the input: ``[c | beta]`` in."""
    one, zero = np.eye(width, dtype=np.float32), np.zeros((width, width), np.float32)
    differences = np.block([
        [-one, one],    # beta - c:   s1 = [beta - c > 0]   (not c >= beta)
        [-one, -one],   # -c - beta:  s2 = [-c - beta > 0]  (not c >= -beta)
        [one, one],     # c + beta:   s3 = [c + beta > 0]   (not -c >= beta)
        [one, -one],    # c - beta:   s4 = [c - beta > 0]   (not -c >= -beta)
        [-one, zero],   # -c:         s5 = [-c > 0]         (c < 0)
    ])
    combine = np.block([[-one, -one, zero, zero, zero], [zero, zero, -one, -one, one]])
    bias = np.concatenate([np.full(width, 0.5), np.full(width, -0.5)]).astype(np.float32)
    zeros = np.zeros(5 * width, np.float32)
    return [
        nir.Linear(weight=differences),
        _threshold_layer(zeros, dt, metadata),
        nir.Affine(weight=combine, bias=bias),
        _threshold_layer(zeros[: 2 * width], dt),
        nir.Linear(weight=np.concatenate([one, -one], axis=1)),
    ]


def _chain(net: nn.Module) -> list[nn.Module]:
    if isinstance(net, (nn.Sequential, nt.SequentialState)):
        return [leaf for child in net for leaf in _chain(child)]
    return [net]


# Norse cell <-> NIR node, and each parameter's NIR field (``*_inv`` parameters are inverted:
# ``tau = 1 / tau_inv``); ``r = 1`` on export. Norse's LILinearCell exports as Linear + CubaLI.
_NORSE_CELLS = {
    nt.LIFBoxCell: (nir.LIF, nt.LIFBoxParameters,
                    {"tau_mem_inv": "tau", "v_leak": "v_leak", "v_th": "v_threshold",
                     "v_reset": "v_reset"}),
    nt.LIFCell: (nir.CubaLIF, nt.LIFParameters,
                 {"tau_syn_inv": "tau_syn", "tau_mem_inv": "tau_mem", "v_leak": "v_leak",
                  "v_th": "v_threshold", "v_reset": "v_reset"}),
    nt.LIBoxCell: (nir.LI, nt.LIBoxParameters, {"tau_mem_inv": "tau", "v_leak": "v_leak"}),
    nt.LICell: (nir.CubaLI, nt.LIParameters,
                {"tau_syn_inv": "tau_syn", "tau_mem_inv": "tau_mem", "v_leak": "v_leak"}),
}
_NEURONS = (cs.MemoryNeuron, cn.MemoryModule, *_NORSE_CELLS)  # and snn.Leaky itself


def _export(module: nn.Module, width, index: int) -> nir.NIRNode:
    where = f"net[{index}] ({type(module).__name__})"
    if isinstance(module, nn.Linear):
        weight = _numpy(module.weight)
        if module.bias is None:
            return nir.Linear(weight=weight)
        return nir.Affine(weight=weight, bias=_numpy(module.bias))
    if isinstance(module, layers.MemoryUnit) and not isinstance(module, layers.FirstQuadrantBMRU):
        return _export_layer(module)
    if isinstance(module, nt.LILinearCell):
        weight = _numpy(module.input_weights)
        return nir.NIRGraph.from_list(
            nir.Linear(weight=weight), _export_norse(nt.LICell, module.p, weight.shape[0])
        )
    if not (isinstance(module, _NEURONS) or type(module) is snn.Leaky):
        raise TypeError(
            f"{where}: expected one of nn.Linear, snn.Leaky, norse LIFBoxCell / LIFCell / "
            "LIBoxCell / LICell / LILinearCell, the cmru_neuro neurons or layers (or "
            "nn.Sequential / SequentialState of them)"
        )
    width = _width_of(module, width, where)
    if isinstance(module, (cs.MemoryNeuron, cn.MemoryModule)):
        _check_representable(module, where)
        return _export_neuron(module, width)
    if type(module) is snn.Leaky:
        return _export_leaky(module, width, where)
    return _export_norse(next(c for c in _NORSE_CELLS if isinstance(module, c)), module.p, width)


def _export_norse(cell: type, p, width: int) -> nir.NIRNode:
    """A Norse cell's parameters -> its NIR node (``tau = 1 / tau_inv``, ``r = 1``)."""
    node_type, _, fields = _NORSE_CELLS[cell]
    values = {
        field: _vector(1.0 / getattr(p, name) if name.endswith("_inv") else getattr(p, name), width)
        for name, field in fields.items()
    }
    return node_type(r=_vector(1.0, width), **values)


def _width_of(module: nn.Module, width, where: str) -> int:
    """H of an elementwise neuron: its own per-neuron parameters, else the previous node."""
    if isinstance(module, (cs.MemoryNeuron, cn.MemoryModule)):
        streams = module.streams
        own = [
            v.shape[-1]
            for v in (module.threshold, getattr(module, "alpha", None))
            if v is not None and v.dim()
        ]
        if own:
            return own[0]
        if width is not None and width % streams:
            raise ValueError(f"{where}: expected input width a multiple of {streams}, got {width}")
        width = None if width is None else width // streams
    if width is None:
        raise ValueError(
            f"{where}: cannot tell its width; put a Linear before it or give it per-neuron (H,) parameters"
        )
    return width


def _check_representable(module, where: str) -> None:
    """snnTorch options the CMRU node has no field for."""
    if not isinstance(module, cs.MemoryNeuron):
        return
    if module.state_quant:
        raise ValueError(f"{where}: state_quant has no NIR equivalent; export without it")
    if not torch.all(module.graded_spikes_factor == 1):
        raise ValueError(
            f"{where}: graded_spikes_factor has no NIR field; expected 1, got "
            f"{module.graded_spikes_factor.tolist()} (fold it into the next Linear)"
        )


def _export_neuron(module, width: int) -> CMRU:
    """Our snnTorch neurons and Norse cells / sequences."""
    threshold = module.threshold
    alpha = None if module.step_from_input else module.alpha
    return CMRU(
        alpha=_vector(1.0 if alpha is None else alpha, width),
        threshold=_vector(0.0 if module.threshold_from_input else threshold, width),
        epsilon=_vector(module.epsilon, width),
        h0=_vector(0.0 if module.h0 is None else module.h0, width),
        threshold_from_input=module.threshold_from_input,
        step_from_input=module.step_from_input,
        output_state=module.output_state,
        metadata=_snntorch_metadata(module),
    )


def _snntorch_metadata(module) -> dict:
    """snnTorch's ``output`` flag (return ``(spk, mem)`` with ``init_hidden``), kept so the
    rebuilt step loop returns what the original did."""
    return {"snntorch_output": bool(module.output)} if isinstance(module, snn.SpikingNeuron) else {}


def _snntorch_output(node) -> bool:
    return bool(np.asarray(node.metadata.get("snntorch_output", False)))


def _export_layer(layer: layers.MemoryUnit) -> nir.NIRGraph:
    """A core layer (projection inside) -> sub-graph Affine -> CMRU (state output)."""
    width = layer.hidden_size
    projection = layer.projection
    bias = projection.bias if projection.bias is not None else torch.zeros(projection.out_features)
    unit = CMRU(
        alpha=_vector(layer.alpha, width),
        threshold=_vector(layer.threshold if layer.threshold_mode == "fixed" else 0.0, width),
        epsilon=_vector(layer.epsilon, width),
        h0=_vector(layer.initial_state(1)[0], width),
        threshold_from_input=layer.threshold_mode == "input",
        step_from_input=layer.input_step,
        output_state=True,
    )
    return nir.NIRGraph.from_list(
        nir.Affine(weight=_numpy(projection.weight), bias=_numpy(bias)), unit
    )


def _export_leaky(module: snn.Leaky, width: int, where: str) -> nir.LIF:
    beta = _vector(module.beta.clamp(0, 1), width).astype(np.float64)
    with np.errstate(divide="ignore"):
        tau = SNNTORCH_DT / (1.0 - beta)
    return nir.LIF(
        tau=tau,
        r=tau / SNNTORCH_DT,
        v_leak=np.zeros(width),
        v_threshold=_vector(module.threshold, width),
        v_reset=np.zeros(width),
        metadata={"snntorch_reset_mechanism": module.reset_mechanism, **_snntorch_metadata(module)},
    )


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def _vector(value, width: int) -> np.ndarray:
    """A scalar or ``(H,)`` value as a float32 ``(H,)`` array."""
    array = _numpy(value) if isinstance(value, torch.Tensor) else np.asarray(value)
    return np.broadcast_to(array.astype(np.float32), (width,)).copy()


# --------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------


def from_nir(
    graph: nir.NIRGraph | str | pathlib.Path, backend: str = "snntorch", dt: float = 0.001
):
    """A chain graph (or a ``.nir`` file) -> per-step modules.

    ``backend="snntorch"``: ``nn.Sequential`` with ``init_hidden`` neurons; call it on each
    ``x[t]`` after :func:`cmru_neuro.reset.reset`. ``backend="norse"``: ``SequentialState`` of
    cells (``dt`` for Norse's LIF cells); call ``out, state = net(x[t], state)``.
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"backend: expected one of {', '.join(map(repr, BACKENDS))}, got {backend!r}"
        )
    if isinstance(graph, (str, pathlib.Path)):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph: expected a nir.NIRGraph or a path, got {type(graph).__name__}")
    ordered = _raise_lowered(_ordered(graph, "graph"))
    modules = [_import(node, name, backend, dt) for name, node in ordered]
    return nn.Sequential(*modules) if backend == "snntorch" else nt.SequentialState(*modules)


def _raise_lowered(ordered: list[tuple[str, nir.NIRNode]]) -> list[tuple[str, nir.NIRNode]]:
    """Lowered units (a LIF whose metadata keeps the unit, see :func:`lower`) back to
    :class:`CMRU` nodes: the lowering's own nodes go (the one before the LIF, those after it
    up to the events, and ``I`` and ``Affine`` for the state). Files lowered before
    2026-12-07 (no ``cmru_lowering``) folded an ``[I; -I]`` stack into the layer before: that
    keeps its top half."""
    result, index = [], 0
    while index < len(ordered):
        name, node = ordered[index]
        metadata = node.metadata if isinstance(node, nir.LIF) else {}
        unit = {"threshold_from_input": False}  # absent from the older files
        unit.update({f: metadata[f"cmru_{f}"] for f in _LOWERED_FIELDS if f"cmru_{f}" in metadata})
        if len(unit) != len(_LOWERED_FIELDS):
            result.append((name, node))
            index += 1
            continue
        flags = {f: bool(np.asarray(unit[f])) for f in ("output_state", "threshold_from_input")}
        form = _text(metadata.get("cmru_lowering", "stack"))
        before = result.pop()[1] if result else None
        if form == "stack" and before is not None and not np.asarray(before.metadata.get("cmru_stack", False)):
            top = {"weight": before.weight[: len(before.weight) // 2]}
            if isinstance(before, nir.Affine):
                top["bias"] = before.bias[: len(before.bias) // 2]
            result.append((f"{name}.input", type(before)(**top)))
        extra = {k: v for k, v in metadata.items() if not k.startswith("cmru_")}
        result.append((name, CMRU(**{**unit, **flags}, metadata=extra)))
        index += (4 if form == "differences" else 2) + (2 if flags["output_state"] else 0)
    return result


def _ordered(graph: nir.NIRGraph, where: str) -> list[tuple[str, nir.NIRNode]]:
    """The nodes of a chain from Input to Output (both left out), sub-graphs inlined."""
    following = {}
    for source, target in graph.edges:
        if source in following:
            raise ValueError(
                f"{where}: expected a chain, but node {source!r} feeds more than one node"
            )
        following[source] = target
    current = next(
        (name for name, node in graph.nodes.items() if isinstance(node, nir.Input)), None
    )
    if current is None:
        raise ValueError(f"{where}: expected an Input node, got none")
    ordered, seen = [], {current}
    while current in following:
        current = following[current]
        if current in seen:
            raise ValueError(f"{where}: expected a chain, found a cycle through {current!r}")
        seen.add(current)
        node = graph.nodes[current]
        if isinstance(node, nir.NIRGraph):
            ordered.extend(_ordered(node, f"{where}.{current}"))
        elif not isinstance(node, nir.Output):
            ordered.append((f"{where}.{current}", node))
    return ordered


def _import(node: nir.NIRNode, where: str, backend: str, dt: float) -> nn.Module:
    if isinstance(node, (nir.Affine, nir.Linear)):
        bias = isinstance(node, nir.Affine)
        linear = nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=bias)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.asarray(node.weight)))
            if bias:
                linear.bias.copy_(torch.from_numpy(np.asarray(node.bias)))
        return linear
    if isinstance(node, CMRU):
        return _import_unit(node, where, backend)
    if isinstance(node, nir.LIF) and backend == "snntorch":
        with np.errstate(divide="ignore"):
            beta = 1.0 - SNNTORCH_DT / np.asarray(node.tau, dtype=np.float64)
        mechanism = _text(node.metadata.get("snntorch_reset_mechanism", "zero"))
        return snn.Leaky(
            beta=_tensor(beta),
            threshold=_tensor(node.v_threshold),
            reset_mechanism=mechanism,
            init_hidden=True,
            output=_snntorch_output(node),
        )
    if backend == "norse" and type(node) in _NORSE_NODES:
        cell = _NORSE_NODES[type(node)]
        _, parameters, fields = _NORSE_CELLS[cell]
        values = {
            name: _tensor(1.0 / getattr(node, f) if name.endswith("_inv") else getattr(node, f))
            for name, f in fields.items()
        }
        return cell(parameters(**values), dt=dt)
    raise TypeError(f"{where}: no {backend} module for a {type(node).__name__} node")


_NORSE_NODES = {node_type: cell for cell, (node_type, _, _) in _NORSE_CELLS.items()}


def _import_unit(node: CMRU, where: str, backend: str) -> nn.Module:
    neuron = neuron_kind(np.unique(node.epsilon).tolist(), node.step_from_input, where).neuron
    threshold = None if node.threshold_from_input else _tensor(node.threshold)
    alpha = _tensor(node.alpha)
    h0 = _tensor(node.h0) if np.any(node.h0) else None
    if backend == "snntorch":
        options = {
            "size": node.h0.shape[0],
            "threshold_from_input": node.threshold_from_input,
            "h0": h0,
        }
        if threshold is not None:
            options["threshold"] = threshold
        if not node.step_from_input:
            options["alpha"] = alpha
        return getattr(cs, neuron)(init_hidden=True, output=_snntorch_output(node),
                                     output_state=node.output_state, **options)
    p = cn.CMRUParameters(threshold=threshold, alpha=alpha)
    return getattr(cn, neuron + "Cell")(p, output_state=node.output_state, h0=h0)


def _tensor(array) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["BACKENDS", "CMRU", "NORSE_DT", "SNNTORCH_DT", "from_nir", "lower", "to_nir"]
