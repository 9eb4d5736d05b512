"""``estimate_energy``: count a model's work once, price it on one or many profiles."""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from torch import Tensor, nn

from .cost_models import EnergyParts, layer_quantities, price, system_quantities
from .counting import count_operations
from .counts import ModelCounts
from .profiles import USED_BY_KIND, HardwareProfile, ProfileLike, get_profile
from .report import EnergyReport, LayerEnergy

GENERAL_OMISSIONS = (
    "bias additions are not synaptic operations (NeuroBench's convention) and are not priced",
    "host I/O, data loading and pre-processing (e.g. MFCC extraction) are not counted",
    "the model is counted in eval mode (dropout off); training is not estimated",
)
KIND_OMISSIONS = {
    "clocked": (
        "no zero skipping: every synaptic op and every unit update runs every step",
        (
            "each synaptic op reads its weight once: caches and weight reuse across a batch "
            "are not modelled"
        ),
    ),
    "event-driven": (
        (
            "graded values travel sigma-delta coded (a message where a value changed); spikes "
            "and memory-unit state changes travel as they are"
        ),
        (
            "leaky neurons (snnTorch, Norse, LRU, minGRU) update every step; activations when "
            "their input changed; memory units only when a message reaches them or their gate opens"
        ),
        "one routing step per message sent: multi-hop mesh traffic is not modelled",
    ),
    "analog": (
        "every product is computed in place every step; activations (diodes) draw no bias",
        "conversion is priced at the model's input and output only, not between layers",
        "device mismatch, noise, settling time and cell switching energy are not modelled",
    ),
}


def _omissions(counts: ModelCounts, profile: HardwareProfile) -> list[str]:
    lines = list(counts.left_out) + list(GENERAL_OMISSIONS) + list(KIND_OMISSIONS[profile.kind])
    for field in USED_BY_KIND[profile.kind]:
        if profile.figure(field) is None:
            reason = profile.bundled.get(field)
            lines.append(
                f"{field}: not priced separately ({reason})"
                if reason
                else f"{field}: profile {profile.name} has no figure, so it is not priced"
            )
    for layer in counts.layers:
        lines += [note for note in layer.notes if note not in lines]
    lines += [f"{profile.name}: {item}" for item in profile.leaves_out]
    return lines


def report_for(
    counts: ModelCounts, profile: ProfileLike, *, step_duration: Optional[float] = None
) -> EnergyReport:
    """Price counts on a profile. ``step_duration`` (s) overrides the profile's."""
    profile = get_profile(profile)
    if step_duration is not None and not step_duration > 0:
        raise ValueError(
            f"step_duration: expected a positive number of seconds, got {step_duration!r}"
        )
    seconds = profile.value("step_duration") if step_duration is None else float(step_duration)
    duration = counts.time_steps * seconds
    layers, by_figure = [], {}
    quantity_sets = [
        (layer, layer_quantities(layer, profile.kind, duration)) for layer in counts.layers
    ]
    for layer, quantities in quantity_sets:
        energy, contributions = price(quantities, profile)
        layers.append(LayerEnergy(layer.name, layer.kind, energy, layer))
        _accumulate(by_figure, contributions)
    system, contributions = price(system_quantities(counts, profile.kind, duration), profile)
    _accumulate(by_figure, contributions)
    powered = any(joules > 0 for f, joules in by_figure.items() if f.endswith("power"))
    used = {f for f, joules in by_figure.items() if joules > 0} | (
        {"step_duration"} if powered else set()
    )
    if step_duration is not None:
        used.discard("step_duration")
    assumed = [line for field, line in profile.flagged_figures().items() if field in used]
    return EnergyReport(
        profile=profile,
        counts=counts,
        layers=layers,
        system=system,
        step_duration=seconds,
        step_duration_given=step_duration is not None,
        by_figure=by_figure,
        assumed=assumed,
        left_out=_omissions(counts, profile),
    )


def _accumulate(total: dict[str, float], part: dict[str, float]) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0.0) + value


def estimate_energy(
    model: nn.Module,
    example_input: Tensor,
    profile: ProfileLike = "cpu",
    *,
    strict: bool = True,
    samples: Optional[int] = None,
    time_steps: Optional[int] = None,
    time_first: Optional[bool] = None,
    step_duration: Optional[float] = None,
    forward: Optional[Callable[[nn.Module, Tensor], object]] = None,
) -> EnergyReport:
    """Joules per inference of ``model`` on ``profile`` (a name, a YAML path or a profile).

    Runs the model once on ``example_input`` (see :func:`count_operations` for the layout,
    ``strict``, ``samples``, ``time_steps``, ``time_first`` and ``forward``); ``step_duration`` (s)
    overrides the profile's time step. The report splits compute / memory / communication /
    static per layer, keeps the counts, and lists assumed figures and what is left out.
    """
    counts = count_operations(
        model,
        example_input,
        strict=strict,
        samples=samples,
        time_steps=time_steps,
        time_first=time_first,
        forward=forward,
    )
    return report_for(counts, profile, step_duration=step_duration)


def estimate_energy_many(
    model: nn.Module,
    example_input: Tensor,
    profiles: Iterable[ProfileLike],
    *,
    step_duration: Optional[float] = None,
    **counting,
) -> list[EnergyReport]:
    """Count once, price on several profiles (for comparisons and :func:`plot_reports`)."""
    resolved = [get_profile(p) for p in profiles]
    counts = count_operations(model, example_input, **counting)
    return [report_for(counts, profile, step_duration=step_duration) for profile in resolved]


__all__ = ["EnergyParts", "estimate_energy", "estimate_energy_many", "report_for"]
