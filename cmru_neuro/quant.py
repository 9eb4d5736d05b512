"""Post-training quantization to a Loihi-2-like integer format.

A trained :class:`~cmru_neuro.network.MemoryNetwork` (CMRU, BMRU or first-quadrant BMRU
units, stacked, then a Linear readout), or an snnTorch / Norse pipeline of our neurons with
a leaky readout (:func:`pipeline_spec`), becomes a :class:`~cmru_neuro.golden.NetworkSpec`:
plain numpy arrays in the form every deployment runs. :func:`network_spec` gives the float
form, :func:`quantize` the integer one (format in :mod:`cmru_neuro.golden`),
:func:`dequantize` a float model computing what an integer spec computes,
:func:`accuracy_report` float vs integer accuracy.

The form, its golden model (:func:`simulate`) and the step shared with Lava live in
:mod:`cmru_neuro.golden`; their names are importable from here too.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._checks import check_positive_int, check_sequence
from .golden import (
    DECAY_UNIT,
    STATE_BITS,
    STATE_LIMIT,
    LayerSpec,
    NetworkSpec,
    ReadoutSpec,
    ReadoutStep,
    Simulation,
    UnitSpec,
    UnitStep,
    encode_inputs,
    logits,
    readout_step,
    saturate,
    simulate,
    unit_step,
)
from .network import MemoryNetwork
from .unit_kinds import DEPLOYABLE, neuron_kind, unit_kind

MANTISSA_LIMIT = 127  # signed 8-bit mantissa; Lava's mixed-sign Dense weight is 2 * mantissa


# --------------------------------------------------------------------------------------
# From a trained model
# --------------------------------------------------------------------------------------


def network_spec(model: MemoryNetwork | torch.nn.Sequential) -> NetworkSpec:
    """The floating-point form of ``model`` (float64; alpha and CMRU's h_0 folded).

    ``model``: a :class:`MemoryNetwork`, or a pipeline of the snnTorch / Norse neurons
    (see :func:`pipeline_spec`).
    """
    if isinstance(model, torch.nn.Sequential):
        return pipeline_spec(model)
    if not isinstance(model, MemoryNetwork):
        raise TypeError(
            f"model: expected a cmru_neuro.network.MemoryNetwork, or an nn.Sequential / Norse "
            f"SequentialState pipeline, got {type(model).__name__}"
        )
    kind = unit_kind(model.unit_name)
    if not kind.deployable:
        raise ValueError(
            f"model: unit {model.unit_name!r} has no integer form (alpha-CMRU's step is an input-"
            f"dependent softplus); expected one of {', '.join(map(repr, DEPLOYABLE))}"
        )
    for index, unit in enumerate(model.units):
        if unit.epsilon != kind.epsilon:
            raise ValueError(
                f"model: layer {index} has epsilon {unit.epsilon!r}; a {model.unit_name} deploys at "
                f"epsilon {kind.epsilon:g} (finish the epsilon annealing first)"
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
        if kind.first_quadrant:
            threshold = unit.threshold_high.detach().double().numpy()
            threshold_low = unit.threshold_low.detach().double().numpy()
            initial = np.where(initial >= 0, 1.0, 0.0)  # s_0 = H(initial_level)
        elif unit.threshold_mode == "fixed":
            threshold = unit.threshold.detach().double().numpy()
        next_offset = np.zeros(hidden)  # h = alpha * level ...
        if kind.level_rule == "count":  # ... + h_0 for CMRU: the level counts events from 0
            initial, next_offset = np.zeros(hidden), alpha * initial
        elif kind.level_rule == "latch":  # bistable from the start, sign(0) = +1
            initial = np.where(initial >= 0, 1.0, -1.0)
        unit_spec = UnitSpec(model.unit_name, bias + weights @ offset, threshold, threshold_low, initial)
        layers.append(LayerSpec(weights * step, unit_spec))
        offset, step = next_offset, alpha
    weights, bias = _linear(model.readout)
    readout = ReadoutSpec(weights * step, bias + weights @ offset)
    rectify = bool(getattr(model.units[0], "rectify_input", False))
    return NetworkSpec(tuple(layers), readout, model.readout_mode, False, model.units[0].input_size,
                       rectify_input=rectify)


def pipeline_spec(net: torch.nn.Sequential) -> NetworkSpec:
    """The floating-point form of a per-step pipeline the way users build it::

        nn.Linear -> neuron [-> nn.Linear -> neuron ...] -> nn.Linear [-> readout]

    neuron: a CMRU or BMRU of :mod:`cmru_neuro.snntorch` or :mod:`cmru_neuro.norse` (cell
    or sequence module; spike or state output, fixed or input threshold); readout:
    ``snn.Leaky`` (any reset mechanism), Norse ``LI`` / ``LICell`` (current-based) or
    ``LIBoxCell``, or none (the Linear's output). Nested ``nn.Sequential`` /
    ``SequentialState`` are flattened. The spec's outputs ``(T, B, O)`` are the readout's
    membrane (snnTorch's ``mem``, what Norse's LI returns) every step, readout ``"sequence"``.
    """
    modules = _flatten(net)
    layers = []
    scale, offset = None, None  # what the next Linear sees: scale * level + offset (or scale * events)
    index = 0
    while True:
        linear = modules[index] if index < len(modules) else None
        where = f"net[{index}] ({type(linear).__name__})"
        if not isinstance(linear, torch.nn.Linear):
            expected = "an nn.Linear" + (" after each neuron" if layers else " first")
            raise ValueError(f"net: expected {expected}, got {where if linear is not None else 'the end of the chain'}")
        weights, bias = _linear(linear)
        if scale is None:
            scale, offset = np.ones(weights.shape[1]), np.zeros(weights.shape[1])
        elif weights.shape[1] != scale.shape[0]:
            raise ValueError(f"{where}: expected in_features {scale.shape[0]} (the neurons before it), "
                             f"got {weights.shape[1]}")
        weights, bias = weights * scale, bias + weights @ offset
        following = modules[index + 1] if index + 1 < len(modules) else None
        if not _is_memory_neuron(following):
            if index + 2 < len(modules):
                raise ValueError(
                    f"net[{index + 2}] ({type(modules[index + 2]).__name__}): expected the chain to end "
                    f"after the readout net[{index + 1}]; a readout must be last"
                )
            readout = _readout_spec(following, weights, bias, f"net[{index + 1}] ({type(following).__name__})")
            if not layers:
                raise ValueError("net: expected at least one memory neuron (CMRU, BMRU) between Linears, got none")
            return NetworkSpec(tuple(layers), readout, "sequence", False, modules[0].in_features)
        unit, scale, offset = _neuron_unit(following, bias, f"net[{index + 1}] ({type(following).__name__})")
        layers.append(LayerSpec(weights, unit))
        index += 2


def _flatten(net: torch.nn.Module) -> list:
    if isinstance(net, torch.nn.Sequential):
        return [leaf for child in net for leaf in _flatten(child)]
    return [net]


def _is_memory_neuron(module) -> bool:
    from . import norse as cn
    from . import snntorch as cs

    return isinstance(module, (cs.MemoryNeuron, cn.MemoryModule))


def _neuron_unit(neuron, bias: np.ndarray, where: str):
    """An snnTorch / Norse memory neuron -> ``(UnitSpec, scale, offset)``: what the next
    Linear sees is ``scale * level + offset`` (state output) or ``scale * events``."""
    from . import snntorch as cs

    if neuron.step_from_input:
        raise ValueError(f"{where}: alpha-CMRU has no integer form (its step is an input-dependent softplus)")
    if isinstance(neuron, cs.MemoryNeuron) and neuron.state_quant:
        raise ValueError(f"{where}: state_quant has no deployed form; deploy without it")
    streams = neuron.streams
    hidden = bias.shape[0] // streams
    size = neuron.size if isinstance(neuron, cs.MemoryNeuron) else neuron._width()
    if bias.shape[0] % streams or (size is not None and size != hidden):
        wanted = f"{streams} x H" if size is None else f"{streams} x {size} = {streams * size}"
        raise ValueError(f"{where}: expected the Linear before it to give {wanted} currents "
                         f"({' | '.join(['candidate', 'threshold'][:streams])}), got {bias.shape[0]}")

    def vector(value, name):
        return _per_unit(value, hidden, name, where)

    kind = neuron_kind(neuron.epsilon, neuron.step_from_input, where)
    alpha = vector(neuron.alpha, "alpha")
    if np.any(alpha == 0):
        raise ValueError(f"{where}: expected alpha non-zero (the level spacing), got zeros")
    h0 = vector(0.0 if neuron.h0 is None else neuron.h0, "h0")
    threshold = np.zeros(hidden) if neuron.threshold_from_input else np.abs(vector(neuron.threshold, "threshold"))
    if kind.level_rule == "count":  # the level counts events from 0; h_0 goes into the next bias
        initial, offset = np.zeros(hidden), h0
    else:
        initial, offset = h0 / alpha, np.zeros(hidden)
        if not np.all(np.isin(initial, (-1.0, 0.0, 1.0))):
            raise ValueError(f"{where}: a BMRU deploys with h0 in {{-alpha, 0, +alpha}} (its levels), "
                             f"got h0 / alpha = {initial.tolist()}")
    if neuron.output_state:
        scale, output = alpha, "changes"
    else:
        factor = getattr(neuron, "graded_spikes_factor", 1.0)  # snnTorch's spike scale
        scale, offset, output = vector(factor, "graded_spikes_factor"), np.zeros(hidden), "events"
    unit = UnitSpec(kind.name, bias, threshold, np.zeros(hidden), initial, output=output)
    return unit, scale, offset


def _readout_spec(module, weights: np.ndarray, bias: np.ndarray, where: str) -> ReadoutSpec:
    """The readout neuron after the last Linear (None: the Linear is the readout)."""
    import norse.torch as nt
    import snntorch as snn


    def vector(value, name):
        return _per_unit(value, weights.shape[0], name, where)

    if module is None:
        return ReadoutSpec(weights, bias)
    if type(module) is snn.Leaky:
        if module.state_quant or module.inhibition or not module.reset_delay:
            raise ValueError(f"{where}: expected an snn.Leaky without state_quant and inhibition, reset_delay=True")
        mechanism = module.reset_mechanism
        return ReadoutSpec(weights, bias, membrane_decay=vector(module.beta.clamp(0, 1), "beta"),
                           threshold=vector(module.threshold, "threshold"), reset_mechanism=mechanism)
    if isinstance(module, (nt.LI, nt.LICell, nt.LIBoxCell)):  # v += dt tau_mem_inv (v_leak - v + i)
        gain = module.dt * vector(module.p.tau_mem_inv, "tau_mem_inv")
        synapse = 1.0 - module.dt * vector(module.p.tau_syn_inv, "tau_syn_inv") \
            if hasattr(module.p, "tau_syn_inv") else None
        if np.any(gain < 0) or np.any(gain > 1) or (synapse is not None and np.any((synapse < 0) | (synapse > 1))):
            raise ValueError(f"{where}: expected dt * tau_inv in [0, 1] (a stable Euler step), got dt={module.dt}")
        return ReadoutSpec(weights * gain[:, None], bias * gain, synapse_decay=synapse, membrane_decay=1.0 - gain,
                           membrane_bias=gain * vector(module.p.v_leak, "v_leak"))
    raise ValueError(
        f"{where}: expected a readout snn.Leaky, Norse LI / LICell / LIBoxCell, or a memory neuron "
        f"(CMRU, BMRU of cmru_neuro.snntorch / cmru_neuro.norse) after a Linear"
    )


def _per_unit(value, size: int, name: str, where: str) -> np.ndarray:
    """A scalar or ``(size,)`` parameter as a float64 ``(size,)`` array."""
    array = torch.as_tensor(value).detach().double().cpu().numpy()
    if array.ndim > 1 or array.size not in (1, size):
        raise ValueError(f"{where}: expected {name} a scalar or ({size},), got shape {array.shape}")
    return np.broadcast_to(array, (size,)).copy()


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


def quantize(model: MemoryNetwork | torch.nn.Sequential, inputs: Tensor, *, input_bits: int = 8) -> Quantized:
    """Post-training quantization of ``model`` to the integer format (see the module doc).

    ``model``: a MemoryNetwork or an snnTorch / Norse pipeline (:func:`pipeline_spec`).
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
            unit.output,
        )))
        step = 1.0
    real = float_spec.readout
    weights, exponent = weight_lattice(real.weights)
    readout = ReadoutSpec(
        weights, _to_integers(real.bias, exponent, "readout bias"), exponent,
        _decay_mantissas(real.synapse_decay), _decay_mantissas(real.membrane_decay),
        _to_integers(real.membrane_bias, exponent, "readout membrane_bias"),
        _to_integers(real.threshold, exponent, "readout threshold"), real.reset_mechanism,
    )
    spec = NetworkSpec(tuple(layers), readout, float_spec.readout_mode, True,
                       float_spec.input_size, x_exponent, input_bits, float_spec.rectify_input)
    calibration = simulate(spec, inputs)
    if calibration.saturations:
        warnings.warn(f"quantize: the calibration inputs saturate the integer model: {calibration.saturations}")
    return Quantized(spec, calibration)


