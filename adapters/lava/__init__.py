"""Run memory-unit networks on Lava's simulators (``Loihi2SimCfg``).

:func:`to_lava` builds the process graph of a :class:`~cmru_neuro.quant.NetworkSpec` (or a
float :class:`~cmru_neuro.network.MemoryNetwork`)::

    Dense(W_1) -> CMRU/BMRU/FirstQuadrantBMRU -> Dense(W_2) -> ... -> Dense(W_r) -> Readout

The spec comes from a MemoryNetwork or from an snnTorch / Norse pipeline
(:func:`cmru_neuro.quant.pipeline_spec`). A float spec runs the ``floating_pt`` ProcessModels, an integer spec (from
:func:`cmru_neuro.quant.quantize`) the ``fixed_pt`` ones, which equal the numpy golden model
bit for bit. :func:`run_on_lava` adds RingBuffer source and sink, runs a batch of sequences
back to back, and returns outputs aligned with the torch model.

Lava is imported only inside these functions: ``import cmru_neuro`` never imports it (it
sets the multiprocessing start method on import and exists only on Python 3.10).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import threading
import time
from dataclasses import dataclass

import numpy as np
from torch import Tensor, nn

from cmru_neuro.network import MemoryNetwork
from cmru_neuro.quant import (
    DECAY_UNIT,
    KINDS,
    READOUT_SATURATIONS,
    STATE_LIMIT,
    UNIT_OUTPUTS,
    UNIT_SATURATIONS,
    NetworkSpec,
    Simulation,
    encode_inputs,
    logits,
    network_spec,
    simulate,
)

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


def _as_spec(network) -> NetworkSpec:
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
        if unit.kind not in KINDS:
            raise ValueError(f"layer {index}: expected a unit kind in {KINDS}, got {unit.kind!r}")
        if unit.output not in UNIT_OUTPUTS or (unit.kind == "fq-bmru" and unit.output != "changes"):
            raise ValueError(f"layer {index}: expected output in {UNIT_OUTPUTS} ('changes' for fq-bmru), "
                             f"got {unit.output!r}")
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
    processes = import_lava()
    from lava.proc.dense.process import Dense
    from lava.utils.weightutils import SignMode

    spec = _as_spec(network)
    check_spec(spec)
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 1:
        raise ValueError(f"sequence_length: expected a positive integer, got {sequence_length!r}")
    unit_processes = {"cmru": processes.CMRU, "bmru": processes.BMRU, "fq-bmru": processes.FirstQuadrantBMRU}
    fixed = {"sign_mode": SignMode.MIXED, "weight_exp": 0, "num_weight_bits": 8} if spec.fixed_point else {}
    denses, units = [], []
    for index, layer in enumerate(spec.layers):
        unit = layer.unit
        dense = Dense(weights=layer.weights, num_message_bits=PAYLOAD_BITS, name=f"dense{index}", **fixed)
        process = unit_processes[unit.kind](
            shape=(unit.hidden_size,), streams=unit.streams, bias=unit.bias,
            threshold=unit.threshold, threshold_low=unit.threshold_low,
            initial_level=unit.initial_level, sequence_length=sequence_length,
            reset_offset=index + 2, sequences=sequences, output=unit.output,
            accumulate=spec.accumulates(index), name=f"{unit.kind}{index}",
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


@dataclass
class LavaRun:
    """What :func:`run_on_lava` returns.

    outputs: ``(T, B, O)`` readout per step, aligned with the torch model (integers in
        fixed point, in units of ``2**spec.readout.exponent``); logits: the model's output.
    events: per layer, non-zero events sent; saturations: as in :class:`Simulation`.
    reference: the numpy golden model on the same inputs (validated before the run).
    steps: Lava time steps run; seconds: wall time of ``run()`` (compile and spawn included).
    """

    outputs: np.ndarray
    logits: Tensor
    events: list
    saturations: dict
    reference: Simulation
    steps: int
    seconds: float


def source_data(spec: NetworkSpec, inputs: Tensor, extra_steps: int) -> np.ndarray:
    """What the RingBuffer source sends: ``(F, B*T + extra_steps)`` input deltas, the batch
    back to back (sequence b at steps ``b*T .. b*T + T - 1``), zeros after."""
    encoded = encode_inputs(spec, inputs)
    steps, batch, features = encoded.shape
    stream = encoded.transpose(1, 0, 2).reshape(batch * steps, features)
    deltas = np.diff(stream, axis=0, prepend=np.zeros((1, features), stream.dtype))
    return np.concatenate([deltas, np.zeros((extra_steps, features), deltas.dtype)]).T


def _check_dense_range(spec: NetworkSpec, data: np.ndarray, reference: Simulation) -> None:
    """Fixed point: payloads fit 24 bits and no Dense overflows int32 (before ``run()``)."""
    largest_input = float(np.max(np.abs(data), initial=0))
    # level changes: between sequences a level may jump by twice its largest value; events: +-1
    largest_events = [largest_input] + [1 if layer.unit.output == "events" else 2 * level
                                        for layer, level in zip(spec.layers, reference.largest_level)]
    weights = [layer.weights for layer in spec.layers] + [spec.readout.weights]
    for index, (events, matrix) in enumerate(zip(largest_events, weights)):
        name = f"layer {index}" if index < len(spec.layers) else "readout"
        if events > STATE_LIMIT:
            raise ValueError(f"{name}: input events up to {events:.0f} overflow the {PAYLOAD_BITS}-bit payload")
        bound = events * float(np.max(np.abs(matrix).sum(axis=1), initial=0))
        if bound > DENSE_LIMIT:
            raise ValueError(f"{name}: Dense sums up to {bound:.0f} would overflow Lava's int32 accumulator")


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


def run_on_lava(
    network: MemoryNetwork | nn.Sequential | NetworkSpec,
    inputs: Tensor,
    *,
    timeout: float = 120.0,
) -> LavaRun:
    """Run ``inputs`` ``(T, B, F)`` through the network on Lava's CPU simulator.

    The B sequences run back to back in one ``run()`` of ``B*T + latency`` steps (RingBuffer
    source and sink); outputs come back ``(T, B, O)``, shifted by the Dense delays so step t
    matches the torch model's step t. Before ``run()``: shapes, the integer format, the input
    range, and the golden model's prediction (an accumulator overflow raises ValueError). The
    runtime is stopped in every case; after ``timeout`` seconds the run's worker processes
    are terminated and TimeoutError is raised.
    """
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    spec = _as_spec(network)
    check_spec(spec)
    reference = simulate(spec, inputs)
    overflow = {k: v for k, v in reference.saturations.items() if "accumulator" in k}
    if overflow:
        raise ValueError(f"inputs: the integer model's accumulators would overflow 24 bits ({overflow}); "
                         f"the sigma-delta links cannot carry that")
    length, batch, _ = reference.outputs.shape
    graph = to_lava(spec, sequence_length=length, sequences=batch)
    steps = batch * length + graph.latency
    data = source_data(spec, inputs, graph.latency)
    if spec.fixed_point:
        _check_dense_range(spec, data, reference)
    source = Source(data=data)
    sink = Sink(shape=(spec.output_size,), buffer=steps)
    source.s_out.connect(graph.input_port)
    graph.output_port.connect(sink.a_in)
    workers = _Workers()
    started = time.perf_counter()
    try:
        workers.call(lambda: sink.run(condition=RunSteps(num_steps=steps),
                                      run_cfg=Loihi2SimCfg(select_tag=graph.select_tag)), timeout, "run")
        seconds = time.perf_counter() - started
        received = sink.data.get()
        events = [int(unit.events_sent.get()[0]) for unit in graph.units]
        counts = {}
        for index, unit in enumerate(graph.units):
            counts.update(zip((f"layer {index} {part}" for part in UNIT_SATURATIONS), unit.saturations.get()))
        counts.update(zip((f"readout {part}" for part in READOUT_SATURATIONS), graph.readout.saturations.get()))
    finally:
        if not workers.terminated:
            workers.call(sink.stop, timeout, "stop")
    stream = received[:, graph.latency:graph.latency + batch * length]
    outputs = stream.reshape(spec.output_size, batch, length).transpose(2, 1, 0)
    outputs = np.rint(outputs).astype(np.int64) if spec.fixed_point else outputs.astype(np.float64)
    return LavaRun(outputs, logits(spec, outputs), events, {k: int(v) for k, v in counts.items() if v},
                   reference, steps, seconds)


class _Workers:
    """Calls into Lava's runtime with a deadline; on a miss (or Ctrl-C), ends the worker
    processes this run started (found by their ids, nothing else) and raises TimeoutError
    (or re-raises KeyboardInterrupt)."""

    SPAWN_GRACE = 3.0  # seconds to keep ending workers a runtime still spawns after the deadline

    def __init__(self):
        self.before = set(multiprocessing.active_children())
        self.terminated = False

    def call(self, function, timeout: float, what: str) -> None:
        errors = []

        def target():
            try:
                function()
            except Exception as error:  # noqa: BLE001  re-raised in the caller's thread
                errors.append(error)

        thread = threading.Thread(target=target, name=f"lava-{what}", daemon=True)
        thread.start()
        try:
            thread.join(timeout)
        except KeyboardInterrupt:  # Ctrl-C: end this run's workers, then let it propagate
            self.terminate(thread)
            raise
        if thread.is_alive():
            self.terminate(thread)
            raise TimeoutError(f"Lava {what}() did not finish within {timeout} s; its worker processes were ended")
        if errors:
            raise errors[0]

    def terminate(self, thread: threading.Thread) -> None:
        self.terminated = True
        deadline = time.monotonic() + self.SPAWN_GRACE
        while True:
            children = set(multiprocessing.active_children()) - self.before
            for child in children:
                child.terminate()
            multiprocessing.connection.wait([child.sentinel for child in children], timeout=1.0)
            for child in children:
                if child.is_alive():
                    child.kill()
            if not thread.is_alive() or time.monotonic() > deadline:
                return
            thread.join(0.1)


__all__ = ["LavaNetwork", "LavaRun", "check_graph", "check_spec", "import_lava", "run_on_lava", "source_data",
           "to_lava"]
