"""Energy reports: per layer and total joules per inference, rendered as a table, JSON or a
bar chart across targets (PNG)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

from .cost_models import PARTS, EnergyParts
from .counts import LayerCounts, ModelCounts
from .profiles import FIGURES, HardwareProfile
from .units import si


def _percent(share: float) -> str:
    """``0.99988`` -> ``"99.99%"``, 4 significant digits; a share below 1 never shows as 100%."""
    text = f"{100 * share:.4g}%"
    return ">99.99%" if share < 1 and text == "100%" else text


def _count(value: float) -> str:
    return f"{value:.4g}" if value < 1e6 else f"{value:.3e}"


def aligned(rows: Sequence[Sequence[str]], text_columns: int = 2) -> str:
    """Rows as columns: the first ``text_columns`` left-aligned, numbers right-aligned."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            str(v).ljust(w) if i < text_columns else str(v).rjust(w)
            for i, (v, w) in enumerate(zip(row, widths))
        )
        for row in rows
    )


@dataclass
class LayerEnergy:
    """One layer's joules per inference and the counts behind them."""

    name: str
    kind: str
    energy: EnergyParts
    counts: LayerCounts


@dataclass
class EnergyReport:
    """Energy of one inference of a model on one hardware profile.

    ``system``: chip-level costs not tied to a layer (static power, data conversion);
    ``by_figure``: J resting on each profile figure; ``assumed``: the flagged figures the
    estimate uses; ``left_out``: what the model of energy does not cover.
    """

    profile: HardwareProfile
    counts: ModelCounts
    layers: list[LayerEnergy]
    system: EnergyParts
    step_duration: float
    step_duration_given: bool
    by_figure: dict[str, float]
    assumed: list[str]
    left_out: list[str]

    @property
    def duration(self) -> float:
        """Inference duration (s): time steps x step duration."""
        return self.counts.time_steps * self.step_duration

    @property
    def energy(self) -> EnergyParts:
        """Total parts (J): layers + system."""
        total = self.system
        for layer in self.layers:
            total = total + layer.energy
        return total

    @property
    def total(self) -> float:
        """Joules per inference."""
        return self.energy.total

    @property
    def static_share(self) -> float:
        """Fraction of the total that is static (power drawn whatever the work) (0..1)."""
        return self.energy.static / self.total if self.total > 0 else 0.0

    @property
    def step_source(self) -> str:
        """Where the step duration comes from: ``given`` or its figure's status."""
        if self.step_duration_given:
            return "given"
        figure = self.profile.figure("step_duration")
        return figure.status + (" unverified" if figure.unverified else "")

    def duration_note(self) -> str:
        """One line: what the duration is and how much of the total is static over it."""
        line = (
            f"duration {si(self.duration, 's')} = {self.counts.time_steps} steps x "
            f"{si(self.step_duration, 's')} per step ({self.step_source}): the time one inference "
            f"takes on {self.profile.name}; "
        )
        if self.energy.static == 0:
            return line + "no static power is priced, so the total does not depend on it"
        return line + (
            f"static energy (power drawn whatever the work, x duration) is "
            f"{_percent(self.static_share)} of the total; set your real step with step_duration= "
            "(--step-duration)"
        )

    @property
    def assumed_share(self) -> float:
        """Fraction of the total resting on assumed or unverified figures (0..1)."""
        flagged = {field for field, figure in self.profile.figure_items() if figure.flagged}
        duration_flagged = "step_duration" in flagged and not self.step_duration_given
        powered = {f for f, spec in FIGURES.items() if spec.unit == "W"}
        resting = sum(
            joules
            for field, joules in self.by_figure.items()
            if field in flagged or (duration_flagged and field in powered)
        )
        return resting / self.total if self.total > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "profile": {
                "name": self.profile.name,
                "title": self.profile.title,
                "kind": self.profile.kind,
            },
            "model": self.counts.model,
            "joules_per_inference": self.total,
            "energy": self.energy.to_dict(),
            "system": self.system.to_dict(),
            "time_steps": self.counts.time_steps,
            "step_duration_s": self.step_duration,
            "duration_s": self.duration,
            "samples_averaged": self.counts.samples,
            "layers": [
                {
                    "name": layer.name,
                    "type": layer.kind,
                    "energy": layer.energy.to_dict(),
                    "counts": layer.counts.to_dict(),
                }
                for layer in self.layers
            ],
            "by_figure": dict(self.by_figure),
            "assumed_share": self.assumed_share,
            "assumed": list(self.assumed),
            "left_out": list(self.left_out),
        }

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> str:
        """Plain-text table: per layer counts and joules, then assumptions and omissions."""
        p = self.profile
        energy = self.energy
        head = (
            f"Energy per inference on {p.name} ({p.title}; {p.kind}): {si(self.total, 'J')} = "
            f"dynamic {si(energy.dynamic, 'J')} + static {si(energy.static, 'J')}\n"
            f"{self.counts.model}: counts per inference (mean of {self.counts.samples} samples)\n"
        )
        columns = (
            "layer",
            "type",
            "dense ops",
            "eff MACs",
            "eff ACs",
            "message ops",
            "updates",
            "membrane upd",
            "active",
            "state chg",
            "messages out",
            *PARTS[:-1],
            "dynamic",
            PARTS[-1],
            "total",
        )
        rows = []
        for layer in self.layers:
            c = layer.counts
            rows.append(
                (
                    layer.name,
                    layer.kind,
                    _count(c.dense_ops),
                    _count(c.effective_macs),
                    _count(c.effective_acs),
                    _count(c.message_macs + c.message_acs),
                    _count(c.neuron_updates),
                    _count(c.membrane_updates),
                    _count(c.active_updates),
                    _count(c.state_changes),
                    _count(c.messages_out),
                    *_parts(layer.energy),
                )
            )
        blank = ("",) * 9
        rows.append(
            (
                "(chip)",
                "system",
                *blank,
                *_parts(self.system),
            )
        )
        rows.append(
            (
                "total",
                "",
                *blank,
                *_parts(energy),
            )
        )
        text = (
            head
            + aligned([columns, *rows])
            + "\n"
            + "updates: every unit every step; membrane upd: NeuroBench's MembraneUpdates (every "
            "unit at the first step, then only state changes); active: what an event-driven "
            "target updates\n"
            + self.duration_note()
            + "\n"
        )
        text += (
            f"\n{self.assumed_share:.0%} of this estimate rests on assumed or unverified figures.\n"
        )
        if self.assumed:
            text += "Assumed / unverified figures used:\n" + "".join(
                f"  - {a}\n" for a in self.assumed
            )
        text += "Left out:\n" + "".join(f"  - {item}\n" for item in self.left_out)
        return text


