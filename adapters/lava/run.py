"""Run a network on Lava's CPU simulator: :func:`run_on_lava`.

The batch runs back to back in one ``run()`` (RingBuffer source and sink), after every
check (spec, input range, the golden model's prediction, Dense ranges); the runtime is
stopped in every case and its workers ended on a timeout or Ctrl-C (:class:`_Workers`).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import threading
import time
from dataclasses import dataclass

import numpy as np
from cmru_neuro.adapters.lava.build import (
    DENSE_LIMIT,
    PAYLOAD_BITS,
    as_spec,
    build_graph,
    check_spec,
    import_lava,
)
from torch import Tensor, nn

from cmru_neuro.golden import (
    READOUT_SATURATIONS,
    STATE_LIMIT,
    UNIT_SATURATIONS,
    NetworkSpec,
    Simulation,
    encode_inputs,
    logits,
    simulate_encoded,
)
from cmru_neuro.network import MemoryNetwork


@dataclass
class LavaRun:
    """What :func:`run_on_lava` returns.

    outputs: ``(T, B, O)`` readout per step, aligned with the torch model (integers in
        fixed point, in units of ``2**spec.readout.exponent``); logits: the model's output.
    messages: per layer, the non-zero values it sent (its changes or events); saturations:
        as in :class:`Simulation`.
    reference: the numpy golden model on the same inputs (validated before the run).
    steps: Lava time steps run; seconds: wall time of ``run()`` (compile and spawn included).
    """

    outputs: np.ndarray
    logits: Tensor
    messages: list
    saturations: dict
    reference: Simulation
    steps: int
    seconds: float


def source_data(spec: NetworkSpec, inputs: Tensor, extra_steps: int) -> np.ndarray:
    """What the RingBuffer source sends: ``(F, B*T + extra_steps)`` input deltas, the batch
    back to back (sequence b at steps ``b*T .. b*T + T - 1``), zeros after."""
    return _deltas(encode_inputs(spec, inputs), extra_steps)


def _deltas(encoded: np.ndarray, extra_steps: int) -> np.ndarray:
    """:func:`source_data` of inputs :func:`~cmru_neuro.golden.encode_inputs` encoded."""
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

    spec = as_spec(network)
    check_spec(spec)
    encoded = encode_inputs(spec, inputs)
    reference = simulate_encoded(spec, encoded)
    overflow = {k: v for k, v in reference.saturations.items() if "accumulator" in k}
    if overflow:
        raise ValueError(f"inputs: the integer model's accumulators would overflow 24 bits ({overflow}); "
                         f"the sigma-delta links cannot carry that")
    length, batch, _ = reference.outputs.shape
    graph = build_graph(spec, length, batch)
    steps = batch * length + graph.latency
    data = _deltas(encoded, graph.latency)
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
        messages = [int(unit.messages_sent.get()[0]) for unit in graph.units]
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
    return LavaRun(outputs, logits(spec, outputs), messages, {k: int(v) for k, v in counts.items() if v},
                   reference, steps, seconds)


class _Workers:
    """Calls into Lava's runtime with a deadline; on a miss (or Ctrl-C), ends the worker
    processes this run started (found by their ids, nothing else) and raises TimeoutError
    (or re-raises KeyboardInterrupt)."""

    SPAWN_GRACE = 5.0  # seconds to keep ending workers a runtime still spawns after the deadline

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
            multiprocessing.connection.wait([child.sentinel for child in children], timeout=1.0)
            for child in children:
                child.is_alive()  # reaps it, so it is no longer an active child
            ended = not thread.is_alive() and not set(multiprocessing.active_children()) - self.before
            if ended or time.monotonic() > deadline:
                return
            thread.join(0.1)


__all__ = ["LavaRun", "run_on_lava", "source_data"]
