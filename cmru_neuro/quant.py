"""Post-training quantization to a Loihi-2-like integer format, and its golden model.

A trained :class:`~cmru_neuro.network.MemoryNetwork` (CMRU, BMRU or first-quadrant BMRU
units, stacked, then a Linear readout) becomes a :class:`NetworkSpec`: plain numpy arrays in
the form every deployment runs (the numpy reference here, the Lava processes in
:mod:`cmru_neuro.adapters.lava`).

The form (floating point or integer, same structure)::

    x_t --Dense(W_1)--> unit 1 --events--> Dense(W_2) --> unit 2 ... --> Dense(W_r) --> readout

* Every signal is delta-encoded: the input sends ``x_t - x_{t-1}``, each unit sends its
  events ``level_t - level_{t-1}`` (graded payloads). Each receiver accumulates what its Dense
  delivers (``sigma += W delta``, sigma-delta style), so ``sigma_t = W level_t`` and traffic
  scales with state changes.
* A unit keeps an integer *level*: CMRU the event count ``L_t`` (``h_t = alpha L_t + h_0``,
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

import math
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ._checks import check_positive_int, check_sequence
from .network import MemoryNetwork

STATE_BITS = 24
STATE_LIMIT = 2 ** (STATE_BITS - 1) - 1  # largest magnitude of a 24-bit signed value
MANTISSA_LIMIT = 127  # signed 8-bit mantissa; Lava's mixed-sign Dense weight is 2 * mantissa
KINDS = ("cmru", "bmru", "fq-bmru")
UNIT_SATURATIONS = ("accumulator", "current", "state")  # what UnitStep counts, in order
READOUT_SATURATIONS = ("accumulator", "output")


# --------------------------------------------------------------------------------------
# The network form
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitSpec:
    """One layer of H units (no weights: those sit on the Dense in front of it).

    kind: ``"cmru"``, ``"bmru"`` or ``"fq-bmru"``.
    bias: ``(S*H,)`` added to the accumulated input; rows ``:H`` candidate, ``H:`` threshold
        (``S = 2``, threshold from the input) or only candidate (``S = 1``).
    threshold: ``(H,)`` fixed ``|beta|`` when ``S = 1`` (first quadrant: ``beta_hi``).
    threshold_low: ``(H,)`` first quadrant only: ``beta_lo``.
    initial_level: ``(H,)`` the level each sequence starts from.
    exponent: one unit of current is worth ``2**exponent`` (0 in floating point).
    """

    kind: str
    bias: np.ndarray
    threshold: np.ndarray
    threshold_low: np.ndarray
    initial_level: np.ndarray
    exponent: int = 0

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
    """Dense ``weights`` ``(O, H)``, ``bias`` ``(O,)``; one output unit worth ``2**exponent``."""

    weights: np.ndarray
    bias: np.ndarray
    exponent: int = 0


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
    """One step of a layer of units; arrays ``(..., S*H)`` / ``(..., H)``.

    Saturation counts: clipped accumulator values (``sigma``), currents (``sigma + bias``)
    and levels (only CMRU's can reach the limit).
    """

    sigma: np.ndarray
    level: np.ndarray
    events: np.ndarray
    accumulator_saturations: int
    current_saturations: int
    state_saturations: int


def unit_step(unit, sigma, level, dendrite, reset, fixed_point: bool) -> UnitStep:
    """Advance a layer of units one step.

    ``unit``: anything with ``kind``, ``bias``, ``threshold``, ``threshold_low`` and
    ``initial_level`` (a :class:`UnitSpec`, or a Lava ProcessModel with those Vars).
    ``sigma`` ``(..., S*H)``: accumulated input; ``level`` ``(..., H)``; ``dendrite``
    ``(..., S*H)``: what the Dense delivers this step (``W delta``); ``reset``: start a new
    sequence from ``initial_level`` before this step's update (bool or ``(..., 1)``).
    Events are ``level_new - level``: the state change sent downstream.
    """
    wide = np.int64 if fixed_point else np.float64
    sigma, accumulator_saturations = saturate(np.asarray(sigma, wide) + dendrite, fixed_point)
    current, current_saturations = saturate(sigma + np.asarray(unit.bias, wide), fixed_point)
    level = np.asarray(level, wide)
    hidden = level.shape[-1]
    candidate = current[..., :hidden]
    start = np.where(reset, np.asarray(unit.initial_level, wide), level)
    if unit.kind == "fq-bmru":
        candidate = np.maximum(candidate, 0)
        set_ = candidate >= np.asarray(unit.threshold, wide)
        clear = candidate < np.asarray(unit.threshold_low, wide)
        new = np.where(set_, 1, np.where(clear, 0, start))
    else:
        threshold = current[..., hidden:] if current.shape[-1] == 2 * hidden else unit.threshold
        gate = np.abs(candidate) >= np.abs(np.asarray(threshold, wide))
        direction = np.where(candidate >= 0, 1, -1)
        new = start + gate * direction if unit.kind == "cmru" else np.where(gate, direction, start)
    new, state_saturations = saturate(new.astype(wide), fixed_point)
    return UnitStep(sigma, new, new - level, accumulator_saturations, current_saturations, state_saturations)


class ReadoutStep(NamedTuple):
    """One readout step; arrays ``(..., O)``; clipped accumulator and output counts."""

    sigma: np.ndarray
    output: np.ndarray
    accumulator_saturations: int
    output_saturations: int


def readout_step(sigma, dendrite, bias, fixed_point: bool) -> ReadoutStep:
    """Readout accumulator: ``sigma += dendrite``, output ``sigma + bias``."""
    wide = np.int64 if fixed_point else np.float64
    sigma, accumulator_saturations = saturate(np.asarray(sigma, wide) + dendrite, fixed_point)
    output, output_saturations = saturate(sigma + np.asarray(bias, wide), fixed_point)
    return ReadoutStep(sigma, output, accumulator_saturations, output_saturations)


# --------------------------------------------------------------------------------------
# From a trained model
# --------------------------------------------------------------------------------------


def network_spec(model: MemoryNetwork) -> NetworkSpec:
    """The floating-point form of ``model`` (float64; alpha and CMRU's h_0 folded)."""
    if not isinstance(model, MemoryNetwork):
        raise TypeError(f"model: expected a cmru_neuro.network.MemoryNetwork, got {type(model).__name__}")
    if model.unit_name not in KINDS:
        raise ValueError(
            f"model: unit {model.unit_name!r} has no integer form (alpha-CMRU's step is an input-"
            f"dependent softplus); expected one of {', '.join(map(repr, KINDS))}"
        )
    deployed_epsilon = 1.0 if model.unit_name == "cmru" else 0.0
    for index, unit in enumerate(model.units):
        if unit.epsilon != deployed_epsilon:
            raise ValueError(
                f"model: layer {index} has epsilon {unit.epsilon!r}; a {model.unit_name} deploys at "
                f"epsilon {deployed_epsilon:g} (finish the epsilon annealing first)"
            )
    layers = []
    step = np.ones(model.units[0].input_size)  # what one unit of the layer's input is worth
    offset = np.zeros(model.units[0].input_size)  # the input's constant part (h_0)
    for unit in model.units:
        weight, bias = unit.projection_weights()
        weights = weight.detach().double().numpy()
        bias = np.zeros(weights.shape[0]) if bias is None else bias.detach().double().numpy()
        alpha = unit.level_spacing.detach().double().numpy()
        initial = unit.initial_level.detach().double().numpy()
        hidden = unit.hidden_size
        threshold = np.zeros(hidden)
        threshold_low = np.zeros(hidden)
        if model.unit_name == "fq-bmru":
            threshold = unit.threshold_high.detach().double().numpy()
            threshold_low = unit.threshold_low.detach().double().numpy()
            initial = np.where(initial >= 0, 1.0, 0.0)  # s_0 = H(initial_level)
        elif unit.threshold_mode == "fixed":
            threshold = unit.threshold.detach().double().numpy()
        next_offset = np.zeros(hidden)  # h = alpha * level ...
        if model.unit_name == "cmru":  # ... + h_0 for CMRU: the level counts events from 0
            initial, next_offset = np.zeros(hidden), alpha * initial
        elif model.unit_name == "bmru":  # bistable from the start, sign(0) = +1
            initial = np.where(initial >= 0, 1.0, -1.0)
        unit_spec = UnitSpec(model.unit_name, bias + weights @ offset, threshold, threshold_low, initial)
        layers.append(LayerSpec(weights * step, unit_spec))
        offset, step = next_offset, alpha
    weights, bias = _linear(model.readout)
    readout = ReadoutSpec(weights * step, bias + weights @ offset)
    rectify = bool(getattr(model.units[0], "rectify_input", False))
    return NetworkSpec(tuple(layers), readout, model.readout_mode, False, model.units[0].input_size,
                       rectify_input=rectify)


def _linear(linear: torch.nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    weights = linear.weight.detach().double().numpy()
    bias = linear.bias.detach().double().numpy() if linear.bias is not None else np.zeros(weights.shape[0])
    return weights, bias


def weight_lattice(weights: np.ndarray) -> tuple[np.ndarray, int]:
    """Quantize real weights to Lava's mixed-sign 8-bit form.

    Returns ``(mantissas, exponent)``: even integers in [-256, 254] (int64) with
    ``weights ~= mantissas * 2**exponent``, error at most ``2**exponent``. The exponent is
    the smallest that fits ``max |weights|`` (0 for an all-zero matrix).
    """
    weights = np.asarray(weights, dtype=np.float64)
    largest = float(np.max(np.abs(weights), initial=0.0))
    if not math.isfinite(largest):
        raise ValueError("weights: expected finite values, got NaN or inf")
    if largest == 0.0:
        return np.zeros(weights.shape, dtype=np.int64), 0
    grid = _fitting_exponent(largest, MANTISSA_LIMIT)  # step of the 8-bit mantissa: 2**grid
    mantissa = np.clip(np.rint(weights / 2.0**grid), -MANTISSA_LIMIT - 1, MANTISSA_LIMIT)
    return 2 * mantissa.astype(np.int64), grid - 1


def _to_integers(values: np.ndarray, exponent: int, name: str) -> np.ndarray:
    """Round ``values / 2**exponent`` to 24-bit integers; overflow raises."""
    scaled = np.rint(np.asarray(values, np.float64) / 2.0**exponent)
    if scaled.size and np.max(np.abs(scaled)) > STATE_LIMIT:
        raise ValueError(
            f"{name}: needs {np.max(np.abs(scaled)):.0f} units of 2**{exponent}, beyond the 24-bit "
            f"limit {STATE_LIMIT} (overflow: the weights are too small next to this value)"
        )
    return scaled.astype(np.int64)


def input_exponent(inputs: Tensor, input_bits: int = 8) -> int:
    """Smallest power-of-two step that fits ``max |inputs|`` in ``input_bits`` signed bits."""
    largest = float(inputs.abs().max()) if inputs.numel() else 0.0
    return _fitting_exponent(largest, 2 ** (input_bits - 1) - 1) if largest > 0 else 0


def _fitting_exponent(largest: float, limit: int) -> int:
    """The smallest ``e`` with ``largest / 2**e <= limit`` (``largest > 0``)."""
    exponent = math.ceil(math.log2(largest / limit))
    while largest / 2.0**exponent > limit:  # guard log2 rounding both ways
        exponent += 1
    while largest / 2.0 ** (exponent - 1) <= limit:
        exponent -= 1
    return exponent


@dataclass(frozen=True)
class Quantized:
    """What :func:`quantize` returns: the integer network and its calibration run."""

    spec: NetworkSpec
    calibration: Simulation


def quantize(model: MemoryNetwork, inputs: Tensor, *, input_bits: int = 8) -> Quantized:
    """Post-training quantization of ``model`` to the integer format (see the module doc).

    ``inputs`` ``(T, B, F)``: calibration sequences; they set the input step and are run
    through the integer model, whose saturation counts are reported (and warned about).
    First-quadrant BMRU's learned initial state is binarised to its state set {0, 1}.
    """
    check_positive_int(input_bits, "input_bits")
    if not 2 <= input_bits <= STATE_BITS:
        raise ValueError(f"input_bits: expected 2..{STATE_BITS}, got {input_bits}")
    float_spec = network_spec(model)
    inputs, _ = check_sequence(inputs, "inputs", float_spec.input_size, False)
    x_exponent = input_exponent(inputs, input_bits)
    step = 2.0**x_exponent  # what one unit of the layer's input is worth
    layers = []
    for index, layer in enumerate(float_spec.layers):
        unit = layer.unit
        weights, exponent = weight_lattice(layer.weights * step)
        name = f"layer {index}"
        initial = unit.initial_level
        layers.append(LayerSpec(weights, UnitSpec(
            unit.kind,
            _to_integers(unit.bias, exponent, f"{name} bias"),
            _to_integers(unit.threshold, exponent, f"{name} threshold"),
            _to_integers(unit.threshold_low, exponent, f"{name} threshold_low"),
            initial.astype(np.int64),
            exponent,
        )))
        step = 1.0
    weights, exponent = weight_lattice(float_spec.readout.weights)
    readout = ReadoutSpec(weights, _to_integers(float_spec.readout.bias, exponent, "readout bias"), exponent)
    spec = NetworkSpec(tuple(layers), readout, float_spec.readout_mode, True,
                       float_spec.input_size, x_exponent, input_bits, float_spec.rectify_input)
    calibration = simulate(spec, inputs)
    if calibration.saturations:
        warnings.warn(f"quantize: the calibration inputs saturate the integer model: {calibration.saturations}")
    return Quantized(spec, calibration)


def dequantize(spec: NetworkSpec, model: MemoryNetwork) -> MemoryNetwork:
    """A float copy of ``model`` that computes exactly what the integer ``spec`` computes.

    Weights become ``mantissa * 2**exponent``, alpha 1, h_0 the integer initial level
    (CMRU: 0, its h_0 being in the biases). Outputs equal the integer model's while nothing
    saturates (float32 is exact on these values).
    """
    _check_fixed_point(spec)
    if model.unit_name == "fq-bmru":
        options = {"rectify_input": spec.rectify_input}
    else:
        options = {"threshold": model.units[0].threshold_mode}
    copy = MemoryNetwork(
        spec.input_size, [layer.unit.hidden_size for layer in spec.layers], spec.output_size,
        unit=model.unit_name, readout=spec.readout_mode, unit_options=options,
    )
    step = 2.0**spec.input_exponent
    with torch.no_grad():
        for target, layer in zip(copy.units, spec.layers):
            unit = layer.unit
            scale = 2.0**unit.exponent
            target.projection.weight.copy_(_tensor(layer.weights * scale / step))
            target.projection.bias.copy_(_tensor(unit.bias * scale))
            target.alpha.fill_(1.0)
            if unit.kind == "fq-bmru":
                target.initial_level.copy_(_tensor(2.0 * unit.initial_level - 1.0))  # H(+-1)
                target.raw_threshold_low.copy_(_tensor(unit.threshold_low * scale))
                width = (unit.threshold - unit.threshold_low) * scale
                if np.any(width < 0) or np.any(unit.threshold_low < 0):
                    raise ValueError("spec: first-quadrant thresholds need 0 <= threshold_low <= threshold")
                target.raw_width.copy_(_tensor(width))
            else:
                target.initial_level.copy_(_tensor(unit.initial_level))
                if unit.streams == 1:
                    target.threshold.copy_(_tensor(unit.threshold * scale))
            step = 1.0
        copy.readout.weight.copy_(_tensor(spec.readout.weights * 2.0**spec.readout.exponent))
        copy.readout.bias.copy_(_tensor(spec.readout.bias * 2.0**spec.readout.exponent))
    return copy.eval()


def _tensor(values: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(values, np.float64), dtype=torch.float32)


def _check_fixed_point(spec) -> None:
    if not isinstance(spec, NetworkSpec) or not spec.fixed_point:
        raise TypeError("spec: expected an integer NetworkSpec (from quantize(...).spec)")


# --------------------------------------------------------------------------------------
# The golden model
# --------------------------------------------------------------------------------------


@dataclass
class Simulation:
    """A run of the numpy reference on a batch.

    outputs: ``(T, B, O)`` readout values per step (int64 in fixed point, in units of
        ``2**readout.exponent``).
    events: per layer, the number of non-zero events sent.
    saturations: ``{"layer 0 accumulator": n, "layer 0 current": n, "layer 0 state": n, ...,
        "readout accumulator": n, "readout output": n}``, only non-zero counts. An
        accumulator saturation breaks the sigma-delta reconstruction (Lava refuses to run).
    largest_level: per layer, max ``|level|`` reached.
    """

    outputs: np.ndarray
    events: list
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
    source = encode_inputs(spec, inputs)
    steps, batch, _ = source.shape
    wide = np.int64 if spec.fixed_point else np.float64
    sigmas = [np.zeros((batch, layer.weights.shape[0]), wide) for layer in spec.layers]
    levels = [np.zeros((batch, layer.unit.hidden_size), wide) for layer in spec.layers]
    readout_sigma = np.zeros((batch, spec.output_size), wide)
    outputs = np.zeros((steps, batch, spec.output_size), wide)
    events = [0] * len(spec.layers)
    largest = [0] * len(spec.layers)
    counts: dict = {}
    previous = np.zeros_like(source[0])
    for t in range(steps):
        delta = source[t] - previous
        previous = source[t]
        for i, layer in enumerate(spec.layers):
            step = unit_step(layer.unit, sigmas[i], levels[i], delta @ layer.weights.T, t == 0, spec.fixed_point)
            sigmas[i], levels[i], delta = step.sigma, step.level, step.events
            events[i] += int(np.count_nonzero(delta))
            largest[i] = max(largest[i], float(np.max(np.abs(step.level))))
            for part, value in zip(UNIT_SATURATIONS, step[3:]):
                _count(counts, f"layer {i} {part}", value)
        readout = readout_step(readout_sigma, delta @ spec.readout.weights.T, spec.readout.bias, spec.fixed_point)
        readout_sigma, outputs[t] = readout.sigma, readout.output
        for part, value in zip(READOUT_SATURATIONS, readout[2:]):
            _count(counts, f"readout {part}", value)
    return Simulation(outputs, events, counts, largest)


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


# --------------------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------------------


def classification_correct(outputs: Tensor, targets: Tensor) -> tuple[int, int]:
    """Default scorer, ``(number correct, number of decisions)``: class targets ``(B,)``
    against logits ``(B, O)`` (argmax), or 0/1 targets shaped like the outputs (logit > 0
    means 1, as :meth:`cmru_neuro.tasks.Task.correct`)."""
    if targets.dim() == 1 and not targets.is_floating_point():
        if outputs.dim() != 2 or outputs.shape[0] != targets.shape[0]:
            raise ValueError(f"targets: expected ({outputs.shape[0]},) class indices for outputs "
                             f"{tuple(outputs.shape)}, got {tuple(targets.shape)}")
        hits = outputs.argmax(dim=-1) == targets
    elif targets.shape == outputs.shape:
        hits = (outputs > 0) == (targets > 0.5)
    else:
        raise ValueError(f"targets: expected class indices (B,) or binary targets shaped like the "
                         f"outputs {tuple(outputs.shape)}, got {tuple(targets.shape)}")
    return int(hits.sum()), hits.numel()


@dataclass(frozen=True)
class AccuracyReport:
    """Float model vs integer model on one batch; accuracies in percent.

    largest_difference: max |float output - integer output| (output units).
    """

    float_accuracy: float
    integer_accuracy: float
    largest_difference: float
    saturations: dict

    @property
    def difference(self) -> float:
        """Integer minus float accuracy, in points."""
        return self.integer_accuracy - self.float_accuracy

    def __str__(self) -> str:
        saturation = ", ".join(f"{k}: {v}" for k, v in self.saturations.items()) or "none"
        return (f"float {self.float_accuracy:.2f}%  integer {self.integer_accuracy:.2f}%  "
                f"difference {self.difference:+.2f} points  largest output difference "
                f"{self.largest_difference:.3g}  saturations: {saturation}")


def accuracy_report(
    model: MemoryNetwork, spec: NetworkSpec, inputs: Tensor, targets: Tensor, *, correct=classification_correct
) -> AccuracyReport:
    """Accuracy of the float ``model`` and of the integer ``spec`` on ``inputs`` ``(T, B, F)``.

    ``correct(outputs, targets) -> (hits, decisions)``: the scorer; pass a task's
    :meth:`~cmru_neuro.tasks.Task.correct` to score as the task does (its targets layout).
    """
    _check_fixed_point(spec)
    with torch.no_grad():
        float_outputs = model(inputs)
    run = simulate(spec, inputs)
    integer_outputs = logits(spec, run.outputs)
    float_hits, decisions = correct(float_outputs, targets)
    integer_hits, _ = correct(integer_outputs, targets)
    return AccuracyReport(
        100.0 * float_hits / decisions, 100.0 * integer_hits / decisions,
        float((float_outputs - integer_outputs).abs().max()), run.saturations,
    )


__all__ = [
    "AccuracyReport", "LayerSpec", "NetworkSpec", "Quantized", "ReadoutSpec", "ReadoutStep", "Simulation",
    "UnitSpec", "UnitStep", "accuracy_report", "classification_correct", "dequantize", "encode_inputs", "logits",
    "network_spec", "quantize", "readout_step", "saturate", "simulate", "unit_step",
    "weight_lattice",
]
