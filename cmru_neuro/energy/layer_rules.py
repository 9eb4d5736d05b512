"""Counting rules per layer type (see :mod:`.counts` for the counts and messages).

Each rule's ``count(session, module, counts, args, output)`` runs after a call and adds
totals over the batch; ``setup(module, counts)`` fills the static counts. Memory units
take their gates from their trace (``unit(x, return_trace=True)``, or the unit's own
``update(currents(x))`` when called without it) and their state changes from their
outputs; nothing re-derives the update.
"""

from __future__ import annotations

from typing import Optional

import snntorch
import torch
from norse.torch import LIF, LIFCell
from snntorch._neurons.rleaky import RecurrentOneToOne
from torch import Tensor, nn
from torch.nn import functional as F

from ..baselines import LRU, MinGRU
from ..layers import MemoryUnit
from ..models import GatedMLP, LearnedPositions, ReferenceLayer, ResidualBlock, SpikingCell
from ..norse import MemoryCell, MemorySequence
from ..snntorch import MemoryNeuron
from .counts import CountingSession, LayerCounts, Rule, add_synaptic, shift_in_time


def _nonzero(*tensors: Tensor) -> int:
    return int(sum(int((t.detach() != 0).sum()) for t in tensors))


def _linear(inputs: Tensor, weight: Tensor) -> Tensor:
    return F.linear(inputs, weight)


def _sequence_axes(module: nn.Module, x: Tensor) -> tuple[int, int]:
    """``(time_axis, batch)`` of a sequence input ``(T, B, F)``, ``(B, T, F)`` or ``(T, F)``."""
    if x.dim() == 2:
        return 0, 1
    if getattr(module, "batch_first", False):
        return 1, x.shape[0]
    return 0, x.shape[1]


def _time_first(t: Tensor, time_axis: int) -> Tensor:
    """A sequence tensor as ``(T, B, ...)`` (unbatched ``(T, H)`` gains B = 1)."""
    if t.dim() == 2:
        return t.unsqueeze(1)
    return t.transpose(0, 1) if time_axis == 1 else t


def _from_time_first(t: Tensor, like: Tensor, time_axis: int) -> Tensor:
    """Undo :func:`_time_first` for a tensor shaped like ``like``."""
    if like.dim() == 2:
        return t.squeeze(1)
    return t.transpose(0, 1) if time_axis == 1 else t


def _messages_out(session: CountingSession, counts: LayerCounts, out: Tensor, time_axis) -> None:
    mask, _ = session.messages(f"{counts.name}:out", out, time_axis)
    counts.messages_out += float(mask.sum())


# -- memory units ------------------------------------------------------------------------------


def _setup_projected_cell(cell: nn.Module, counts: LayerCounts) -> None:
    """A cell with an input ``projection`` and one state variable per unit."""
    counts.neurons = cell.hidden_size
    counts.synapses = _nonzero(cell.projection.weight)
    counts.state_variables = 1


def _membrane_updates(changes: Tensor) -> float:
    """NeuroBench's MembraneUpdates of a time-first sequence of state changes ``(T, ...)``:
    every unit at the first step, then the units whose state changed."""
    return float(changes[0].numel() + changes[1:].sum())


def _stepwise_membrane_updates(session, module, counts: LayerCounts, changed: Tensor) -> float:
    """NeuroBench's MembraneUpdates of one call of a step-wise neuron: every unit at the
    layer's first call, then the units whose ``module.mem`` changed since the last call
    (the mask ``changed`` when the neuron keeps no ``mem``, as Norse cells)."""
    mem = getattr(module, "mem", None)
    if isinstance(mem, Tensor) and mem.numel() > 0:
        changed = session.changes(f"{counts.name}:mem", mem, None)
    return float(changed.numel() if counts.steps == 0 else changed.sum())


