"""The Lava process graph of a network: validation before any run, and :func:`to_lava`.

:func:`check_spec` checks a :class:`~cmru_neuro.golden.NetworkSpec` (shapes chain, integers
fit the format); :func:`to_lava` builds ``Dense -> unit Process -> ... -> Readout``
(:mod:`cmru_neuro.adapters.lava.processes`); :func:`check_graph` checks a graph users built
around our units. Lava is imported only inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from cmru_neuro.golden import DECAY_UNIT, STATE_LIMIT, NetworkSpec
from cmru_neuro.unit_kinds import unit_kind
from cmru_neuro.network import MemoryNetwork
from cmru_neuro.quant import network_spec

PAYLOAD_BITS = 24  # graded-spike payload width on every connection
DENSE_LIMIT = 2**31 - 1  # Lava's fixed-point Dense accumulates in int32


@dataclass
class LavaNetwork:
    """The process graph of one network (no I/O yet).

    input_port: the first Dense's ``s_in`` (send input deltas here); output_port: the
    Readout's ``s_out``. latency: steps from an input to its readout (one per Dense).
    """

    spec: NetworkSpec
    denses: list
    units: list
    readout: object
    sequence_length: int

    @property
    def input_port(self):
        return self.denses[0].s_in

    @property
    def output_port(self):
        return self.readout.s_out

    @property
    def latency(self) -> int:
        return len(self.denses)

    @property
    def select_tag(self) -> str:
        return "fixed_pt" if self.spec.fixed_point else "floating_pt"


def import_lava():
    """Import lava (its runtime first, so an earlier implicit ``fork`` start method does
    not make it fail) and return :mod:`cmru_neuro.adapters.lava.processes`. Call it before
    importing anything from lava yourself."""
    from cmru_neuro.adapters.lava import processes

    return processes


def as_spec(network) -> NetworkSpec:
    if isinstance(network, (MemoryNetwork, nn.Sequential)):
        return network_spec(network)
    if not isinstance(network, NetworkSpec):
        raise TypeError(
            f"network: expected a MemoryNetwork, an snnTorch / Norse pipeline (nn.Sequential) or a NetworkSpec "
            f"(quantize(...).spec), got {type(network).__name__}"
        )
    return network


def check_spec(spec: NetworkSpec) -> None:
    """Shapes chain layer to layer; in fixed point every value fits the integer format."""
    size = spec.input_size
    for index, layer in enumerate(spec.layers):
        unit = layer.unit
        unit_kind(unit.kind, f"layer {index} kind").check_deployed(unit.output, unit.streams, f"layer {index}")
        expected = (unit.streams * unit.hidden_size, size)
        if layer.weights.shape != expected or unit.bias.shape != (expected[0],):
            raise ValueError(
                f"layer {index}: expected weights {expected} and bias ({expected[0]},) "
                f"(streams * hidden, input), got {layer.weights.shape} and {unit.bias.shape}"
            )
        size = unit.hidden_size
    readout = spec.readout
    if readout.weights.shape != (spec.output_size, size):
        raise ValueError(f"readout: expected weights {(spec.output_size, size)}, got {readout.weights.shape}")
    unit_decay = DECAY_UNIT if spec.fixed_point else 1
    for name in ("synapse_decay", "membrane_decay"):
        factors = getattr(readout, name)
        if factors.shape != (spec.output_size,) or np.any(factors < 0) or np.any(factors > unit_decay):
            raise ValueError(f"readout {name}: expected ({spec.output_size},) values in [0, {unit_decay}], got "
                             f"shape {factors.shape} in [{factors.min(initial=0)}, {factors.max(initial=0)}]")
    if not spec.fixed_point:
        return
    for index, layer in enumerate(spec.layers):
        _check_weights(layer.weights, f"layer {index} weights")
        for name in ("bias", "threshold", "threshold_low", "initial_level"):
            _check_integers(getattr(layer.unit, name), f"layer {index} {name}")
    _check_weights(readout.weights, "readout weights")
    for name in ("bias", "synapse_decay", "membrane_decay", "membrane_bias", "threshold"):
        _check_integers(getattr(readout, name), f"readout {name}")


def _check_integers(values: np.ndarray, name: str) -> None:
    if values.dtype.kind not in "iu" or (values.size and np.max(np.abs(values)) > STATE_LIMIT):
        raise ValueError(f"{name}: expected 24-bit integers, got dtype {values.dtype} with max |value| "
                         f"{np.max(np.abs(values), initial=0)}")


def _check_weights(weights: np.ndarray, name: str) -> None:
    if weights.dtype.kind not in "iu" or np.any(weights % 2) or weights.min(initial=0) < -256 or weights.max(initial=0) > 254:
        raise ValueError(f"{name}: expected even integers in [-256, 254] (8-bit mixed-sign mantissas), "
                         f"got dtype {weights.dtype} in [{weights.min()}, {weights.max()}]")


def to_lava(
    network: MemoryNetwork | nn.Sequential | NetworkSpec, *, sequence_length: int, sequences: int | None = None
) -> LavaNetwork:
    """Build the Lava process graph; units and readout restart every ``sequence_length``
    steps and stop after ``sequences`` sequences (None: run on).

    ``network``: a float MemoryNetwork or snnTorch / Norse pipeline (runs ``floating_pt``)
    or a NetworkSpec (an integer one runs ``fixed_pt``). Everything is validated here,
    before any ``run()``; the units' ``s_out`` refuse binary receivers when connected.
    """
    spec = as_spec(network)
    check_spec(spec)
    return build_graph(spec, sequence_length, sequences)


def build_graph(spec: NetworkSpec, sequence_length: int, sequences: int | None) -> LavaNetwork:
    """:func:`to_lava` on a spec :func:`check_spec` passed."""
    processes = import_lava()
    from lava.proc.dense.process import Dense
    from lava.utils.weightutils import SignMode

    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 1:
        raise ValueError(f"sequence_length: expected a positive integer, got {sequence_length!r}")
    fixed = {"sign_mode": SignMode.MIXED, "weight_exp": 0, "num_weight_bits": 8} if spec.fixed_point else {}
    denses, units = [], []
    for index, layer in enumerate(spec.layers):
        unit = layer.unit
        dense = Dense(weights=layer.weights, num_message_bits=PAYLOAD_BITS, name=f"dense{index}", **fixed)
        kind = unit_kind(unit.kind)
        process = getattr(processes, kind.lava_process)(
            shape=(unit.hidden_size,), streams=unit.streams, bias=unit.bias,
            threshold=unit.threshold, initial_level=unit.initial_level, sequence_length=sequence_length,
            reset_offset=index + 2, sequences=sequences, output=unit.output,
            accumulate=spec.accumulates(index), name=f"{unit.kind}{index}",
            **({"threshold_low": unit.threshold_low} if kind.first_quadrant else {}),
        )
        if units:
            units[-1].s_out.connect(dense.s_in)
        dense.a_out.connect(process.a_in)
        denses.append(dense)
        units.append(process)
    dense = Dense(weights=spec.readout.weights, num_message_bits=PAYLOAD_BITS, name="dense_readout", **fixed)
    real = spec.readout
    readout = processes.Readout(
        shape=(spec.output_size,), bias=real.bias, synapse_decay=real.synapse_decay,
        membrane_decay=real.membrane_decay, membrane_bias=real.membrane_bias, threshold=real.threshold,
        reset_mechanism=real.reset_mechanism, sequence_length=sequence_length,
        reset_offset=len(spec.layers) + 2, sequences=sequences,
        accumulate=spec.accumulates(len(spec.layers)), name="readout",
    )
    units[-1].s_out.connect(dense.s_in)
    dense.a_out.connect(readout.a_in)
    denses.append(dense)
    return LavaNetwork(spec, denses, units, readout, sequence_length)


def check_graph(processes) -> None:
    """Before ``run()`` of a graph you built around our units: every memory-unit Process
    reachable from ``processes`` (one Process or a list) must send to receivers that take
    graded payloads (``num_message_bits > 0``); ValueError names the first that does not.
    (``s_out.connect`` checks at once; this also covers ``dense.s_in.connect_from(...)``.)"""
    lava = import_lava()
    pending = list(processes) if isinstance(processes, (list, tuple)) else [processes]
    seen = set()
    while pending:
        process = pending.pop()
        if id(process) in seen:
            continue
        seen.add(id(process))
        for port in process.out_ports.members:
            if isinstance(process, lava.MemoryUnitProcess):
                lava.check_receivers(port)
            pending.extend(receiver.process for receiver in port.out_connections)
        pending.extend(sender.process for port in process.in_ports.members for sender in port.in_connections)


__all__ = ["DENSE_LIMIT", "PAYLOAD_BITS", "LavaNetwork", "as_spec", "build_graph", "check_graph", "check_spec",
           "import_lava", "to_lava"]
