"""Lava Processes: a layer of memory units and a readout (declarations only)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from cmru_neuro.golden import RESET_MECHANISMS, STATE_BITS
from cmru_neuro.unit_kinds import UNIT_KINDS


def _vector(value, size: int, name: str, owner: str) -> np.ndarray:
    """``value`` as a finite ``(size,)`` array (None: zeros)."""
    array = np.zeros(size) if value is None else np.asarray(value)
    if array.shape != (size,):
        raise ValueError(f"{owner} {name}: expected shape ({size},), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{owner} {name}: expected finite values, got NaN or inf")
    return array


def _positive(value, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner} {name}: expected a positive integer, got {value!r}")
    return int(value)


def _check_timing(sequence_length, reset_offset, sequences, owner: str) -> None:
    _positive(sequence_length, "sequence_length", owner)
    _positive(reset_offset, "reset_offset", owner)
    if sequences is not None:
        _positive(sequences, "sequences", owner)


def check_receivers(port, receivers=None) -> None:
    """Every port that ``port`` (an OutPort sending graded messages) feeds (``receivers``;
    None: its connections) must take graded payloads: a Lava Dense (or Sparse, DelayDense...)
    with ``num_message_bits=0`` reads a -1 message as +1 (it sums the weights of the non-zero
    inputs). Raises ValueError naming both ends."""
    for receiver in port.out_connections if receivers is None else receivers:
        process = receiver.process
        bits = getattr(process, "num_message_bits", None)
        value = None if bits is None else int(np.asarray(bits.init).reshape(-1)[0])
        if value is not None and value <= 0:
            raise ValueError(
                f"{port.process.name}.{port.name} -> {process.name}: expected num_message_bits > 0 "
                f"(graded messages; {STATE_BITS} carries every level change), got {value}: a binary "
                f"{type(process).__name__} turns -1 messages into +1"
            )


class GradedOutPort(OutPort):
    """An OutPort of graded messages that refuses to connect to a receiver reading binary
    spikes (:func:`check_receivers`); nothing is connected then."""

    def connect(self, ports, connection_configs=None):
        check_receivers(self, ports if isinstance(ports, list) else [ports])
        super().connect(ports, connection_configs)


class MemoryUnitProcess(AbstractProcess):
    """A layer of H memory units fed by a Dense and sending graded messages.

    Each step: ``sigma += a_in`` (what the Dense delivers: ``W delta``), currents
    ``sigma + bias``, the unit update, and ``s_out`` sends ``level_t - level_{t-1}``.
    Every ``sequence_length`` steps, from step ``reset_offset`` on (1-based: the step the
    first input reaches this layer), the level restarts from ``initial_level``: a batch of
    sequences runs back to back. Before ``reset_offset`` and after ``sequences`` sequences
    (None: never) the layer is idle: no update, nothing sent.

    Args:
        shape: ``(H,)``.
        streams: currents per unit on ``a_in`` (shape ``(streams * H,)``): 2 = candidate and
            threshold from the input, 1 = candidate only (fixed ``threshold``).
        bias: ``(streams * H,)``; threshold, initial_level: ``(H,)``.
        output: ``"changes"`` (level changes) or ``"events"`` (``z sign(c)``), as
            :class:`cmru_neuro.golden.UnitSpec`; accumulate: ``sigma += a_in`` (else
            ``sigma = a_in``: the upstream sends events).
    ``s_out`` refuses a receiver with ``num_message_bits=0`` (:func:`check_receivers`).
    Vars ``saturations`` ``(3,)`` (accumulator, current, state) and ``messages_sent`` ``(1,)`` count.
    """

    #: its entry in :data:`cmru_neuro.unit_kinds.UNIT_KINDS` (allowed outputs and streams)
    kind = ""

    def __init__(
        self,
        *,
        shape: tuple,
        streams: int,
        bias,
        sequence_length: int,
        reset_offset: int = 1,
        sequences: int | None = None,
        threshold=None,
        initial_level=None,
        output: str = "changes",
        accumulate: bool = True,
        name: str | None = None,
    ) -> None:
        # Lava's __del__ needs the base initialised: validate after it
        super().__init__(shape=shape, sequence_length=sequence_length, reset_offset=reset_offset,
                         sequences=sequences, output=output, accumulate=bool(accumulate), name=name)
        owner = type(self).__name__
        if not (isinstance(shape, tuple) and len(shape) == 1):
            raise ValueError(f"{owner} shape: expected (H,), got {shape!r}")
        hidden = _positive(shape[0], "shape", owner)
        UNIT_KINDS[self.kind].check_deployed(output, streams, owner)
        _check_timing(sequence_length, reset_offset, sequences, owner)
        self.a_in = InPort(shape=(streams * hidden,))
        self.s_out = GradedOutPort(shape=shape)
        self.bias = Var(shape=(streams * hidden,), init=_vector(bias, streams * hidden, "bias", owner))
        self.threshold = Var(shape=shape, init=_vector(threshold, hidden, "threshold", owner))
        self.initial_level = Var(shape=shape, init=_vector(initial_level, hidden, "initial_level", owner))
        self.sigma = Var(shape=(streams * hidden,), init=0)
        self.level = Var(shape=shape, init=0)
        self.saturations = Var(shape=(3,), init=0)
        self.messages_sent = Var(shape=(1,), init=0)


class CMRU(MemoryUnitProcess):
    """Cumulative memory units: the level counts their events (``L += z sign(c)``)."""

    kind = "cmru"


class BMRU(MemoryUnitProcess):
    """Bistable memory units: the level is overwritten with ``sign(c)`` where ``z = 1``."""

    kind = "bmru"


class FirstQuadrantBMRU(MemoryUnitProcess):
    """First-quadrant BMRU: level 1 where ``relu(c) >= threshold``, 0 where ``< threshold_low`` (strict).

    Adds its own Var to those of :class:`MemoryUnitProcess` (as Lava's TernaryLIF adds its
    thresholds): ``threshold_low`` ``(H,)``, ``beta_lo`` (None: zeros).
    """

    kind = "fq-bmru"

    def __init__(self, *, shape: tuple, threshold_low=None, **options) -> None:
        super().__init__(shape=shape, **options)
        low = _vector(threshold_low, shape[0], "threshold_low", type(self).__name__)
        self.threshold_low = Var(shape=shape, init=low)


class Readout(AbstractProcess):
    """Readout: ``sigma += a_in`` (``sigma = a_in`` without ``accumulate``), then the leaky
    integrator of :class:`cmru_neuro.golden.ReadoutSpec`; sends its membrane every step.

    Args: shape ``(O,)``; bias, synapse_decay, membrane_decay, membrane_bias, threshold
    ``(O,)`` (None: zeros, the plain ``sigma + bias`` readout); reset_mechanism; timing
    (``sequence_length``, ``reset_offset``, ``sequences``) as :class:`MemoryUnitProcess`:
    the states restart from 0 every sequence. Var ``saturations`` ``(3,)`` counts clipped
    accumulator, synapse and output values.
    """

    def __init__(
        self,
        *,
        shape: tuple,
        bias,
        sequence_length: int,
        reset_offset: int = 1,
        sequences: int | None = None,
        synapse_decay=None,
        membrane_decay=None,
        membrane_bias=None,
        threshold=None,
        reset_mechanism: str = "none",
        accumulate: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(shape=shape, sequence_length=sequence_length, reset_offset=reset_offset,
                         sequences=sequences, reset_mechanism=reset_mechanism, accumulate=bool(accumulate),
                         name=name)
        if not (isinstance(shape, tuple) and len(shape) == 1):
            raise ValueError(f"Readout shape: expected (O,), got {shape!r}")
        size = _positive(shape[0], "shape", "Readout")
        _check_timing(sequence_length, reset_offset, sequences, "Readout")
        if reset_mechanism not in RESET_MECHANISMS:
            raise ValueError(f"Readout reset_mechanism: expected one of {RESET_MECHANISMS}, got {reset_mechanism!r}")
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.bias = Var(shape=shape, init=_vector(bias, size, "bias", "Readout"))
        self.synapse_decay = Var(shape=shape, init=_vector(synapse_decay, size, "synapse_decay", "Readout"))
        self.membrane_decay = Var(shape=shape, init=_vector(membrane_decay, size, "membrane_decay", "Readout"))
        self.membrane_bias = Var(shape=shape, init=_vector(membrane_bias, size, "membrane_bias", "Readout"))
        self.threshold = Var(shape=shape, init=_vector(threshold, size, "threshold", "Readout"))
        self.sigma = Var(shape=shape, init=0)
        self.synapse = Var(shape=shape, init=0)
        self.membrane = Var(shape=shape, init=0)
        self.saturations = Var(shape=(3,), init=0)
