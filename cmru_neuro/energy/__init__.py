"""Energy per inference with cited hardware profiles.

``estimate_energy(model, example_input, profile="loihi")`` counts every layer's work on
example input (NeuroBench's rules for synaptic ops, memory-unit state changes from the
units' traces) and prices it with one of three models (clocked digital, event-driven
digital, analog) chosen by the profile. See ``docs/energy.md``.
"""

from .cost_models import EnergyParts
from .counting import count_operations
from .counts import LayerCounts, ModelCounts, UnsupportedLayerError
from .estimate import estimate_energy, estimate_energy_many, report_for
from .profiles import (
    Figure,
    HardwareProfile,
    ProfileError,
    ProfileWarning,
    available_profiles,
    get_profile,
    read_profile,
    register_profile,
    register_profile_dir,
)
from .report import EnergyReport, LayerEnergy, plot_reports, summary_table

__all__ = [
    "EnergyParts",
    "EnergyReport",
    "Figure",
    "HardwareProfile",
    "LayerCounts",
    "LayerEnergy",
    "ModelCounts",
    "ProfileError",
    "ProfileWarning",
    "UnsupportedLayerError",
    "available_profiles",
    "count_operations",
    "estimate_energy",
    "estimate_energy_many",
    "get_profile",
    "plot_reports",
    "read_profile",
    "register_profile",
    "register_profile_dir",
    "report_for",
    "summary_table",
]
