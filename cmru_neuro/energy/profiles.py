"""Hardware profiles: the cited energy figures of one target, validated with pydantic.

A profile is a YAML file (``hardware_profiles/*.yaml`` ships with the package) or a
:class:`HardwareProfile` built in Python. Every figure carries its value written with its
unit (``"23.6 pJ"``, ``"29 mW"``, ``"1 ms"``; read by pint, kept in J, W or s), a status
(measured / datasheet / derived / assumed) and the key of its citation in ``sources``.
A bare number or a value that is not a finite number is rejected; a value outside the
plausible range of its figure (or a zero energy per operation) warns
(:class:`ProfileWarning`). :func:`get_profile` resolves a name, a path or a profile object.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import warnings
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple, Optional, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from .units import si, to_si

KINDS = ("clocked", "event-driven", "analog")
STATUSES = ("measured", "datasheet", "derived", "assumed")


class FigureSpec(NamedTuple):
    """What a figure is: its SI unit, meaning, and the range (in that unit) outside which
    a value is most likely written in the wrong unit."""

    unit: str
    meaning: str
    plausible: tuple[float, float]


_PER_OP = (1e-15, 1e-6)  # 1 fJ (a 45 nm int8 add is 30 fJ) to 1 uJ (a CPU op is ~10 nJ)
_PER_DEVICE = (1e-15, 1e-3)  # bias power of one analog cell or weight: 1 fW to 1 mW
# figure name -> spec; the order is the order of reports.
FIGURES: dict[str, FigureSpec] = {
    "mac": FigureSpec("J", "one multiply-accumulate (graded input)", _PER_OP),
    "ac": FigureSpec("J", "one accumulate (input in {-1, 0, 1})", _PER_OP),
    "neuron_update": FigureSpec("J", "one neuron / memory-unit state update", _PER_OP),
    "weight_read": FigureSpec("J", "one weight read from memory", _PER_OP),
    "state_access": FigureSpec("J", "one state variable read or write", _PER_OP),
    "message_out": FigureSpec("J", "one message (spike, state change) sent", _PER_OP),
    "static_power": FigureSpec("W", "chip static / idle power", (1e-9, 1e3)),
    "unit_bias_power": FigureSpec("W", "bias power of one analog unit (cell)", _PER_DEVICE),
    "synapse_bias_power": FigureSpec(
        "W", "bias power of one analog weight (current mirror)", _PER_DEVICE
    ),
    "dac": FigureSpec("J", "one input value converted to analog", _PER_OP),
    "adc": FigureSpec("J", "one output value converted to digital", _PER_OP),
    "step_duration": FigureSpec("s", "wall-clock time of one time step", (1e-9, 10.0)),
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
        "message_out",
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


class ProfileWarning(UserWarning):
    """A profile figure whose value is implausible for its kind (likely a unit mistake)."""


class Figure(BaseModel):
    """One cited number. ``value`` is written with its unit (``"23.6 pJ"``) and kept as a
    float in the SI unit of its kind (:attr:`unit`: J, W or s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    unit: ClassVar[str]

    value: float = Field(ge=0)
    status: Literal["measured", "datasheet", "derived", "assumed"]
    source: str = Field(min_length=1, description="key into the profile's sources")
    note: str = ""
    unverified: bool = Field(False, description="quoted widely, primary text not checked")

    @field_validator("value", mode="before")
    @classmethod
    def _with_unit(cls, value: object) -> float:
        return to_si(value, cls.unit)

    @field_serializer("value")
    def _written_with_unit(self, value: float) -> str:
        return f"{value!r} {self.unit}"

    @property
    def flagged(self) -> bool:
        """True when a report must warn about this figure (assumed or unverified)."""
        return self.status == "assumed" or self.unverified


class EnergyFigure(Figure):
    """A figure in joules (per operation, message or conversion)."""

    unit: ClassVar[str] = "J"


class PowerFigure(Figure):
    """A figure in watts."""

    unit: ClassVar[str] = "W"


class DurationFigure(Figure):
    """A figure in seconds."""

    unit: ClassVar[str] = "s"


class Figures(BaseModel):
    """The figures of a profile; a missing one is not priced (see ``bundled``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mac: Optional[EnergyFigure] = None
    ac: Optional[EnergyFigure] = None
    neuron_update: Optional[EnergyFigure] = None
    weight_read: Optional[EnergyFigure] = None
    state_access: Optional[EnergyFigure] = None
    message_out: Optional[EnergyFigure] = None
    static_power: Optional[PowerFigure] = None
    unit_bias_power: Optional[PowerFigure] = None
    synapse_bias_power: Optional[PowerFigure] = None
    dac: Optional[EnergyFigure] = None
    adc: Optional[EnergyFigure] = None
    step_duration: Optional[DurationFigure] = None


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
            if field not in FIGURES:
                raise ValueError(f"bundled.{field}: not a figure name ({', '.join(FIGURES)})")
            if self.figure(field) is not None:
                raise ValueError(f"bundled.{field}: the figure is given, it cannot also be bundled")
        for line in self.implausible_figures():
            warnings.warn(f"hardware profile {self.name}: {line}", ProfileWarning, stacklevel=2)
        return self

    def figure(self, field: str) -> Optional[Figure]:
        """The figure called ``field`` or None."""
        return getattr(self.figures, field)

    def value(self, field: str) -> float:
        """The figure's value (in its SI unit: J, W or s), 0 when the profile does not price it."""
        figure = self.figure(field)
        return 0.0 if figure is None else figure.value

    def figure_items(self) -> list[tuple[str, Figure]]:
        """``(field, figure)`` for every figure given, in report order."""
        return [(f, self.figure(f)) for f in FIGURES if self.figure(f) is not None]

    def flagged_figures(self) -> dict[str, str]:
        """Field -> one report line, for every assumed or unverified figure."""
        lines = {}
        for field, figure in self.figure_items():
            if figure.flagged:
                why = "assumed" if figure.status == "assumed" else f"{figure.status} but unverified"
                note = f": {figure.note}" if figure.note else ""
                value = si(figure.value, figure.unit)
                lines[field] = f"{self.name}: {field} = {value} is {why}{note}"
        return lines

    def implausible_figures(self) -> list[str]:
        """One line per figure outside the plausible range of its kind; a zero per-operation
        energy or step duration too (it makes the operation free: leave the figure out, or
        list it in ``bundled``, when its cost is counted elsewhere)."""
        lines = []
        for field, figure in self.figure_items():
            spec = FIGURES[field]
            low, high = spec.plausible
            if figure.value == 0 and (spec.unit == "J" or field == "step_duration"):
                what = "makes every operation free" if spec.unit == "J" else "makes static energy vanish"
                lines.append(
                    f"figures.{field}.value = 0 {spec.unit} is implausible for {spec.meaning}: it "
                    f"{what}; leave the figure out (or list it in bundled) if its cost is "
                    f"counted elsewhere, else check its value"
                )
            elif figure.value and not low <= figure.value <= high:
                lines.append(
                    f"figures.{field}.value = {si(figure.value, spec.unit)} is outside the "
                    f"plausible range for {spec.meaning} ({si(low, spec.unit)} to "
                    f"{si(high, spec.unit)}): check its unit"
                )
        return lines


ProfileLike = Union[str, Path, HardwareProfile]


def _key(part: object) -> str:
    """A field-path part as written: plain when printable, else its repr (a key holding a
    newline must not break the one-line message)."""
    text = str(part)
    return text if text and text.isprintable() and text.strip() == text else repr(part)


def _format_validation(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(_key(p) for p in item["loc"]) or "(top level)"
        parts.append(f"field '{where}': {' '.join(str(item['msg']).split())}")
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
    content = path.read_bytes()  # YAML reads the encoding (UTF-8, -16, -32) itself
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as error:
        raise ProfileError(
            f"hardware profile {path}: not valid YAML: {' '.join(str(error).split())}"
        ) from None
    # YAML's constructors raise these on values they cannot build (a 13th month, a nesting
    # too deep), found by fuzzing
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise ProfileError(f"hardware profile {path}: not valid YAML: {reason}") from None
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