def _count_memory_unit(session, unit: MemoryUnit, counts: LayerCounts, args, output) -> None:
    x, outputs = args[0], output[0]
    if len(output) == 3:  # called with return_trace
        gates = output[2].gates
    else:  # the unit's own gate, from its own currents
        gates = unit.update(unit.currents(x)).gate
    time_axis, batch = _sequence_axes(unit, x)
    ops = session.synaptic_ops(counts.name, _linear, x, unit.projection.weight, time_axis)
    add_synaptic(counts, ops)
    h = _time_first(outputs.detach(), time_axis)
    steps, hidden = h.shape[0], unit.hidden_size
    h0 = args[1] if len(args) > 1 and args[1] is not None else unit.initial_state(batch)
    h0 = h0.detach().reshape(1, batch, hidden)
    changes = h != shift_in_time(h, h0, 0)
    gates = _time_first(gates.detach(), time_axis) != 0
    with torch.no_grad():
        weights = (unit.projection.weight.detach() != 0).double()
        reach = F.linear(_time_first(ops.message_mask.double(), time_axis), weights)
    reached = reach.view(steps, batch, -1, hidden).sum(dim=2) > 0
    active = reached | gates
    active[0] = True  # the first step evaluates every unit
    counts.steps += steps
    counts.neuron_updates += steps * batch * hidden
    counts.active_updates += float(active.sum())
    counts.membrane_updates += _membrane_updates(changes)
    counts.gate_openings += float(gates.sum())
    counts.state_changes += float(changes.sum())
    counts.messages_out += float(changes.sum())
    counts.add_changes_per_step(changes.sum(dim=(1, 2)))
    session.mark_messages(
        outputs, _from_time_first(changes, outputs, time_axis), ternary=not unit.input_step
    )


