"""Quantities written with their units (``"26 pJ"``, ``"1.2 mW"``, ``"1 ms"``), read by pint,
and SI values written back with a prefix (``3.2e-6 J`` -> ``"3.2 uJ"``)."""

from __future__ import annotations

import functools
import math
from decimal import Decimal

import pint

# SI unit -> what a quantity in it is, for messages
KIND_OF_UNIT = {"J": "an energy", "W": "a power", "s": "a time"}
_PREFIXES = ((1e0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))


@functools.lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """pint's units with exact decimal arithmetic, so ``"8.6 nJ"`` is exactly ``8.6e-9`` J."""
    return pint.UnitRegistry(non_int_type=Decimal)


def to_si(value: object, unit: str) -> float:
    """``("26 pJ", "J")`` -> ``2.6e-11``: a quantity with its unit, as a number in ``unit``.

    ``unit`` is J, W or s. A bare number is rejected (``26`` meant as 26 pJ must never be
    read as 26 J); so are an unknown unit, a unit of another kind (``"26 mW"`` for J) and a
    value that is not a finite number (``"nan pJ"``, ``"inf W"``, ``"1e999 J"``).
    """
    kind = KIND_OF_UNIT[unit]
    example = {"J": "26 pJ", "W": "1.2 mW", "s": "1 ms"}[unit]
    if isinstance(value, pint.Quantity):
        value = str(value)
    if not isinstance(value, str):  # pydantic reports only ValueError as a field's error
        raise ValueError(  # noqa: TRY004
            f"{value!r} has no unit: write {kind} with its unit, e.g. '{example}' "
            f"(or '{value} {unit}' if the number is in {unit})"
        )
    try:
        quantity = registry().Quantity(value)
    except Exception as error:  # noqa: BLE001 (pint's parser raises a dozen types, fuzzed)
        raise ValueError(
            f"{value!r} is not a quantity pint can read "
            f"({' '.join(str(error).split()) or type(error).__name__}); expected {kind}, "
            f"e.g. '{example}'"
        ) from None
    if not isinstance(quantity, pint.Quantity) or not quantity.dimensionality:
        raise ValueError(f"{value!r} has no unit: expected {kind}, e.g. '{example}'")
    if not quantity.check(registry().Unit(unit).dimensionality):
        raise ValueError(
            f"{value!r} is in {quantity.units:~}, not {kind}: expected {unit} or a prefixed "
            f"{unit}, e.g. '{example}'"
        )
    try:
        number = float(quantity.to(unit).magnitude)
    except ArithmeticError:
        raise ValueError(f"{value!r} is out of range: expected {kind}, e.g. '{example}'") from None
    if not math.isfinite(number):  # NaN would otherwise fail the >= 0 check with a misleading message
        raise ValueError(f"{value!r} is not a finite number: expected {kind}, e.g. '{example}'")
    return number


def si(value: float, unit: str) -> str:
    """``3.2e-6, "J"`` -> ``"3.2 uJ"`` (SI prefix, 3 significant digits)."""
    if value == 0:
        return f"0 {unit}"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"