def _parts(energy: EnergyParts) -> tuple[str, ...]:
    """compute, memory, communication, dynamic, static, total (J), formatted."""
    values = (energy.compute, energy.memory, energy.communication, energy.dynamic, energy.static)
    return (*(si(v, "J") for v in values), si(energy.total, "J"))


def summary_table(reports: Sequence[EnergyReport], *, left_out: bool = True) -> str:
    """One line per target (J per inference: total, dynamic, static and the dynamic parts;
    duration and where its step comes from; assumed share), what the columns mean, which
    totals are mostly static power, and (``left_out``) what each estimate leaves out."""
    rows = [
        (
            "profile",
            "kind",
            "total",
            "dynamic",
            "static",
            *PARTS[:-1],
            "duration",
            "step",
            "assumed",
        )
    ]
    for r in reports:
        e = r.energy
        rows.append(
            (
                r.profile.name,
                r.profile.kind,
                *(si(v, "J") for v in (r.total, e.dynamic, e.static, e.compute, e.memory)),
                si(e.communication, "J"),
                si(r.duration, "s"),
                f"{si(r.step_duration, 's')} {r.step_source}",
                f"{r.assumed_share:.0%}",
            )
        )
    static = [
        f"{r.profile.name} ({_percent(r.static_share)})" for r in reports if r.static_share > 0.5
    ]
    notes = [
        (
            "dynamic = compute + memory + communication: the energy of the work itself; "
            "static = power drawn whatever the work (idle, leakage, analog bias) x duration"
        ),
        (
            "duration = time steps x step: how long one inference takes on that target; "
            "step: the profile's step duration and its status (or given)"
        ),
    ]
    if static:
        notes.append(
            f"mostly static power: {', '.join(static)}: those totals scale with the step "
            "duration; pass step_duration= (--step-duration) for your real rate, or compare "
            "the dynamic column"
        )
    text = aligned(rows) + "\n" + "".join(f"{n}\n" for n in notes)
    return text + omissions(reports) if left_out else text


