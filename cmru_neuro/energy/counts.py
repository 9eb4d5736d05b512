"""The counting vocabulary: what one inference's counts are and what a rule fills them with.

:class:`LayerCounts` / :class:`ModelCounts` are the counts (per inference, that is per
sample of the batch); :class:`Rule` says how to count one layer type; a rule's ``count``
gets the run's :class:`CountingSession` (message bookkeeping) and adds :class:`SynapticOps`
with :func:`add_synaptic`. The rules live in :mod:`.layer_rules`, the walk over the module
tree in :mod:`.counting`; both import this module.

Messages (the non-zero values an event-driven target sends and processes):

- spikes (snnTorch / Norse outputs, our neurons' events, or any input whose values are all
  in {-1, 0, 1}): every nonzero value is a message;
- memory-unit states: a message is a state change (the unit's level change, from its
  trace), so a unit that holds its state sends nothing;
- any other (graded) value is sigma-delta coded: a message where the value changed since the
  previous step (the first step compares with zero).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

import torch
from torch import Tensor, nn

# counts that are plain sums (per inference after normalisation)
SUMMED = (
    "dense_ops",
    "dense_acs",
    "effective_macs",
    "effective_acs",
    "message_macs",
    "message_acs",
    "neuron_updates",
    "active_updates",
    "membrane_updates",
    "gate_openings",
    "state_changes",
    "messages_out",
)


@dataclass
class LayerCounts:
    """What one layer does in one inference (per sample).

    Synaptic operations follow NeuroBench: ``dense_ops`` counts every weight x input pair
    (NeuroBench "Dense"); ``effective_macs`` / ``effective_acs`` skip zero inputs and zero
    weights and call an op an AC when its call's input is all in {-1, 0, 1}. ``message_macs`` /
    ``message_acs`` are the synaptic ops an event-driven target runs: input messages x fan-out.
    ``neuron_updates`` is every unit every step; ``active_updates`` only the updates an
    event-driven target runs. ``membrane_updates`` is NeuroBench's MembraneUpdates: every
    stateful unit at its first step, then only the steps where its state changed (units
    whose per-step state is not readable: every step). ``state_changes`` (memory units) are
    steps where a unit's output changed; ``gate_openings`` where its gate fired;
    ``changes_per_step`` the state changes at each step. ``messages_out`` are the messages the
    layer sends downstream.
    """

    name: str
    kind: str
    steps: int = 0
    neurons: int = 0
    synapses: int = 0
    state_variables: int = 0
    dense_ops: float = 0.0
    dense_acs: float = 0.0
    effective_macs: float = 0.0
    effective_acs: float = 0.0
    message_macs: float = 0.0
    message_acs: float = 0.0
    neuron_updates: float = 0.0
    active_updates: float = 0.0
    membrane_updates: float = 0.0
    gate_openings: float = 0.0
    state_changes: float = 0.0
    messages_out: float = 0.0
    changes_per_step: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def weight_reads(self) -> float:
        """Weight reads on a clocked target: one per dense synaptic op."""
        return self.dense_ops

    @property
    def message_weight_reads(self) -> float:
        """Weight reads on an event-driven target: one per synaptic op triggered by a message."""
        return self.message_macs + self.message_acs

    @property
    def state_accesses(self) -> float:
        """State reads + writes on a clocked target: 2 per state variable per update."""
        return 2.0 * self.state_variables * self.neuron_updates

    @property
    def active_state_accesses(self) -> float:
        """State reads + writes on an event-driven target (active updates only)."""
        return 2.0 * self.state_variables * self.active_updates

    def add_changes_per_step(self, per_step: Tensor) -> None:
        """Append the state changes of each step ``(T,)`` (summed over the batch)."""
        self.changes_per_step.extend(per_step.double().tolist())

    def scaled(self, samples: int) -> "LayerCounts":
        """Totals over ``samples`` inputs -> per inference."""
        sums = {name: getattr(self, name) / samples for name in SUMMED}
        per_step = [value / samples for value in self.changes_per_step]
        return dataclasses.replace(self, **sums, changes_per_step=per_step, notes=list(self.notes))

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        for name in (
            "weight_reads",
            "message_weight_reads",
            "state_accesses",
            "active_state_accesses",
        ):
            data[name] = getattr(self, name)
        return data


@dataclass
class ModelCounts:
    """Counts of one inference: per layer, plus what the whole run looked like.

    ``samples``: batch size the example input carried (counts are divided by it);
    ``time_steps``: steps of one inference; ``input_values`` / ``output_values``: values
    per inference entering and leaving the model (for analog conversion costs);
    ``left_out``: what the counts do not cover.
    """

    model: str
    layers: list[LayerCounts]
    samples: int
    time_steps: int
    input_values: int
    output_values: int
    left_out: list[str]

    def total(self, name: str) -> float:
        """Sum of one count over the layers (a :data:`SUMMED` name or a traffic property)."""
        return float(sum(getattr(layer, name) for layer in self.layers))

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "samples": self.samples,
            "time_steps": self.time_steps,
            "input_values": self.input_values,
            "output_values": self.output_values,
            "layers": [layer.to_dict() for layer in self.layers],
            "left_out": list(self.left_out),
        }


class UnsupportedLayerError(TypeError):
    """A layer the energy counter has no rule for (never counted as zero silently)."""


# -------------------------------------------------------------------------------------------
# Synaptic operations (NeuroBench's rules) and messages
# -------------------------------------------------------------------------------------------


def is_ternary(x: Tensor) -> bool:
    """True when every value is in {-1, 0, 1} (NeuroBench's test for an AC)."""
    return bool(((x == 0) | (x == 1) | (x == -1)).all())


def connection_count(
    apply: Callable[[Tensor, Tensor], Tensor], inputs: Tensor, weight: Tensor
) -> float:
    """``sum(apply(1[inputs != 0], 1[weight != 0]))``: the weight x input pairs both nonzero.

    ``apply`` is the layer's linear map with bias left out (``F.linear``, a conv...);
    computed in float64 so the counts are exact.
    """
    with torch.no_grad():
        mask = (inputs.detach() != 0).double()
        weights = (weight.detach() != 0).double()
        return float(apply(mask, weights).sum())


@dataclass
class SynapticOps:
    """One call's synaptic operations (totals over the batch)."""

    dense: float
    effective: float
    messages: float
    ternary: bool
    message_ternary: bool
    message_mask: Tensor  # which inputs were messages, shaped like the input


class CountingSession:
    """State shared by the hooks during one counting run.

    ``time_first``: the model passes whole sequences between layers (memory units,
    baselines, Norse sequence modules): a generic layer's input with 3 or more axes has its
    time on ``time_axis``; a 2-axis input, and every call in a step-wise (snnTorch style)
    model, is one time step, with deltas taken between successive calls.
    """

    def __init__(self, time_first: bool, time_axis: int, samples: int):
        self.time_first = time_first
        self.time_axis = time_axis
        self.samples = samples
        self._message_sources: dict[int, tuple[Tensor, Tensor, bool]] = {}
        self._previous: dict[str, Tensor] = {}

    def mark_messages(self, output: Tensor, messages: Tensor, ternary: bool) -> None:
        """Declare the messages an output tensor carries (spikes, state changes)."""
        self._message_sources[id(output)] = (output, messages != 0, ternary)

    def time_axis_of(self, x: Tensor) -> Optional[int]:
        """Time axis of a tensor entering a generic layer, None when one call is one step."""
        return self.time_axis if self.time_first and x.dim() >= 3 else None

    def messages(self, key: str, x: Tensor, time_axis: Optional[int]) -> tuple[Tensor, bool]:
        """Message mask of a tensor entering or leaving a layer, and whether messages are ternary.

        Known spikes / state changes are used as declared; other ternary values are spikes;
        graded values are sigma-delta coded along ``time_axis`` (None: against the previous
        call under ``key``; the first step compares with zero).
        """
        known = self._message_sources.get(id(x))
        if known is not None and known[0] is x:
            return known[1], known[2]
        if is_ternary(x.detach()):
            return x.detach() != 0, True
        return self.changes(key, x, time_axis), False

    def changes(self, key: str, x: Tensor, time_axis: Optional[int]) -> Tensor:
        """Sigma-delta messages of a value: where it differs from the step before (zero before
        the first step), along ``time_axis`` or, when None, against the last call under ``key``."""
        x = x.detach()
        if time_axis is not None:
            return x != shift_in_time(x, torch.zeros_like(x.narrow(time_axis, 0, 1)), time_axis)
        previous = self._previous.get(key)
        if previous is None or previous.shape != x.shape:
            previous = torch.zeros_like(x)
        self._previous[key] = x
        return x != previous

    def synaptic_ops(
        self,
        key: str,
        apply: Callable[[Tensor, Tensor], Tensor],
        x: Tensor,
        weight: Tensor,
        time_axis: Optional[int],
    ) -> SynapticOps:
        """Dense, effective and event-driven synaptic ops of ``apply(x, weight)``."""
        message_mask, message_ternary = self.messages(key, x, time_axis)
        return SynapticOps(
            dense=connection_count(apply, torch.ones_like(x), torch.ones_like(weight)),
            effective=connection_count(apply, x, weight),
            messages=connection_count(apply, message_mask, weight),
            ternary=is_ternary(x.detach()),
            message_ternary=message_ternary,
            message_mask=message_mask,
        )


def shift_in_time(x: Tensor, first: Tensor, time_axis: int) -> Tensor:
    """``x`` delayed by one step along ``time_axis``, ``first`` (one step) in front."""
    length = x.shape[time_axis]
    return torch.cat([first, x.narrow(time_axis, 0, length - 1)], dim=time_axis)


def add_synaptic(counts: LayerCounts, ops: SynapticOps) -> None:
    """Accumulate one call's synaptic ops into a layer's counts."""
    counts.dense_ops += ops.dense
    if ops.ternary:
        counts.dense_acs += ops.dense
        counts.effective_acs += ops.effective
    else:
        counts.effective_macs += ops.effective
    if ops.message_ternary:
        counts.message_acs += ops.messages
    else:
        counts.message_macs += ops.messages


@dataclass
class Rule:
    """How to count one layer type.

    ``count(session, module, counts, args, output)`` runs after each call;
    ``owns_children``: the rule counts the children too (do not descend into them);
    ``setup(module, counts)`` fills static counts (neurons, synapses, state variables).
    """

    types: tuple
    count: Callable
    setup: Callable[[nn.Module, LayerCounts], None]
    owns_children: bool = True
    sequence: Union[bool, Callable[[nn.Module], bool]] = False  # takes whole time-first sequences