def _decay_mantissas(factors: np.ndarray) -> np.ndarray:
    """Decay factors in [0, 1] -> integers in units of ``2**-12`` (rounded)."""
    return np.rint(np.asarray(factors, np.float64) * DECAY_UNIT).astype(np.int64)


def dequantize(spec: NetworkSpec, model: MemoryNetwork) -> MemoryNetwork:
    """A float copy of ``model`` that computes exactly what the integer ``spec`` computes.

    Weights become ``mantissa * 2**exponent``, alpha 1, h_0 the integer initial level
    (CMRU: 0, its h_0 being in the biases). Outputs equal the integer model's while nothing
    saturates (float32 is exact on these values).
    """
    _check_fixed_point(spec)
    if unit_kind(model.unit_name).first_quadrant:
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
            if unit_kind(unit.kind).first_quadrant:
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
# Accuracy
# --------------------------------------------------------------------------------------


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
    model: MemoryNetwork, spec: NetworkSpec, inputs: Tensor, targets: Tensor, *, correct
) -> AccuracyReport:
    """Accuracy of the float ``model`` and of the integer ``spec`` on ``inputs`` ``(T, B, F)``.

    ``correct(outputs, targets) -> (hits, decisions)``: the scorer, a task's
    :meth:`~cmru_neuro.tasks.Task.correct` (the task knows its targets' layout).
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
    "UnitSpec", "UnitStep", "accuracy_report", "dequantize", "encode_inputs", "logits",
    "network_spec", "pipeline_spec", "quantize", "readout_step", "saturate", "simulate", "unit_step",
    "weight_lattice",
]