def omissions(reports: Sequence[EnergyReport]) -> str:
    """What each estimate leaves out: items shared by every report once, then those shared
    by every report of one kind, then each profile's own."""
    if not reports:
        return ""
    shared = [item for item in reports[0].left_out if all(item in r.left_out for r in reports)]
    text = "Left out of every estimate:\n" + "".join(f"  - {item}\n" for item in shared)
    by_kind: dict[str, list[EnergyReport]] = {}
    for r in reports:
        by_kind.setdefault(r.profile.kind, []).append(r)
    for kind, group in by_kind.items():
        common = [
            item
            for item in group[0].left_out
            if item not in shared and all(item in r.left_out for r in group)
        ]
        if common:
            names = ", ".join(r.profile.name for r in group)
            text += f"Left out on {kind} targets ({names}):\n"
            text += "".join(f"  - {item}\n" for item in common)
        for r in group:
            own = [item for item in r.left_out if item not in shared and item not in common]
            if own:
                text += f"Left out on {r.profile.name}:\n" + "".join(f"  - {i}\n" for i in own)
    return text


def energy_figure(reports: Sequence[EnergyReport]):
    """Bar chart across targets (a matplotlib Figure): total J per inference (log scale) with
    its dynamic part, and the split of the total; one legend below both axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not reports:
        raise ValueError("reports: expected at least one report to plot, got none")
    names = [r.profile.name + (" *" if r.assumed_share > 0.5 else "") for r in reports]
    colors = {
        "compute": "#4477aa",
        "memory": "#ee6677",
        "communication": "#228833",
        "static": "#ccbb44",
    }
    figure, (left, right) = plt.subplots(
        1, 2, figsize=(12, 0.45 * len(reports) + 2.5), sharey=True, layout="constrained"
    )
    left.barh(names, [max(r.total, 1e-30) for r in reports], color="#999999", label="total")
    shown = [(name, r.energy.dynamic) for name, r in zip(names, reports) if r.energy.dynamic > 0]
    left.scatter(
        [joules for _, joules in shown],
        [name for name, _ in shown],
        marker="D",
        color="black",
        s=18,
        label="dynamic (without static)",
        zorder=3,
    )
    left.set_xscale("log")
    left.set_xlabel("J per inference (log scale)")
    left.invert_yaxis()
    start = [0.0] * len(reports)
    for part in PARTS:
        shares = [getattr(r.energy, part) / r.total if r.total > 0 else 0.0 for r in reports]
        right.barh(names, shares, left=start, color=colors[part], label=part)
        start = [s + v for s, v in zip(start, shares)]
    right.set_xlim(0, 1)
    right.set_xlabel("share of the total")
    handles = [h for axis in (left, right) for h in axis.get_legend_handles_labels()[0]]
    figure.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize="small")
    model = reports[0].counts.model
    figure.suptitle(f"{model}: energy per inference by target (* = mostly assumed figures)")
    return figure


def plot_reports(reports: Sequence[EnergyReport], path: Union[str, Path]) -> Path:
    """Write :func:`energy_figure` of the reports as a PNG; returns the path."""
    import matplotlib.pyplot as plt

    figure = energy_figure(reports)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
