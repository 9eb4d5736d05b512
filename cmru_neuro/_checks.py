"""Input checks shared by every front-end: each error names the argument, the expectation
and what came in."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor


def check_tensor(value, name: str) -> Tensor:
    """A floating-point tensor with finite values (:func:`check_finite`)."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if not (value.is_floating_point() or value.is_complex()):
        raise TypeError(
            f"{name}: expected a floating-point tensor, got dtype {value.dtype} "
            f"(convert with .float())"
        )
    return check_finite(value, name)


def check_real_tensor(value, name: str) -> Tensor:
    """A real floating-point tensor with finite values: the input of a spiking neuron."""
    if check_tensor(value, name).is_complex():
        raise TypeError(f"{name}: expected a real floating-point tensor, got dtype {value.dtype}")
    return value


def require(condition: Tensor, message: str) -> None:
    """``ValueError(message)`` where the 0-d boolean ``condition`` is False, without a
    host-device sync or a Python ``bool`` of a tensor: ``torch._assert_async`` checks it, at
    once on the CPU, queued on an accelerator (a failure surfaces at a later synchronisation
    as a device-side assertion, which ends the process's CUDA context). ``meta``: nothing."""
    if condition.device.type == "meta":
        return
    if condition.device.type != "cpu":
        torch._assert_async(condition, message)
        return
    try:
        torch._assert_async(condition, message)
    except RuntimeError:
        raise ValueError(message) from None


def check_finite(value: Tensor, name: str) -> Tensor:
    """NaN or inf in ``value`` raise ``ValueError`` (:func:`require`: no sync). On the CPU one
    reduction first (NaN and inf propagate through a sum), the exact check only when that
    fails (a finite sum may overflow)."""
    message = f"{name}: expected finite values, got NaN or inf"
    if value.device.type == "cpu":
        try:
            torch._assert_async(torch.isfinite(value.sum()), message)
            return value
        except RuntimeError:
            pass
    require(torch.isfinite(value).all(), message)
    return value


def check_dtype(value: Tensor, name: str, dtype: Optional[torch.dtype]) -> Tensor:
    """``value`` in ``dtype`` (a module's parameter dtype; None: any)."""
    if dtype is not None and value.dtype != dtype:
        raise TypeError(
            f"{name}: expected dtype {dtype} (the module's parameters), got {value.dtype} "
            f"(convert the input with .to({dtype}), or the module with .to({value.dtype}))"
        )
    return value


def check_shape(value: Tensor, name: str, expected: Sequence[Optional[int]], what: str) -> None:
    """``expected`` lists sizes; ``None`` accepts any size. ``what`` names the axes."""
    ok = value.dim() == len(expected) and all(
        e is None or e == n for e, n in zip(expected, value.shape)
    )
    if not ok:
        shown = ", ".join("*" if e is None else str(e) for e in expected)
        shown = f"({shown},)" if len(expected) == 1 else f"({shown})"
        raise ValueError(f"{name}: expected shape {shown} ({what}), got {tuple(value.shape)}")


def check_sequence(
    x, name: str, feature_size: int, batch_first: bool, dtype: Optional[torch.dtype] = None
) -> tuple[Tensor, bool]:
    """Validate a sequence and return it time-first ``(T, B, F)`` plus whether it was batched.

    Accepts ``(T, B, F)`` (``(B, T, F)`` when ``batch_first``) or unbatched ``(T, F)``, in
    ``dtype`` when given; ``T`` may be 0.
    """
    x = check_dtype(check_tensor(x, name), name, dtype)
    layout = "batch, time, features" if batch_first else "time, batch, features"
    if x.dim() == 2:
        check_shape(x, name, (None, feature_size), "time, features")
        return x.unsqueeze(1), False
    if x.dim() != 3:
        raise ValueError(
            f"{name}: expected a 3-D tensor ({layout}) or 2-D (time, features), "
            f"got {x.dim()}-D with shape {tuple(x.shape)}"
        )
    check_shape(x, name, (None, None, feature_size), layout)
    return (x.transpose(0, 1) if batch_first else x), True


def check_state(
    h, name: str, batch: int, hidden: int, batched: bool, dtype: Optional[torch.dtype] = None
) -> Tensor:
    """A state of shape ``(B, H)`` (``(H,)`` for unbatched input), in ``dtype`` when given;
    returned as ``(B, H)``."""
    h = check_dtype(check_tensor(h, name), name, dtype)
    if batched:
        check_shape(h, name, (batch, hidden), "batch, hidden")
        return h
    check_shape(h, name, (hidden,), "hidden")
    return h.unsqueeze(0)


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return value


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive_number(value, name: str, *, allow_inf: bool = False, what: str = "number"):
    """``value`` if it is a number > 0 (finite unless ``allow_inf``), else a ValueError
    naming ``name``; ``what`` says what the number is (``"number of seconds"``)."""
    if not (_is_number(value) and value > 0 and (allow_inf or math.isfinite(value))):
        finite = "" if allow_inf else " finite"
        raise ValueError(f"{name}: expected a positive{finite} {what}, got {value!r}")
    return value


def check_non_negative_number(value, name: str, *, what: str = "number"):
    """``value`` if it is a finite number >= 0, else a ValueError naming ``name``."""
    if not (_is_number(value) and value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name}: expected a non-negative finite {what}, got {value!r}")
    return value


def check_distinct(values: Sequence, name: str, what: str) -> Sequence:
    """``values`` if none repeats, else a ValueError naming ``name`` and the repeats."""
    repeated = sorted({value for value in values if list(values).count(value) > 1})
    if repeated:
        raise ValueError(f"{name}: expected distinct {what}, got {', '.join(map(str, repeated))} more than once")
    return values


#: Seeds torch accepts: ``torch.manual_seed`` takes a 64-bit integer.
SEED_LIMIT = 2**63


def check_seed(value, name: str) -> int:
    """``value`` if it is an integer seed in [0, 2^63), else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name}: expected an integer seed in [0, 2^63), got {value!r}")
    return value
