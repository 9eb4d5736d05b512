"""``cmru-neuro profiles``: list the hardware profiles, show one with its citations, or
check a profile file."""

from __future__ import annotations

import argparse
import json
import warnings

from ..energy.profiles import (
    FIGURES,
    HardwareProfile,
    ProfileWarning,
    available_profiles,
    builtin_profiles,
    get_profile,
    read_profile,
    register_profile_dir,
)
from ..energy.units import si


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--show",
        metavar="NAME",
        help="print every figure of one profile with its status and source (default: list every profile)",
    )
    parser.add_argument(
        "--check",
        metavar="FILE",
        help="validate a profile YAML file, report implausible values (unit mistakes), print it "
        "(default: no file checked)",
    )
    parser.add_argument(
        "--profile-dir", metavar="DIR",
        help="also load every *.yaml profile in DIR (default: the shipped profiles only)",
    )
    parser.add_argument("--json", action="store_true", help="print the profiles as JSON")


def run(args: argparse.Namespace) -> int:
    if args.profile_dir:
        register_profile_dir(args.profile_dir)
    if args.check:
        with warnings.catch_warnings():  # reported below, once, as part of the check
            warnings.simplefilter("ignore", ProfileWarning)
            profile = read_profile(args.check)
        problems = profile.implausible_figures()
        print(f"{args.check}: valid, {len(problems)} warning(s)")
        print("".join(f"  warning: {line}\n" for line in problems) + describe(profile))
        return 0
    if args.show:
        profile = get_profile(args.show)
        print(json.dumps(profile.model_dump(), indent=2) if args.json else describe(profile))
        return 0
    profiles = available_profiles()
    if args.json:
        print(json.dumps({name: p.model_dump() for name, p in profiles.items()}, indent=2))
        return 0
    print(listing(profiles))
    return 0


def listing(profiles: dict[str, HardwareProfile]) -> str:
    """One line per profile: name, kind, flagged figures, origin, title."""
    shipped = builtin_profiles()
    rows = [("name", "kind", "figures", "assumed", "origin", "title")]
    for name, p in profiles.items():
        origin = "shipped" if shipped.get(name) is p else "user"
        rows.append(
            (
                name,
                p.kind,
                str(len(p.figure_items())),
                str(len(p.flagged_figures())),
                origin,
                p.title,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1] for r in rows)


def describe(profile: HardwareProfile) -> str:
    """Every figure with its unit, status, note and citation; then omissions."""
    lines = [f"{profile.name}: {profile.title} ({profile.kind})"]
    if profile.precision:
        lines.append(f"  precision: {profile.precision}")
    if profile.description:
        lines.append(f"  {' '.join(profile.description.split())}")
    for field, figure in profile.figure_items():
        unit, meaning, _ = FIGURES[field]
        flag = " UNVERIFIED" if figure.unverified else ""
        lines.append(f"  {field} = {si(figure.value, unit)} [{figure.status}{flag}] ({meaning})")
        if figure.note:
            lines.append(f"      {figure.note}")
        lines.append(f"      source: {' '.join(profile.sources[figure.source].split())}")
    for field, where in profile.bundled.items():
        lines.append(f"  {field}: not priced separately: {where}")
    for item in profile.leaves_out:
        lines.append(f"  leaves out: {item}")
    return "\n".join(lines)
