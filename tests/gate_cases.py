"""The gate's edge cases, one table that every implementation runs (not a test file).

Run by ``tests/test_gate_edge_cases.py`` (composed PyTorch, fused numba kernels, the golden
model in floats and integers, Lava floating_pt and fixed_pt) and ``tests/test_triton_interpreter.py``
(Triton kernels). Each case is one unit taking one step from ``level``:

* ``"cmru"`` (epsilon 1) and ``"bmru"`` (epsilon 0): gate ``z = 1[|c| >= |beta|]``, event
  ``z * sign(c)`` with sign(0) = sign(-0.0) = +1; the new level is ``level + event`` (CMRU)
  or ``event`` where ``z = 1`` (BMRU).
* ``"fq-bmru"`` (first quadrant): on ``relu(c)``, set (level 1) where ``>= beta_hi``
  (``threshold``), reset (level 0) where ``< beta_lo`` (``threshold_low``, strict), hold
  in between; gate ``z = set + reset``, event ``set`` (what ``first_quadrant_update`` calls
  events at epsilon 0).

Every value is exact in float32. ``numbers`` says where a case runs: ``"float"`` (PyTorch,
the float golden model, Lava floating_pt) and ``"integer"`` (the integer golden model, Lava
fixed_pt): -0.0 and values between integers are float only, saturation (the 24-bit level
limit, ``state_saturations`` clipped levels) is integer only.
"""

from typing import NamedTuple

import torch

from cmru_neuro.golden import STATE_LIMIT

EPSILON = {"cmru": 1.0, "bmru": 0.0}  # the epsilon family's kinds
KINDS = (*EPSILON, "fq-bmru")
NUMBERS = ("float", "integer")
FLOAT = ("float",)
INTEGER = ("integer",)


class GateCase(NamedTuple):
    name: str
    kind: str
    candidate: float  # c
    threshold: float  # beta (first quadrant: beta_hi)
    level: float  # before the step
    gate: float  # expected z
    event: float  # expected z * sign(c) (first quadrant: set)
    new_level: float  # expected level after the step
    threshold_low: float = 0.0  # first quadrant: beta_lo
    numbers: tuple = NUMBERS
    state_saturations: int = 0


ULP_BELOW_3 = 3.0 - 2.0**-22  # the float32 just below 3 (2 - 2**-23 below 2, 5 - 2**-21 below 5)

