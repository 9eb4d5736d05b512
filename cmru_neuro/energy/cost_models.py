"""The three energy models: which count each profile figure multiplies.

Every model is linear in the figures: energy = sum over figures of value x quantity, where a
quantity is a count (ops, updates, messages, conversions) or a duration (s) times a number of
biased devices. Keeping the quantities explicit gives each figure's contribution, so a
report can say how much of its total rests on assumed figures.

- clocked digital: every op every step (dense synaptic ops; every unit updates every step);
- event-driven digital: work proportional to messages (synaptic ops = input messages x fan-out;
  memory units update only when a message reaches them or their gate opens; messages
  are sent);
- analog: bias power x inference duration for every unit and weight, every product
  computed in place each step (if the profile prices it), plus converting the model's inputs
  and outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .counts import LayerCounts, ModelCounts
from .profiles import HardwareProfile

PARTS = ("compute", "memory", "communication", "static")


@dataclass(frozen=True)
class EnergyParts:
    """Joules per inference, split by where they go."""

    compute: float = 0.0
    memory: float = 0.0
    communication: float = 0.0
    static: float = 0.0

    @property
    def dynamic(self) -> float:
        """Joules of the work itself (compute + memory + communication), static left out."""
        return self.compute + self.memory + self.communication

    @property
    def total(self) -> float:
        """Joules: dynamic + static."""
        return self.dynamic + self.static

    def __add__(self, other: "EnergyParts") -> "EnergyParts":
        return EnergyParts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def to_dict(self) -> dict:
        parts = {part: getattr(self, part) for part in PARTS}
        return {**parts, "dynamic": self.dynamic, "total": self.total}


# (part, figure) -> quantity the figure multiplies
Quantities = dict[tuple[str, str], float]


def layer_quantities(counts: LayerCounts, kind: str, duration: float) -> Quantities:
    """What one layer's counts mean on a target of ``kind``; ``duration`` in s."""
    if kind == "clocked":
        return {
            ("compute", "mac"): counts.dense_ops - counts.dense_acs,
            ("compute", "ac"): counts.dense_acs,
            ("compute", "neuron_update"): counts.neuron_updates,
            ("memory", "weight_read"): counts.weight_reads,
            ("memory", "state_access"): counts.state_accesses,
        }
    if kind == "event-driven":
        return {
            ("compute", "mac"): counts.message_macs,
            ("compute", "ac"): counts.message_acs,
            ("compute", "neuron_update"): counts.active_updates,
            ("memory", "weight_read"): counts.message_weight_reads,
            ("memory", "state_access"): counts.active_state_accesses,
            ("communication", "message_out"): counts.messages_out,
        }
    if kind == "analog":
        biased_units = counts.neurons if counts.state_variables else 0  # activations are diodes
        return {
            ("compute", "mac"): counts.dense_ops,
            ("compute", "neuron_update"): counts.neuron_updates,
            ("static", "unit_bias_power"): biased_units * duration,
            ("static", "synapse_bias_power"): counts.synapses * duration,
        }
    raise ValueError(f"kind: expected one of clocked, event-driven, analog, got {kind!r}")


def system_quantities(counts: ModelCounts, kind: str, duration: float) -> Quantities:
    """Costs of the whole chip rather than of one layer: static power, data conversion."""
    quantities = {("static", "static_power"): duration}
    if kind == "analog":
        quantities[("communication", "dac")] = float(counts.input_values)
        quantities[("communication", "adc")] = float(counts.output_values)
    return quantities


def price(quantities: Quantities, profile: HardwareProfile) -> tuple[EnergyParts, dict[str, float]]:
    """Energy parts (J) and each figure's contribution (J) for some quantities."""
    parts = dict.fromkeys(PARTS, 0.0)
    by_figure: dict[str, float] = {}
    for (part, figure), quantity in quantities.items():
        joules = profile.value(figure) * quantity
        parts[part] += joules
        by_figure[figure] = by_figure.get(figure, 0.0) + joules
    return EnergyParts(**parts), by_figure
