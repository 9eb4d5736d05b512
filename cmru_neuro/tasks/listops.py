"""ListOps generated the Long Range Arena way (Tay et al. 2021, after Nangia and Bowman 2018).

Random expression trees over the digits 0-9 with operators MIN, MAX, MED (median, rounded
down) and SM (sum modulo 10): a node is a value with probability 0.75 (always at
``max_depth``), else an operator over 2..``max_args`` sub-trees. Trees whose token count
falls outside ``[min_length, max_length]`` are rejected. Example (tokens)::

    [MAX 2 9 [MIN 4 7 ] 0 ]  ->  9

Tokens (brackets of the LRA text dropped): 0 pad, 1-10 digits 0-9, 11-14 operators, 15 ``]``.
Sequences are left-padded to ``max_length`` so the last step is the closing bracket.
"""

from __future__ import annotations

import random

import torch

from .._checks import check_positive_int
from .base import Task, check_sizes, split_rows

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
VOCABULARY = ("<pad>", *map(str, range(10)), *OPERATORS, "]")
PAD, CLOSE = 0, len(VOCABULARY) - 1
BRANCH_PROBABILITY = 0.25


def evaluate(operator: str, values: list[int]) -> int:
    """The value of ``[operator values... ]``."""
    if operator == "[MIN":
        return min(values)
    if operator == "[MAX":
        return max(values)
    if operator == "[SM":
        return sum(values) % 10
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2


class _TooLong(Exception):
    """Raised to abandon a tree as soon as it exceeds the length limit."""


def sample_tree(rng: random.Random, max_depth: int, max_args: int, limit: int) -> tuple[list[int], int]:
    """One random expression of at most ``limit`` tokens: (tokens, value).

    Raises ``_TooLong`` as soon as the tree outgrows ``limit``: the trees that survive are
    distributed exactly as the LRA generator's after its length filter.
    """
    tokens: list[int] = []

    def grow(depth: int) -> int:
        if depth >= max_depth or rng.random() > BRANCH_PROBABILITY:
            value = rng.randrange(10)
            tokens.append(value + 1)
        else:
            operator = rng.randrange(len(OPERATORS))
            tokens.append(11 + operator)
            values = [grow(depth + 1) for _ in range(rng.randint(2, max_args))]
            tokens.append(CLOSE)
            value = evaluate(OPERATORS[operator], values)
        if len(tokens) > limit:
            raise _TooLong
        return value

    value = grow(0)
    return tokens, value


def decode(tokens) -> str:
    """Token ids -> the expression text (padding dropped)."""
    return " ".join(VOCABULARY[int(t)] for t in tokens if int(t) != PAD)


def listops(
    min_length: int = 500,
    max_length: int = 2000,
    max_depth: int = 10,
    max_args: int = 10,
    train_size: int = 2000,
    test_size: int = 500,
    seed: int = 0,
) -> Task:
    """ListOps: inputs ``(N, max_length)`` token ids (one-hot features, F = 16), 10 classes.

    LRA uses ``min_length=500, max_length=2000`` (the defaults); shorter bounds make the
    short variant. Rejection sampling: lengths the tree process rarely reaches are slow.
    """
    check_sizes(min_length=min_length, max_length=max_length, max_depth=max_depth,
                train_size=train_size, test_size=test_size)
    if min_length > max_length:
        raise ValueError(f"min_length, max_length: expected min_length <= max_length, got {min_length}, {max_length}")
    if check_positive_int(max_args, "max_args") < 2:
        raise ValueError(f"max_args: expected at least 2, got {max_args}")
    rng = random.Random(int(seed))
    total = train_size + test_size
    inputs = torch.full((total, max_length), PAD, dtype=torch.long)
    targets = torch.empty(total, dtype=torch.long)
    row = 0
    while row < total:
        try:
            tokens, value = sample_tree(rng, max_depth, max_args, max_length)
        except _TooLong:
            continue
        if len(tokens) >= min_length:
            inputs[row, max_length - len(tokens):] = torch.tensor(tokens)
            targets[row] = value
            row += 1
    train, test = split_rows(inputs, targets, train_size)
    return Task("listops", train, test, len(VOCABULARY), 10, "classify", "last", encoding="tokens")
