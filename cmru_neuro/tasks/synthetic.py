"""Generated long-range retention tasks (deterministic per ``seed``, float inputs ``(N, T, F)``)."""

from __future__ import annotations

import torch

from .._checks import check_positive_int
from .base import Split, Task, check_sizes, generator


def _check_fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(value)


def _check_noise(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"noise: expected a non-negative number, got {value!r}")
    return float(value)


def copy_first(
    length: int = 1000,
    classes: int = 4,
    noise: float = 0.0,
    train_size: int = 2000,
    test_size: int = 500,
    seed: int = 0,
) -> Task:
    """Remember the first input over ``length`` steps.

    Step 0 is a one-hot symbol out of ``classes``; steps 1..T-1 are Gaussian distractors of
    std ``noise`` (0: silence). Inputs ``(N, T, classes)``; target: the symbol, read at
    the last step. Chance is ``1 / classes``.
    """
    check_sizes(length=length, train_size=train_size, test_size=test_size)
    if check_positive_int(classes, "classes") < 2:
        raise ValueError(f"classes: expected at least 2, got {classes}")
    noise = _check_noise(noise)
    rng = generator(seed)

    def split(n: int) -> Split:
        symbols = torch.randint(0, classes, (n,), generator=rng)
        inputs = noise * torch.randn(n, length, classes, generator=rng)
        inputs[:, 0] = torch.nn.functional.one_hot(symbols, classes).float()
        return Split(inputs, symbols)

    train = split(train_size)
    return Task(
        "copy-first", train, split(test_size), classes, classes, "classify", "last",
        solved_at=0.99,
    )


def flip_flop(
    length: int = 500,
    bits: int = 3,
    pulse_probability: float = 0.02,
    train_size: int = 1000,
    test_size: int = 250,
    seed: int = 0,
) -> Task:
    """n-bit flip-flop (Sussillo and Barak 2013): hold each channel's last command.

    Inputs ``(N, T, bits)`` in {-1, 0, +1}: a pulse with probability ``pulse_probability``
    per step and channel, and always one at step 0. Targets ``(N, T, bits)``: 1 where the
    channel's latest pulse was +1, else 0; scored at every step and channel.
    """
    check_sizes(length=length, bits=bits, train_size=train_size, test_size=test_size)
    pulse_probability = _check_fraction(pulse_probability, "pulse_probability")
    rng = generator(seed)

    def split(n: int) -> Split:
        fire = torch.rand(n, length, bits, generator=rng) < pulse_probability
        fire[:, 0] = True
        signs = torch.randint(0, 2, (n, length, bits), generator=rng) * 2 - 1
        pulses = torch.where(fire, signs, torch.zeros_like(signs))
        steps = torch.arange(length).view(1, length, 1).expand_as(pulses)
        latest = torch.where(fire, steps, torch.zeros_like(steps)).cummax(dim=1).values
        targets = (pulses.gather(1, latest) > 0).float()
        return Split(pulses.float(), targets)

    train = split(train_size)
    return Task(
        "flip-flop", train, split(test_size), bits, bits, "classify-steps", "sequence",
        solved_at=0.99,
    )


def adding(
    length: int = 200,
    tolerance: float = 0.04,
    train_size: int = 2000,
    test_size: int = 500,
    seed: int = 0,
) -> Task:
    """Adding problem (Hochreiter and Schmidhuber 1997; Arjovsky et al. 2016 layout).

    Inputs ``(N, T, 2)``: channel 0 uniform values in [0, 1], channel 1 marks one step in
    each half of the sequence. Target: the sum of the two marked values (regression; a
    prediction within ``tolerance`` counts as correct; always predicting 1 has MSE ~0.167).
    """
    check_sizes(length=length, train_size=train_size, test_size=test_size)
    if length < 2:
        raise ValueError(f"length: expected at least 2, got {length}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance <= 0:
        raise ValueError(f"tolerance: expected a positive number, got {tolerance!r}")
    rng = generator(seed)
    half = length // 2

    def split(n: int) -> Split:
        values = torch.rand(n, length, generator=rng)
        first = torch.randint(0, half, (n,), generator=rng)
        second = torch.randint(half, length, (n,), generator=rng)
        markers = torch.zeros(n, length)
        rows = torch.arange(n)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        targets = values[rows, first] + values[rows, second]
        return Split(torch.stack([values, markers], dim=-1), targets)

    train = split(train_size)
    return Task(
        "adding", train, split(test_size), 2, 1, "regress", "last", solved_at=0.9,
        tolerance=float(tolerance),
    )
