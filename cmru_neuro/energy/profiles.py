"""Hardware profiles: the cited energy figures of one target, validated with pydantic.

A profile is a YAML file (``hardware_profiles/*.yaml`` ships with the package) or a
:class:`HardwareProfile` built in Python. Every figure carries its value (J, W or s), a
status (measured / datasheet / derived / assumed) and the key of its citation in
``sources``. :func:`get_profile` resolves a name, a path or a profile object.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import math
from pathlib import Path
from typing import Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

KINDS = ("clocked", "event-driven", "analog")
STATUSES = ("measured", "datasheet", "derived", "assumed")

# figure name -> (unit, meaning); the order is the order of reports.
FIGURE_UNITS: dict[str, tuple[str, str]] = {
    "mac": ("J", "one multiply-accumulate (graded input)"),
    "ac": ("J", "one accumulate (input in {-1, 0, 1})"),
    "neuron_update": ("J", "one neuron / memory-unit state update"),
    "weight_read": ("J", "one weight read from memory"),
    "state_access": ("J", "one state variable read or write"),
    "event_out": ("J", "one output event (spike, state change) sent"),
    "static_power": ("W", "chip static / idle power"),
    "unit_bias_power": ("W", "bias power of one analog unit (cell)"),
    "synapse_bias_power": ("W", "bias power of one analog weight (current mirror)"),
    "dac": ("J", "one input value converted to analog"),
    "adc": ("J", "one output value converted to digital"),
    "step_duration": ("s", "wall-clock time of one time step"),
}

# the figures each energy model uses (the others are ignored for that kind)
USED_BY_KIND: dict[str, tuple[str, ...]] = {
    "clocked": ("mac", "ac", "neuron_update", "weight_read", "state_access", "static_power"),
    "event-driven": (
        "mac",
        "ac",
        "neuron_update",
        "weight_read",
        "state_access",
        "event_out",
        "static_power",
    ),
    "analog": (
        "mac",
        "neuron_update",
        "static_power",
        "unit_bias_power",
        "synapse_bias_power",
        "dac",
        "adc",
    ),
}
REQUIRED_BY_KIND: dict[str, tuple[str, ...]] = {
    "clocked": ("mac", "ac", "step_duration"),
    "event-driven": ("mac", "ac", "step_duration"),
    "analog": ("step_duration",),
}


class ProfileError(ValueError):
    """A hardware profile that cannot be read or found (one line, names the file or name)."""


class Figure(BaseModel):
    """One cited number: ``value`` in the unit of its field (J, W or s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(ge=0)
    status: Literal["measured", "datasheet", "derived", "assumed"]
    source: str = Field(min_length=1, description="key into the profile's sources")
    note: str = ""
    unverified: bool = Field(False, description="quoted widely, primary text not checked")

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @property
    def flagged(self) -> bool:
        """True when a report must warn about this figure (assumed or unverified)."""
        return self.status == "assumed" or self.unverified


class Figures(BaseModel):
    """The figures of a profile; a missing one is not priced (see ``bundled``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mac: Optional[Figure] = None
    ac: Optional[Figure] = None
    neuron_update: Optional[Figure] = None
    weight_read: Optional[Figure] = None
    state_access: Optional[Figure] = None
    event_out: Optional[Figure] = None
    static_power: Optional[Figure] = None
    unit_bias_power: Optional[Figure] = None
    synapse_bias_power: Optional[Figure] = None
    dac: Optional[Figure] = None
    adc: Optional[Figure] = None
    step_duration: Optional[Figure] = None


class HardwareProfile(BaseModel):
    """One target: its energy model (``kind``), figures, sources and known omissions.

    ``bundled`` maps a figure that is absent on purpose to where its cost is already
    included (for example ``weight_read: "inside the 23.6 pJ synaptic op"``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    title: str = Field(min_length=1)
    kind: Literal["clocked", "event-driven", "analog"]
    description: str = ""
    precision: str = ""
    sources: dict[str, str] = Field(min_length=1)
    figures: Figures
    bundled: dict[str, str] = Field(default_factory=dict)
    leaves_out: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "HardwareProfile":
        for field, figure in self.figure_items():
            if figure.source not in self.sources:
                raise ValueError(
                    f"figures.{field}.source: {figure.source!r} is not a key of sources "
                    f"({', '.join(sorted(self.sources))})"
                )
        missing = [f for f in REQUIRED_BY_KIND[self.kind] if self.figure(f) is None]
        if missing:
            raise ValueError(f"figures: a {self.kind} profile needs {', '.join(missing)}")
        if self.kind == "analog" and not any(
            self.figure(f) for f in ("mac", "static_power", "unit_bias_power", "synapse_bias_power")
        ):
            raise ValueError(
                "figures: an analog profile needs mac, static_power, unit_bias_power or "
                "synapse_bias_power"
            )
        for field in self.bundled:
            if field not in FIGURE_UNITS:
                raise ValueError(f"bundled.{field}: not a figure name ({', '.join(FIGURE_UNITS)})")
            if self.figure(field) is not None:
                raise ValueError(f"bundled.{field}: the figure is given, it cannot also be bundled")
        return self

    def figure(self, field: str) -> Optional[Figure]:
        """The figure called ``field`` or None."""
        return getattr(self.figures, field)

    def value(self, field: str) -> float:
        """The figure's value (J, W or s), 0 when the profile does not price it."""
        figure = self.figure(field)
        return 0.0 if figure is None else figure.value

    def figure_items(self) -> list[tuple[str, Figure]]:
        """``(field, figure)`` for every figure given, in report order."""
        return [(f, self.figure(f)) for f in FIGURE_UNITS if self.figure(f) is not None]

    def flagged_figures(self) -> dict[str, str]:
        """Field -> one report line, for every assumed or unverified figure."""
        lines = {}
        for field, figure in self.figure_items():
            if figure.flagged:
                unit = FIGURE_UNITS[field][0]
                why = "assumed" if figure.status == "assumed" else f"{figure.status} but unverified"
                note = f": {figure.note}" if figure.note else ""
                lines[field] = f"{self.name}: {field} = {figure.value:.3g} {unit} is {why}{note}"
        return lines


ProfileLike = Union[str, Path, HardwareProfile]


def _format_validation(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        parts.append(f"field '{where}': {item['msg']}")
    return "; ".join(parts)


def parse_profile(data: object, origin: str) -> HardwareProfile:
    """Validate a mapping as a profile; errors name ``origin``, the field and the problem."""
    if not isinstance(data, dict):
        raise ProfileError(
            f"hardware profile {origin}: expected a mapping of fields, got {type(data).__name__}"
        )
    try:
        return HardwareProfile.model_validate(data)
    except ValidationError as error:
        raise ProfileError(f"hardware profile {origin}: {_format_validation(error)}") from None


def read_profile(path: Union[str, Path]) -> HardwareProfile:
    """Read and validate one YAML profile file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"hardware profile {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ProfileError(
            f"hardware profile {path}: not valid YAML: {' '.join(str(error).split())}"
        ) from None
    return parse_profile(data, str(path))


@functools.lru_cache(maxsize=1)
def builtin_profiles() -> dict[str, HardwareProfile]:
    """The profiles shipped in ``cmru_neuro.hardware_profiles``, by name."""
    folder = importlib.resources.files("cmru_neuro.hardware_profiles")
    profiles = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            origin = f"cmru_neuro/hardware_profiles/{entry.name}"
            profile = parse_profile(yaml.safe_load(entry.read_text()), origin)
            if f"{profile.name}.yaml" != entry.name:
                raise ProfileError(
                    f"hardware profile {origin}: field 'name': {profile.name!r} must match "
                    "the file name"
                )
            profiles[profile.name] = profile
    return profiles


_USER_PROFILES: dict[str, HardwareProfile] = {}


def register_profile(
    profile: Union[HardwareProfile, dict, str, Path], *, replace: bool = False
) -> HardwareProfile:
    """Add a user profile (object, mapping or YAML path) so it is found by name."""
    if isinstance(profile, dict):
        profile = parse_profile(profile, "(dict)")
    elif not isinstance(profile, HardwareProfile):
        profile = read_profile(profile)
    if not replace and profile.name in available_profiles():
        raise ProfileError(
            f"hardware profile {profile.name!r} exists; pass replace=True to override it"
        )
    _USER_PROFILES[profile.name] = profile
    return profile


def register_profile_dir(folder: Union[str, Path]) -> list[HardwareProfile]:
    """Register every ``*.yaml`` in ``folder`` (replacing same-named profiles)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"profile folder {folder}: no such folder")
    return [register_profile(path, replace=True) for path in sorted(folder.glob("*.yaml"))]


def available_profiles() -> dict[str, HardwareProfile]:
    """Shipped profiles, then user profiles (a user profile may replace a shipped one)."""
    return {**builtin_profiles(), **_USER_PROFILES}


def get_profile(profile: ProfileLike) -> HardwareProfile:
    """A profile from an object, a YAML path, or a registered name (with suggestions)."""
    if isinstance(profile, HardwareProfile):
        return profile
    if not isinstance(profile, (str, Path)):
        raise TypeError(
            f"profile: expected a name, a path or a HardwareProfile, got {type(profile).__name__}"
        )
    text = str(profile)
    if isinstance(profile, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        return read_profile(text)
    known = available_profiles()
    if text in known:
        return known[text]
    close = difflib.get_close_matches(text, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ProfileError(
        f"unknown hardware profile {text!r}{hint} (known: {', '.join(sorted(known))})"
    )
