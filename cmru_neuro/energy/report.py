"""Energy reports: per layer and total joules per inference, rendered as a table, JSON or a
bar chart across targets (PNG)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

from .counting import LayerCounts, ModelCounts
from .models import PARTS, EnergyParts
from .profiles import FIGURE_UNITS, HardwareProfile

_PREFIXES = ((1e0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))


def si(value: float, unit: str) -> str:
    """``3.2e-6, "J"`` -> ``"3.2 uJ"``."""
    if value == 0:
        return f"0 {unit}"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


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
    def assumed_share(self) -> float:
        """Fraction of the total resting on assumed or unverified figures (0..1)."""
        flagged = {field for field, figure in self.profile.figure_items() if figure.flagged}
        duration_flagged = "step_duration" in flagged and not self.step_duration_given
        powered = {f for f, (unit, _) in FIGURE_UNITS.items() if unit == "W"}
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
        head = (
            f"Energy per inference on {p.name} ({p.title}; {p.kind}): {si(self.total, 'J')}\n"
            f"{self.counts.model}: {self.counts.time_steps} steps x "
            f"{si(self.step_duration, 's')} = {si(self.duration, 's')}; "
            f"counts per inference (mean of {self.counts.samples} samples)\n"
        )
        columns = (
            "layer",
            "type",
            "dense ops",
            "eff MACs",
            "eff ACs",
            "event ops",
            "updates",
            "active",
            "state chg",
            "out events",
            *PARTS,
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
                    _count(c.event_macs + c.event_acs),
                    _count(c.neuron_updates),
                    _count(c.active_updates),
                    _count(c.state_changes),
                    _count(c.output_events),
                    *(si(getattr(layer.energy, part), "J") for part in PARTS),
                    si(layer.energy.total, "J"),
                )
            )
        blank = ("",) * 8
        rows.append(
            (
                "(chip)",
                "system",
                *blank,
                *(si(getattr(self.system, part), "J") for part in PARTS),
                si(self.system.total, "J"),
            )
        )
        rows.append(
            (
                "total",
                "",
                *blank,
                *(si(getattr(self.energy, part), "J") for part in PARTS),
                si(self.total, "J"),
            )
        )
        text = head + aligned([columns, *rows]) + "\n"
        text += (
            f"\n{self.assumed_share:.0%} of this estimate rests on assumed or unverified figures.\n"
        )
        if self.assumed:
            text += "Assumed / unverified figures used:\n" + "".join(
                f"  - {a}\n" for a in self.assumed
            )
        text += "Left out:\n" + "".join(f"  - {item}\n" for item in self.left_out)
        return text


def summary_table(reports: Sequence[EnergyReport]) -> str:
    """One line per target: total and parts (J per inference), duration, assumed share."""
    rows = [("profile", "kind", "total", *PARTS, "duration", "assumed")]
    for r in reports:
        rows.append(
            (
                r.profile.name,
                r.profile.kind,
                si(r.total, "J"),
                *(si(getattr(r.energy, part), "J") for part in PARTS),
                si(r.duration, "s"),
                f"{r.assumed_share:.0%}",
            )
        )
    return aligned(rows)


def plot_reports(reports: Sequence[EnergyReport], path: Union[str, Path]) -> Path:
    """Bar chart across targets (PNG): total J per inference (log scale) and its split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not reports:
        raise ValueError("reports: expected at least one report to plot, got none")
    path = Path(path)
    names = [r.profile.name + (" *" if r.assumed_share > 0.5 else "") for r in reports]
    totals = [max(r.total, 1e-30) for r in reports]
    colors = {
        "compute": "#4477aa",
        "memory": "#ee6677",
        "communication": "#228833",
        "static": "#ccbb44",
    }
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 0.45 * len(reports) + 2), sharey=True)
    left.barh(names, totals, color="#999999", label="total")
    dynamic = [(name, r.total - r.energy.static) for name, r in zip(names, reports)]
    shown = [(name, joules) for name, joules in dynamic if joules > 0]
    left.scatter(
        [j for _, j in shown],
        [n for n, _ in shown],
        marker="D",
        color="black",
        s=18,
        label="without static",
        zorder=3,
    )
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize="small")
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
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=len(PARTS), fontsize="small")
    model = reports[0].counts.model
    figure.suptitle(f"{model}: energy per inference by target (* = mostly assumed figures)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
