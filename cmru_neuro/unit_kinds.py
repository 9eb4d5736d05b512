"""The one registry of memory-unit kinds: what each kind is in every runtime.

Every place that names a unit kind reads :data:`UNIT_KINDS`: the torch layers
(:data:`cmru_neuro.network.UNITS`), the snnTorch and Norse neurons and NIR nodes
(:func:`neuron_kind`), the integer golden model (``level_rule``), quantization, and the Lava
adapter (``lava_process``, ``outputs``, ``streams``). Classes are named, not imported: this
module imports nothing of the project, so every layer of it may read it (and Lava stays
optional).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

@dataclass(frozen=True)
class UnitKind:
    """One kind of memory unit.

    name: the kind's name (``--cell``, ``MemoryNetwork(unit=...)``, ``UnitSpec.kind``).
    epsilon: the family knob the kind is defined by (1: cumulative, 0: bistable); the value
        it deploys at.
    layer: its class in :mod:`cmru_neuro.layers`.
    level_rule: its integer level update (golden model, Lava ProcessModels): ``"count"``
        (``L += z sign(c)``), ``"latch"`` (``L = sign(c)`` where ``z = 1``), ``"set-reset"``
        (``L = 1`` where ``c >= beta_hi``, 0 where ``c < beta_lo``); None: no integer form.
    outputs: what a deployed layer may send (``"changes"``, ``"events"``).
    streams: currents per unit a deployed layer may take (2: candidate and threshold).
    lava_process: its Process class in :mod:`cmru_neuro.adapters.lava.processes`.
    neuron: its snnTorch neuron and Norse sequence module (``cmru_neuro.snntorch.<neuron>``,
        ``cmru_neuro.norse.<neuron>``; Norse's one-step cell ``<neuron>Cell``) and the name of
        a ``CMRU`` NIR node of its epsilon; None: none.
    step_from_input: the step size comes from the input (alpha-CMRU).
    """

    name: str
    epsilon: float
    layer: str
    level_rule: Optional[str] = None
    outputs: tuple = ()
    streams: tuple = ()
    lava_process: Optional[str] = None
    neuron: Optional[str] = None
    step_from_input: bool = False

    @property
    def first_quadrant(self) -> bool:
        """States in {0, alpha} (the circuit's form): non-negative currents and output stage;
        the unit's definition fixes its thresholds and initialisation."""
        return self.level_rule == "set-reset"

    @property
    def deployable(self) -> bool:
        """True when the kind has an integer form (golden model, Lava)."""
        return self.level_rule is not None

    def layer_class(self) -> type:
        from . import layers

        return getattr(layers, self.layer)

    def check_deployed(self, output: str, streams: int, where: str) -> None:
        """Raise ValueError (naming ``where``) unless a deployed layer of this kind may send
        ``output`` and take ``streams`` currents per unit."""
        if not self.deployable:
            raise ValueError(f"{where}: unit kind {self.name!r} has no integer form; expected one of "
                             f"{', '.join(map(repr, DEPLOYABLE))}")
        if output not in self.outputs:
            raise ValueError(f"{where} output: expected {' or '.join(map(repr, self.outputs))} ({self.name}), "
                             f"got {output!r}")
        if streams not in self.streams:
            raise ValueError(f"{where} streams: expected {' or '.join(map(str, self.streams))}, got {streams!r}")


UNIT_KINDS: dict[str, UnitKind] = {
    kind.name: kind
    for kind in (
        UnitKind("cmru", 1.0, "CMRU", "count", ("changes", "events"), (1, 2), "CMRU", "CMRU"),
        UnitKind("bmru", 0.0, "BMRU", "latch", ("changes", "events"), (1, 2), "BMRU", "BMRU"),
        UnitKind("acmru", 1.0, "AlphaCMRU", neuron="AlphaCMRU", step_from_input=True),
        UnitKind("fq-bmru", 0.0, "FirstQuadrantBMRU", "set-reset", ("changes",), (1,), "FirstQuadrantBMRU"),
    )
}
DEPLOYABLE = tuple(name for name, kind in UNIT_KINDS.items() if kind.deployable)


def unit_kind(name: str, argument: str = "unit") -> UnitKind:
    """The kind called ``name``; ValueError naming ``argument`` otherwise."""
    if name not in UNIT_KINDS:
        raise ValueError(f"{argument}: expected one of {', '.join(map(repr, UNIT_KINDS))}, got {name!r}")
    return UNIT_KINDS[name]


def neuron_kind(epsilon, step_from_input: bool = False, where: str = "neuron") -> UnitKind:
    """The kind of an snnTorch / Norse neuron or a NIR ``CMRU`` node: epsilon all 1 (CMRU,
    alpha-CMRU with ``step_from_input``) or all 0 (BMRU). ``epsilon``: a number or values."""
    values = set(float(value) for value in (epsilon if hasattr(epsilon, "__iter__") else [epsilon]))
    for kind in UNIT_KINDS.values():
        if kind.neuron and {kind.epsilon} == values and kind.step_from_input == bool(step_from_input):
            return kind
    raise ValueError(
        f"{where}: expected epsilon all 1 (CMRU) or all 0 (BMRU), got values {sorted(values)}"
        f"{' with step_from_input (alpha-CMRU: epsilon 1)' if step_from_input else ''}; use "
        "cmru_neuro.MemoryUnit for fractional epsilon"
    )


__all__ = ["DEPLOYABLE", "UNIT_KINDS", "UnitKind", "neuron_kind", "unit_kind"]