def _count_memory_neuron(
    session, neuron, counts: LayerCounts, args, output, sequence: bool
) -> None:
    """snnTorch / Norse memory neurons: currents ``(..., k H)`` in, events (or the state) out.

    A state change is a change of the output state (``output_state``) or, with event output,
    a nonzero event (exact for CMRU; for BMRU an upper bound: an event towards the state a
    unit already holds changes nothing); a unit is active when one of its input currents
    changed or it changed.
    """
    current = args[0]
    out = output[0] if isinstance(output, tuple) else output
    time_axis = 0 if sequence else None
    steps = current.shape[0] if sequence else 1
    if neuron.output_state:
        changes = session.changes(f"{counts.name}:out", out, time_axis)
    else:
        changes = out.detach() != 0
    inputs_changed, _ = session.messages(counts.name, current, time_axis)
    active = inputs_changed.unflatten(-1, (neuron.streams, -1)).any(dim=-2) | changes
    if sequence:
        active[0] = True
    elif counts.steps == 0:
        active[:] = True  # the first step evaluates every unit
    per_step = changes.flatten(1).sum(dim=1) if sequence else changes.sum().reshape(1)
    counts.membrane_updates += (
        _membrane_updates(changes)
        if sequence
        else _stepwise_membrane_updates(session, neuron, counts, changes)
    )
    counts.steps += steps
    counts.neurons = max(counts.neurons, changes.numel() // (session.samples * steps))
    counts.neuron_updates += changes.numel()
    counts.active_updates += float(active.sum())
    counts.state_changes += float(changes.sum())
    counts.messages_out += float(changes.sum())
    if not neuron.output_state:
        counts.gate_openings += float(changes.sum())
    counts.add_changes_per_step(per_step)
    session.mark_messages(out, changes, ternary=not (neuron.output_state and neuron.step_from_input))


def _memory_neuron_rules() -> list[Rule]:
    """The memory neurons of cmru_neuro.snntorch and cmru_neuro.norse."""

    def count_snntorch(session, neuron, counts, args, output):
        _count_memory_neuron(session, neuron, counts, args, output, bool(neuron.sequence))

    rules = [
        Rule(
            (MemoryNeuron,),
            count_snntorch,
            _spiking_setup(1),
            sequence=lambda neuron: bool(neuron.sequence),
        )
    ]
    for types, sequence in (((MemorySequence,), True), ((MemoryCell,), False)):

        def count_norse(session, neuron, counts, args, output, sequence=sequence):
            _count_memory_neuron(session, neuron, counts, args, output, sequence)

        rules.append(Rule(types, count_norse, _spiking_setup(1), sequence=sequence))
    return rules


# -- baselines ---------------------------------------------------------------------------------


def _setup_lru(lru: LRU, counts: LayerCounts) -> None:
    counts.neurons = lru.hidden_size
    counts.synapses = _nonzero(lru.B_re, lru.B_im, lru.C_re, lru.C_im, lru.D)
    counts.state_variables = 2  # real and imaginary parts
    counts.notes.append(
        "LRU: state-side ops (C x) assume a nonzero state and run every step; the complex "
        "recurrence is priced as one neuron update per unit (2 state variables)"
    )


def _count_lru(session, lru: LRU, counts: LayerCounts, args, output) -> None:
    x = args[0]
    time_axis, batch = _sequence_axes(lru, x)
    steps, hidden = x.shape[time_axis], lru.hidden_size
    input_weights = torch.cat([lru.B_re, lru.B_im, lru.D])
    add_synaptic(counts, session.synaptic_ops(counts.name, _linear, x, input_weights, time_axis))
    state_dense = steps * batch * 2 * hidden * hidden
    state_effective = steps * batch * _nonzero(lru.C_re, lru.C_im)
    counts.dense_ops += state_dense
    counts.effective_macs += state_effective
    counts.message_macs += state_effective
    _count_dense_state(counts, steps, batch, hidden)
    _messages_out(session, counts, output[0], time_axis)


def _count_min_gru(session, gru: MinGRU, counts: LayerCounts, args, output) -> None:
    x = args[0]
    time_axis, batch = _sequence_axes(gru, x)
    add_synaptic(
        counts, session.synaptic_ops(counts.name, _linear, x, gru.projection.weight, time_axis)
    )
    _count_dense_state(counts, x.shape[time_axis], batch, gru.hidden_size)
    _messages_out(session, counts, output[0], time_axis)


def _count_dense_state(counts: LayerCounts, steps: int, batch: int, hidden: int) -> None:
    """A leaky state changes every step: every unit updates every step on any target."""
    counts.steps += steps
    counts.neuron_updates += steps * batch * hidden
    counts.active_updates += steps * batch * hidden
    counts.membrane_updates += steps * batch * hidden


# -- spiking neurons -----------------------------------------------------------------------------


def _spiking_setup(state_variables: int):
    def setup(module: nn.Module, counts: LayerCounts) -> None:
        counts.state_variables = state_variables

    return setup


def _count_spiking(
    session, module, counts: LayerCounts, args, output, time_axis: Optional[int]
) -> None:
    """A leaky spiking neuron: every unit updates every step; its spikes are its messages."""
    current = args[0]
    spikes = output[0] if isinstance(output, tuple) else output
    steps = 1 if time_axis is None else current.shape[time_axis]
    every_unit = torch.ones_like(current, dtype=torch.bool)  # a leaky state moves every step
    counts.membrane_updates += (
        _stepwise_membrane_updates(session, module, counts, every_unit)
        if time_axis is None
        else float(current.numel())  # a Norse sequence returns its last state only
    )
    counts.steps += steps
    counts.neurons = max(counts.neurons, current.numel() // (session.samples * steps))
    counts.neuron_updates += current.numel()
    counts.active_updates += current.numel()
    counts.messages_out += float((spikes.detach() != 0).sum())
    session.mark_messages(spikes, spikes.detach(), ternary=True)


def _count_stepwise_spiking(session, module, counts, args, output) -> None:
    _count_spiking(session, module, counts, args, output, None)


def _count_norse_sequence(session, module, counts, args, output) -> None:
    _count_spiking(session, module, counts, args, output, 0)


# -- stateless layers ----------------------------------------------------------------------------


def _setup_connection(module: nn.Module, counts: LayerCounts) -> None:
    counts.synapses = _nonzero(module.weight)


def _count_linear(session, layer: nn.Linear, counts: LayerCounts, args, output) -> None:
    x = args[0]
    time_axis = session.time_axis_of(x)
    add_synaptic(counts, session.synaptic_ops(counts.name, _linear, x, layer.weight, time_axis))
    counts.steps += 1 if time_axis is None else x.shape[time_axis]


def _count_conv1d(session, layer: nn.Conv1d, counts: LayerCounts, args, output) -> None:
    def apply(inputs: Tensor, weight: Tensor) -> Tensor:
        return layer._conv_forward(inputs, weight, None)

    add_synaptic(counts, session.synaptic_ops(counts.name, apply, args[0], layer.weight, None))
    counts.steps += 1


def _setup_one_to_one(module: nn.Module, counts: LayerCounts) -> None:
    counts.synapses = _nonzero(torch.as_tensor(module.V))


def _count_one_to_one(session, module, counts: LayerCounts, args, output) -> None:
    """snnTorch RLeaky's one-to-one recurrence ``spikes * V``: one synapse per neuron."""

    def apply(inputs: Tensor, weight: Tensor) -> Tensor:
        return inputs * weight

    weight = torch.as_tensor(module.V, dtype=args[0].dtype)
    add_synaptic(counts, session.synaptic_ops(counts.name, apply, args[0], weight, None))
    counts.steps += 1


def _count_elementwise(session, module, counts: LayerCounts, args, output) -> None:
    """An activation (or normalisation) is a neuron per output value, state-free."""
    x, out = args[0], output
    time_axis = session.time_axis_of(x)
    steps = 1 if time_axis is None else x.shape[time_axis]
    counts.steps += steps
    counts.neurons = max(counts.neurons, out.numel() // (session.samples * steps))
    counts.neuron_updates += out.numel()
    mask, _ = session.messages(counts.name, x, time_axis)
    if mask.shape != out.shape:  # GLU halves its input: a neuron is active if either half changed
        first, second = mask.chunk(2, dim=getattr(module, "dim", -1))
        mask = first | second
    counts.active_updates += float(mask.sum())
    _messages_out(session, counts, out, time_axis)


def _no_setup(module: nn.Module, counts: LayerCounts) -> None:
    return None


def _count_nothing(session, module, counts, args, output) -> None:
    """Identity, dropout (eval) and reshapes cost nothing."""
    return


ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Softplus,
    nn.Softsign,
    nn.Mish,
    nn.GLU,
    nn.Softmax,
    nn.LogSoftmax,
    nn.LayerNorm,
)
FREE = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.AlphaDropout, nn.Flatten, nn.Unflatten)


FRAMEWORK_RULES = [  # snnTorch and Norse neurons
    Rule((snntorch.Synaptic,), _count_stepwise_spiking, _spiking_setup(2), owns_children=False),
    Rule(
        (snntorch.Leaky, snntorch.RLeaky),
        _count_stepwise_spiking,
        _spiking_setup(1),
        owns_children=False,
    ),
    Rule((RecurrentOneToOne,), _count_one_to_one, _setup_one_to_one),
    Rule((LIF,), _count_norse_sequence, _spiking_setup(2), sequence=True),
    Rule((LIFCell,), _count_stepwise_spiking, _spiking_setup(2)),
]


# -- the paper's block (cmru_neuro.models) -----------------------------------------------------


def _setup_residual_block(block: nn.Module, counts: LayerCounts) -> None:
    counts.synapses = _nonzero(block.scale)
    counts.notes.append(
        f"{counts.name}: the per-channel scale product is counted for every channel every step "
        "(the cell's events are not visible to it); the two residual additions are not counted"
    )


def _add_scale_products(counts: LayerCounts, x: Tensor, scale: Optional[Tensor]) -> None:
    """``scale * x`` over ``x (..., W)``: one MAC per channel per step, every step."""
    if scale is None:
        return
    products = x.numel() // x.shape[-1] * _nonzero(scale)
    counts.dense_ops += x.numel()
    counts.effective_macs += products
    counts.message_macs += products


def _add_steps(session, counts: LayerCounts, x: Tensor) -> None:
    time_axis = session.time_axis_of(x)
    counts.steps += 1 if time_axis is None else x.shape[time_axis]


def _count_residual_block(session, block, counts: LayerCounts, args, output) -> None:
    """The block's own arithmetic: ``scale * cell_output`` (one synapse per channel)."""
    _add_scale_products(counts, args[0], block.scale)
    _add_steps(session, counts, args[0])


def _setup_reference_layer(layer: nn.Module, counts: LayerCounts) -> None:
    scales = [t for t in (layer.scale, layer.mlp_scale) if t is not None]
    counts.synapses = _nonzero(*scales) if scales else 0
    counts.notes.append(
        f"{counts.name}: the skip scales (per channel) and the output gate (a sigmoid per unit "
        "and its product) are counted for every channel every step; the residual additions are "
        "not counted"
    )


def _count_reference_layer(session, layer, counts: LayerCounts, args, output) -> None:
    """The reference layer's own arithmetic: skip scales and ``sigmoid(gate) * y``."""
    x = args[0]
    _add_scale_products(counts, x, layer.scale)
    _add_scale_products(counts, x, layer.mlp_scale)
    if layer.gate is not None:
        counts.neuron_updates += x.numel()  # the sigmoid
        counts.active_updates += x.numel()
        counts.dense_ops += x.numel()  # its product with the cell's output
        counts.effective_macs += x.numel()
        counts.message_macs += x.numel()
    _add_steps(session, counts, x)


def _setup_positions(positions: nn.Module, counts: LayerCounts) -> None:
    counts.notes.append(
        f"{counts.name}: the learned positional encoding depends on the step only (a table "
        "computed once, not per inference) and is not priced; the Linear that injects it is"
    )


def _count_positions(session, positions, counts: LayerCounts, args, output) -> None:
    """``positions(steps, like)``: an input-independent table, no work per inference."""
    counts.steps += int(args[0])


def _setup_gated_mlp(mlp: nn.Module, counts: LayerCounts) -> None:
    counts.neurons = mlp.up.out_features // 2
    counts.notes.append(
        f"{counts.name}: the GLU (a functional call) is counted as one update per unit every step"
    )


def _count_gated_mlp(session, mlp, counts: LayerCounts, args, output) -> None:
    """The GLU between ``up`` and ``down`` (a functional call, so not a module of its own)."""
    x = args[0]
    glu_outputs = x.numel() // x.shape[-1] * counts.neurons
    counts.neuron_updates += glu_outputs
    counts.active_updates += glu_outputs
    _add_steps(session, counts, x)


# the training models' own arithmetic; their sub-layers are counted as usual
PROJECT_MODEL_RULES = [
    # a time-first sequence layer whose neurons step one call at a time
    Rule((SpikingCell,), _count_nothing, _no_setup, owns_children=False, sequence=True),
    Rule((ResidualBlock,), _count_residual_block, _setup_residual_block, owns_children=False),
    Rule((GatedMLP,), _count_gated_mlp, _setup_gated_mlp, owns_children=False),
    Rule((ReferenceLayer,), _count_reference_layer, _setup_reference_layer, owns_children=False),
    Rule((LearnedPositions,), _count_positions, _setup_positions),
]


RULES: list[Rule] = [
    Rule((MemoryUnit,), _count_memory_unit, _setup_projected_cell, sequence=True),
    Rule((LRU,), _count_lru, _setup_lru, sequence=True),
    Rule((MinGRU,), _count_min_gru, _setup_projected_cell, sequence=True),
    *_memory_neuron_rules(),
    *FRAMEWORK_RULES,
    *PROJECT_MODEL_RULES,
    Rule((nn.Linear,), _count_linear, _setup_connection),
    Rule((nn.Conv1d,), _count_conv1d, _setup_connection),
    Rule(ELEMENTWISE, _count_elementwise, _no_setup),
    Rule(FREE, _count_nothing, _no_setup),
]