CASES = [
    GateCase("c = beta opens", "cmru", 3.0, 3.0, 0.0, 1.0, 1.0, 1.0),
    GateCase("c = -beta opens downwards", "cmru", -3.0, 3.0, 2.0, 1.0, -1.0, 1.0),
    GateCase("negative beta: |beta| ties", "cmru", 3.0, -3.0, 0.0, 1.0, 1.0, 1.0),
    GateCase("negative beta and c", "cmru", -5.0, -2.0, 0.0, 1.0, -1.0, -1.0),
    GateCase("below a negative beta", "cmru", 2.0, -3.0, 4.0, 0.0, 0.0, 4.0),
    GateCase("c = beta = 0 opens upwards", "cmru", 0.0, 0.0, -1.0, 1.0, 1.0, 0.0),
    GateCase("c = -0.0, beta = 0", "cmru", -0.0, 0.0, 0.0, 1.0, 1.0, 1.0, numbers=FLOAT),
    GateCase("c = -0.0, beta = -0.0", "cmru", -0.0, -0.0, 0.0, 1.0, 1.0, 1.0, numbers=FLOAT),
    GateCase("c = 0, beta = -0.0", "cmru", 0.0, -0.0, 5.0, 1.0, 1.0, 6.0, numbers=FLOAT),
    GateCase("c < 0, beta = -0.0", "cmru", -3.0, -0.0, 0.0, 1.0, -1.0, -1.0, numbers=FLOAT),
    GateCase("c = -0.0 below beta holds", "cmru", -0.0, 3.0, 2.0, 0.0, 0.0, 2.0, numbers=FLOAT),
    GateCase("one below beta holds", "cmru", 2.0, 3.0, 4.0, 0.0, 0.0, 4.0),
    GateCase("one above -beta holds", "cmru", -2.0, 3.0, -4.0, 0.0, 0.0, -4.0),
    GateCase("one ulp below beta holds", "cmru", ULP_BELOW_3, 3.0, 1.0, 0.0, 0.0, 1.0, numbers=FLOAT),
    GateCase("up to the limit", "cmru", 3.0, 3.0, STATE_LIMIT - 1, 1.0, 1.0, STATE_LIMIT),
    GateCase("closed at the limit", "cmru", 2.0, 3.0, STATE_LIMIT, 0.0, 0.0, STATE_LIMIT),
    GateCase("saturates at +limit", "cmru", 5.0, 3.0, STATE_LIMIT, 1.0, 1.0, STATE_LIMIT,
             numbers=INTEGER, state_saturations=1),
    GateCase("saturates at -limit", "cmru", -5.0, 3.0, -STATE_LIMIT, 1.0, -1.0, -STATE_LIMIT,
             numbers=INTEGER, state_saturations=1),
    GateCase("c = beta opens", "bmru", 3.0, 3.0, -1.0, 1.0, 1.0, 1.0),
    GateCase("c = -beta opens downwards", "bmru", -3.0, 3.0, 1.0, 1.0, -1.0, -1.0),
    GateCase("negative beta: |beta| ties", "bmru", -3.0, -3.0, 1.0, 1.0, -1.0, -1.0),
    GateCase("already at +1", "bmru", 5.0, 3.0, 1.0, 1.0, 1.0, 1.0),
    GateCase("already at -1", "bmru", -5.0, 3.0, -1.0, 1.0, -1.0, -1.0),
    GateCase("closed holds", "bmru", -2.0, 3.0, 1.0, 0.0, 0.0, 1.0),
    GateCase("c = beta = 0 opens upwards", "bmru", 0.0, 0.0, -1.0, 1.0, 1.0, 1.0),
    GateCase("c = -0.0, beta = 0", "bmru", -0.0, 0.0, -1.0, 1.0, 1.0, 1.0, numbers=FLOAT),
    GateCase("c = -0.0, beta = -0.0", "bmru", -0.0, -0.0, -1.0, 1.0, 1.0, 1.0, numbers=FLOAT),
    GateCase("c = -0.0 below beta holds", "bmru", -0.0, 3.0, -1.0, 0.0, 0.0, -1.0, numbers=FLOAT),
    GateCase("|c| one ulp below beta holds", "bmru", -ULP_BELOW_3, 3.0, 1.0, 0.0, 0.0, 1.0, numbers=FLOAT),
    GateCase("c = beta_hi sets", "fq-bmru", 5.0, 5.0, 0.0, 1.0, 1.0, 1.0, threshold_low=2.0),
    GateCase("c = beta_lo holds (strict reset)", "fq-bmru", 2.0, 5.0, 1.0, 0.0, 0.0, 1.0, threshold_low=2.0),
    GateCase("one below beta_lo resets", "fq-bmru", 1.0, 5.0, 1.0, 1.0, 0.0, 0.0, threshold_low=2.0),
    GateCase("one ulp below beta_lo resets", "fq-bmru", 2.0 - 2.0**-23, 5.0, 1.0, 1.0, 0.0, 0.0,
             threshold_low=2.0, numbers=FLOAT),
    GateCase("one ulp below beta_hi holds", "fq-bmru", 5.0 - 2.0**-21, 5.0, 0.0, 0.0, 0.0, 0.0,
             threshold_low=2.0, numbers=FLOAT),
    GateCase("between holds 1", "fq-bmru", 3.0, 5.0, 1.0, 0.0, 0.0, 1.0, threshold_low=2.0),
    GateCase("between holds 0", "fq-bmru", 4.0, 5.0, 0.0, 0.0, 0.0, 0.0, threshold_low=2.0),
    GateCase("negative c resets (beta_lo > 0)", "fq-bmru", -4.0, 5.0, 1.0, 1.0, 0.0, 0.0, threshold_low=2.0),
    GateCase("negative c holds at beta_lo = 0", "fq-bmru", -4.0, 5.0, 1.0, 0.0, 0.0, 1.0),
    GateCase("c = -0.0 holds at beta_lo = 0", "fq-bmru", -0.0, 5.0, 1.0, 0.0, 0.0, 1.0, numbers=FLOAT),
]


def select(kind: str, number: str) -> list:
    """The cases of one kind that run in ``number`` (``"float"`` or ``"integer"``)."""
    return [case for case in CASES if case.kind == kind and number in case.numbers]


def column(cases: list, field: str) -> list:
    """One field of every case, in order: ``(H,)`` values for a layer of one unit per case."""
    return [getattr(case, field) for case in cases]


def sequence_arguments(cases: list, fixed: bool) -> dict:
    """Epsilon-family cases as the arguments of one ``memory_sequence`` step, one unit per
    case, float32: ``currents`` ``(1, 1, 2H)`` = ``[c | beta]`` (``fixed``: ``(1, 1, H)`` =
    ``c`` and ``threshold`` ``(H,)`` = ``beta``), ``h0`` and ``initial_level`` ``(1, H)`` =
    the levels, ``step_size`` ``(H,)`` = 1 (so states equal levels) and ``epsilon``."""
    (kind,) = {case.kind for case in cases}
    candidate, threshold = (torch.tensor(column(cases, name)) for name in ("candidate", "threshold"))
    level = torch.tensor([column(cases, "level")])
    return {
        "currents": (candidate if fixed else torch.cat([candidate, threshold])).view(1, 1, -1),
        "threshold": threshold if fixed else None,
        "h0": level,
        "step_size": torch.ones(len(cases)),
        "epsilon": EPSILON[kind],
        "initial_level": level,
    }


def assert_matches(cases: list, **got) -> None:
    """Each keyword (a field: ``gate=``, ``event=``, ``new_level=``) holds ``(H,)`` values, one
    per case (any leading size-1 axes), equal to the table's; a failure names the cases."""
    for field, values in got.items():
        values = values.detach() if isinstance(values, torch.Tensor) else values
        values = [float(v) for v in values.reshape(-1).tolist()]
        assert len(values) == len(cases), f"{field}: {len(values)} values for {len(cases)} cases"
        wrong = [f"{case.kind} {case.name!r}: {field} {value}, expected {getattr(case, field)}"
                 for case, value in zip(cases, values) if value != getattr(case, field)]
        assert not wrong, "; ".join(wrong)
