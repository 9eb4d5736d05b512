"""The deployable form of a network and its golden model (numpy, float or integer).

:class:`NetworkSpec` (its layers :class:`LayerSpec` / :class:`UnitSpec`, its
:class:`ReadoutSpec`) is what every deployment runs; :func:`unit_step` /
:func:`readout_step` are the one step shared by this reference (:func:`simulate`) and the
Lava ProcessModels (:mod:`cmru_neuro.adapters.lava`). :mod:`cmru_neuro.quant` makes specs
from trained models.

The form (floating point or integer, same structure)::

    x_t --Dense(W_1)--> unit 1 --changes--> Dense(W_2) --> unit 2 ... --> Dense(W_r) --> readout

* Every signal is delta-encoded: the input sends ``x_t - x_{t-1}``, each unit sends its
  changes ``level_t - level_{t-1}`` (graded messages). Each receiver accumulates what its
  Dense delivers (``sigma += W delta``, sigma-delta style), so ``sigma_t = W level_t`` and
  traffic scales with state changes. (A pipeline neuron with spike output sends its events
  ``z_t sign(c_t)`` instead, taken as they come: :attr:`UnitSpec.output`.)
* A unit keeps an integer *level*: CMRU the count of its events ``L_t`` (``h_t = alpha L_t + h_0``,
  with ``W h_0`` folded into the next bias), BMRU its state in {-1, +1}, first-quadrant BMRU
  its state in {0, 1}. ``alpha`` is folded into the outgoing weights (``W diag(alpha)``).
* Gate rule as in :mod:`cmru_neuro.functional`: update where ``|c| >= |beta|`` towards
  ``sign(c)`` with sign(0) = +1 (first quadrant: set where ``c >= beta_hi``, clear where
  ``c < beta_lo``; its input is rectified, ``max(x, 0)``, when the unit rectifies).

Integer format (``fixed_point=True``): each Dense has 8-bit mantissas in Lava's mixed-sign
convention (even integers in [-256, 254]) and one power-of-two exponent per layer: one unit
of the receiving current is worth ``2**exponent``, so Dense never shifts or rounds
(``weight_exp = 0``); biases and thresholds are integers in that unit; inputs are integers of
``input_bits`` bits worth ``2**input_exponent`` each. Accumulators, currents and levels are
24-bit and saturate; every saturation is counted, never silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ._checks import check_sequence
from .unit_kinds import unit_kind

STATE_BITS = 24
STATE_LIMIT = 2 ** (STATE_BITS - 1) - 1  # largest magnitude of a 24-bit signed value
UNIT_OUTPUTS = ("changes", "events")  # what a unit layer sends (see UnitSpec.output)
RESET_MECHANISMS = ("none", "subtract", "zero")  # snnTorch's, for the readout
DECAY_BITS = 12  # integer decay factors: mantissas of 2**-12, as Lava's LIF
DECAY_UNIT = 2**DECAY_BITS
UNIT_SATURATIONS = ("accumulator", "current", "state")  # what UnitStep counts, in order
READOUT_SATURATIONS = ("accumulator", "synapse", "output")


# --------------------------------------------------------------------------------------
# The network form
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitSpec:
    """One layer of H units (no weights: those sit on the Dense in front of it).

    kind: a deployable kind of :data:`cmru_neuro.unit_kinds.UNIT_KINDS` (``"cmru"``,
        ``"bmru"``, ``"fq-bmru"``); its ``level_rule`` is the update.
    bias: ``(S*H,)`` added to the accumulated input; rows ``:H`` candidate, ``H:`` threshold
        (``S = 2``, threshold from the input) or only candidate (``S = 1``).
    threshold: ``(H,)`` fixed ``|beta|`` when ``S = 1`` (first quadrant: ``beta_hi``).
    threshold_low: ``(H,)`` first quadrant only: ``beta_lo``.
    initial_level: ``(H,)`` the level each sequence starts from.
    exponent: one unit of current is worth ``2**exponent`` (0 in floating point).
    output: what the layer sends. ``"changes"``: ``level_t - level_{t-1}`` (the state,
        delta-encoded: the receiver accumulates); ``"events"``: ``z_t sign(c_t)`` in
        {-1, 0, +1}, the spikes of the snnTorch / Norse neurons (the receiver takes them as
        they come). Not for first-quadrant units.
    """

    kind: str
    bias: np.ndarray
    threshold: np.ndarray
    threshold_low: np.ndarray
    initial_level: np.ndarray
    exponent: int = 0
    output: str = "changes"

    @property
    def hidden_size(self) -> int:
        return self.initial_level.shape[0]

    @property
    def streams(self) -> int:
        """S: currents per unit the Dense in front delivers (2: candidate and threshold)."""
        return self.bias.shape[0] // self.hidden_size


@dataclass(frozen=True)
class LayerSpec:
    """Dense ``weights`` ``(S*H, N_in)`` (acting on the upstream level) and the units."""

    weights: np.ndarray
    unit: UnitSpec


@dataclass(frozen=True)
class ReadoutSpec:
    """Dense ``weights`` ``(O, H)``, ``bias`` ``(O,)``; one output unit worth ``2**exponent``.

    A leaky integrator (snnTorch ``Leaky``, Norse ``LI`` / ``LIBoxCell``), each ``(O,)``:
    ``synapse_t = synapse_decay * synapse_{t-1} + current_t``, ``v_t = membrane_decay *
    v_{t-1} + synapse_t + membrane_bias`` (less ``threshold`` where ``v_{t-1} > threshold``
    for reset ``"subtract"``, from 0 for ``"zero"``); the output is ``v_t``. Decay factors
    are real in floating point, integers in units of ``2**-12`` in fixed point (truncated
    toward zero, as Lava's LIF). All zeros (the default): ``v_t = current_t``, the Linear
    readout of a MemoryNetwork.
    """

    weights: np.ndarray
    bias: np.ndarray
    exponent: int = 0
    synapse_decay: np.ndarray | None = None
    membrane_decay: np.ndarray | None = None
    membrane_bias: np.ndarray | None = None
    threshold: np.ndarray | None = None
    reset_mechanism: str = "none"

    def __post_init__(self):
        for name in ("synapse_decay", "membrane_decay", "membrane_bias", "threshold"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros_like(self.bias))
        if self.reset_mechanism not in RESET_MECHANISMS:
            raise ValueError(f"reset_mechanism: expected one of {RESET_MECHANISMS}, got {self.reset_mechanism!r}")


@dataclass(frozen=True)
class NetworkSpec:
    """A deployable network: float64 arrays (``fixed_point=False``) or int64 ones.

    input_exponent: one input unit is worth ``2**input_exponent`` (0 in floating point).
    input_bits: signed width of the integer inputs (fixed point only).
    rectify_input: the source sends ``max(x, 0)`` (first-quadrant units that rectify).
    """

    layers: tuple
    readout: ReadoutSpec
    readout_mode: str
    fixed_point: bool
    input_size: int
    input_exponent: int = 0
    input_bits: int = 0
    rectify_input: bool = False

    @property
    def output_size(self) -> int:
        return self.readout.weights.shape[0]

    @property
    def input_limit(self) -> int:
        """Largest integer input magnitude (fixed point)."""
        return 2 ** (self.input_bits - 1) - 1

    def accumulates(self, index: int) -> bool:
        """Whether layer ``index`` (``len(layers)``: the readout) accumulates its input:
        True behind the source (input deltas) and behind a layer that sends changes."""
        return index == 0 or self.layers[index - 1].unit.output == "changes"


# --------------------------------------------------------------------------------------
# The shared step (numpy reference and Lava ProcessModels call these)
# --------------------------------------------------------------------------------------


def saturate(values: np.ndarray, fixed_point: bool) -> tuple[np.ndarray, int]:
    """Clip to 24-bit signed in fixed point. Returns ``(values, how many were clipped)``."""
    if not fixed_point:
        return values, 0
    clipped = np.clip(values, -STATE_LIMIT, STATE_LIMIT)
    return clipped, int(np.count_nonzero(clipped != values))


class UnitStep(NamedTuple):
    """One step of a layer of units; arrays ``(..., S*H)`` / ``(..., H)``; ``message``: what
    the layer sends, its changes or its events (:attr:`UnitSpec.output`).

    Saturation counts: clipped accumulator values (``sigma``), currents (``sigma + bias``)
    and levels (only CMRU's can reach the limit).
    """

    sigma: np.ndarray
    level: np.ndarray
    message: np.ndarray
    accumulator_saturations: int
    current_saturations: int
    state_saturations: int


def unit_step(unit, sigma, level, dendrite, reset, fixed_point: bool, accumulate: bool = True) -> UnitStep:
    """Advance a layer of units one step.

    ``unit``: anything with ``kind``, ``bias``, ``threshold``, ``threshold_low``,
    ``initial_level`` and ``output`` (a :class:`UnitSpec`, or a Lava ProcessModel).
    ``sigma`` ``(..., S*H)``: accumulated input; ``level`` ``(..., H)``; ``dendrite``
    ``(..., S*H)``: what the Dense delivers this step (``W delta``); ``reset``: start a new
    sequence from ``initial_level`` before this step's update (bool or ``(..., 1)``).
    ``accumulate``: ``sigma += dendrite`` (the input is delta-encoded), else ``sigma =
    dendrite`` (the upstream sends events). The message: ``level_new - level`` (output
    ``"changes"``) or ``z sign(c)`` (output ``"events"``).
    """
    wide = np.int64 if fixed_point else np.float64
    held = np.asarray(sigma, wide) if accumulate else 0
    sigma, accumulator_saturations = saturate(held + np.asarray(dendrite, wide), fixed_point)
    current, current_saturations = saturate(sigma + np.asarray(unit.bias, wide), fixed_point)
    level = np.asarray(level, wide)
    hidden = level.shape[-1]
    candidate = current[..., :hidden]
    start = np.where(reset, np.asarray(unit.initial_level, wide), level)
    rule = unit_kind(unit.kind).level_rule
    if rule == "set-reset":
        candidate = np.maximum(candidate, 0)
        set_ = candidate >= np.asarray(unit.threshold, wide)
        clear = candidate < np.asarray(unit.threshold_low, wide)
        new = np.where(set_, 1, np.where(clear, 0, start))
    else:
        threshold = current[..., hidden:] if current.shape[-1] == 2 * hidden else unit.threshold
        gate = np.abs(candidate) >= np.abs(np.asarray(threshold, wide))
        direction = np.where(candidate >= 0, 1, -1)
        new = start + gate * direction if rule == "count" else np.where(gate, direction, start)
    new, state_saturations = saturate(new.astype(wide), fixed_point)
    message = (gate * direction).astype(wide) if unit.output == "events" else new - level
    return UnitStep(sigma, new, message, accumulator_saturations, current_saturations, state_saturations)


class ReadoutStep(NamedTuple):
    """One readout step; arrays ``(..., O)``; clipped accumulator, synapse and output counts."""

    sigma: np.ndarray
    synapse: np.ndarray
    output: np.ndarray
    accumulator_saturations: int
    synapse_saturations: int
    output_saturations: int


def decay(values: np.ndarray, factor, fixed_point: bool) -> np.ndarray:
    """``factor * values``; fixed point: ``factor`` in units of ``2**-12``, the product
    truncated toward zero (Lava's LIF rule)."""
    if not fixed_point:
        return values * np.asarray(factor, np.float64)
    product = values * np.asarray(factor, np.int64)
    return np.sign(product) * (np.abs(product) >> DECAY_BITS)


def readout_step(readout, sigma, synapse, output, dendrite, reset, fixed_point: bool,
                 accumulate: bool = True) -> ReadoutStep:
    """One step of the readout (see :class:`ReadoutSpec`).

    ``readout``: anything with ``bias``, ``synapse_decay``, ``membrane_decay``,
    ``membrane_bias``, ``threshold`` and ``reset_mechanism`` (a ReadoutSpec or a Lava
    ProcessModel). ``sigma``, ``synapse``, ``output`` ``(..., O)``: the accumulator and
    the two states of the previous step; ``reset``: a new sequence starts (states from 0);
    ``accumulate`` as in :func:`unit_step`.
    """
    wide = np.int64 if fixed_point else np.float64
    held = np.asarray(sigma, wide) if accumulate else 0
    sigma, accumulator_saturations = saturate(held + np.asarray(dendrite, wide), fixed_point)
    current = sigma + np.asarray(readout.bias, wide)
    synapse = np.where(reset, 0, np.asarray(synapse, wide)).astype(wide)
    synapse_saturations = 0
    if np.any(readout.synapse_decay):  # a synapse that holds a state (Norse's LI)
        current, synapse_saturations = saturate(decay(synapse, readout.synapse_decay, fixed_point) + current,
                                                fixed_point)
    previous = np.where(reset, 0, np.asarray(output, wide)).astype(wide)
    fired = previous > np.asarray(readout.threshold, wide)
    if readout.reset_mechanism == "zero":
        previous = np.where(fired, 0, previous)
    value = decay(previous, readout.membrane_decay, fixed_point) + current + np.asarray(readout.membrane_bias, wide)
    if readout.reset_mechanism == "subtract":
        value = value - fired * np.asarray(readout.threshold, wide)
    value, output_saturations = saturate(value.astype(wide), fixed_point)
    return ReadoutStep(sigma, current, value, accumulator_saturations, synapse_saturations, output_saturations)


# --------------------------------------------------------------------------------------
# The golden model
# --------------------------------------------------------------------------------------


@dataclass
class Simulation:
    """A run of the numpy reference on a batch.

    outputs: ``(T, B, O)`` readout values per step (int64 in fixed point, in units of
        ``2**readout.exponent``).
    messages: per layer, the number of non-zero values it sent (changes or events).
    saturations: ``{"layer 0 accumulator": n, "layer 0 current": n, "layer 0 state": n, ...,
        "readout accumulator": n, "readout synapse": n, "readout output": n}``, only non-zero
        counts. An accumulator saturation breaks the sigma-delta reconstruction (Lava
        refuses to run).
    largest_level: per layer, max ``|level|`` reached.
    """

    outputs: np.ndarray
    messages: list
    saturations: dict = field(default_factory=dict)
    largest_level: list = field(default_factory=list)


def encode_inputs(spec: NetworkSpec, inputs: Tensor) -> np.ndarray:
    """``(T, B, F)`` real inputs -> what the network's source sends (integers in fixed point).

    Fixed point: rounds to the input step; a value beyond ``input_bits`` raises (overflow).
    """
    inputs, _ = check_sequence(inputs, "inputs", spec.input_size, False)
    values = inputs.detach().double().numpy()
    if spec.rectify_input:
        values = np.maximum(values, 0.0)
    if not spec.fixed_point:
        return values
    scaled = np.rint(values / 2.0**spec.input_exponent)
    largest = float(np.max(np.abs(scaled), initial=0.0))
    if largest > spec.input_limit:
        raise ValueError(
            f"inputs: max |x| = {float(np.max(np.abs(values))):.4g} overflows the quantized input range "
            f"+-{spec.input_limit * 2.0**spec.input_exponent:.4g} ({spec.input_bits} bits of "
            f"2**{spec.input_exponent}); quantize with calibration inputs that cover this range"
        )
    return scaled.astype(np.int64)


def simulate(spec: NetworkSpec, inputs: Tensor) -> Simulation:
    """Run the reference on ``inputs`` ``(T, B, F)`` (each sequence from the initial state)."""
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"spec: expected a NetworkSpec, got {type(spec).__name__}")
    return simulate_encoded(spec, encode_inputs(spec, inputs))


def simulate_encoded(spec: NetworkSpec, source: np.ndarray) -> Simulation:
    """:func:`simulate` on what the source sends, ``(T, B, F)`` from :func:`encode_inputs`."""
    steps, batch, _ = source.shape
    wide = np.int64 if spec.fixed_point else np.float64
    sigmas = [np.zeros((batch, layer.weights.shape[0]), wide) for layer in spec.layers]
    levels = [np.zeros((batch, layer.unit.hidden_size), wide) for layer in spec.layers]
    readout_state = [np.zeros((batch, spec.output_size), wide)] * 3  # sigma, synapse, output
    outputs = np.zeros((steps, batch, spec.output_size), wide)
    messages = [0] * len(spec.layers)
    largest = [0] * len(spec.layers)
    counts: dict = {}
    previous = np.zeros_like(source[0])
    for t in range(steps):
        delta = source[t] - previous
        previous = source[t]
        for i, layer in enumerate(spec.layers):
            step = unit_step(layer.unit, sigmas[i], levels[i], delta @ layer.weights.T, t == 0, spec.fixed_point,
                             spec.accumulates(i))
            sigmas[i], levels[i], delta = step.sigma, step.level, step.message
            messages[i] += int(np.count_nonzero(delta))
            largest[i] = max(largest[i], float(np.max(np.abs(step.level))))
            for part, value in zip(UNIT_SATURATIONS, step[3:]):
                _count(counts, f"layer {i} {part}", value)
        readout = readout_step(spec.readout, *readout_state, delta @ spec.readout.weights.T, t == 0,
                               spec.fixed_point, spec.accumulates(len(spec.layers)))
        readout_state, outputs[t] = readout[:3], readout.output
        for part, value in zip(READOUT_SATURATIONS, readout[3:]):
            _count(counts, f"readout {part}", value)
    return Simulation(outputs, messages, counts, largest)


def _count(counts: dict, name: str, value: int) -> None:
    if value:
        counts[name] = counts.get(name, 0) + value


def logits(spec: NetworkSpec, outputs: np.ndarray) -> Tensor:
    """Per-step readout values ``(T, B, O)`` -> the model's output (``(B, O)``, or
    ``(T, B, O)`` for readout ``"sequence"``), in real units (float32)."""
    values = torch.as_tensor(np.asarray(outputs, np.float64) * 2.0**spec.readout.exponent)
    if spec.readout_mode == "last":
        values = values[-1]
    elif spec.readout_mode == "mean":
        values = values.mean(dim=0)
    return values.float()


__all__ = [
    "DECAY_BITS", "DECAY_UNIT", "READOUT_SATURATIONS", "RESET_MECHANISMS", "STATE_BITS", "STATE_LIMIT",
    "UNIT_OUTPUTS", "UNIT_SATURATIONS", "LayerSpec", "NetworkSpec", "ReadoutSpec", "ReadoutStep", "Simulation",
    "UnitSpec", "UnitStep", "decay", "encode_inputs", "logits", "readout_step", "saturate", "simulate",
    "simulate_encoded", "unit_step",
]
