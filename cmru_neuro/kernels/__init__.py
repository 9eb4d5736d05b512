"""Backends of :func:`cmru_neuro.functional.memory_sequence`, and the switches that pick them.

The fused form of a memory-unit sequence (gate, events, levels, states and their surrogate
gradients, one pass over memory forward and one backward) exists in two mirrors of the
composed functions of :mod:`cmru_neuro.functional`:

- :mod:`.numba_cpu`: numba kernels for CPU float32/float64 tensors;
- :mod:`.triton_gpu`: Triton kernels for CUDA float32/float64 tensors (where Triton is
  installed; its interpreter, ``TRITON_INTERPRET=1``, runs them on CPU for the tests).

Both take the same packed arguments and run under one autograd node, :class:`FusedScan`.
Anything else (other devices and dtypes, other surrogates, ``use_fused_kernels(False)``, the
environment variable ``CMRU_NEURO_FUSED=0``) takes the composed PyTorch path.
``tests/test_kernels.py`` and ``tests/test_triton_interpreter.py`` hold the mirrors equal.

Shapes: packed ``currents`` ``(T, N, S H)`` = ``[candidate | threshold (from the input) |
raw step (alpha-CMRU)]`` and their ``bias`` ``(S H,)`` (the projection's, added in the
kernels: no pass of its own forward or backward), ``h0`` and ``l0`` ``(N, H)``, per-unit
``alpha``, ``epsilon`` and ``threshold`` ``(H,)``; states, events, levels and gates
``(T, N, H)``.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from typing import NamedTuple

import torch
from torch import Tensor


class Switches:
    """Process-wide choices: fused kernels allowed (``CMRU_NEURO_FUSED=0`` starts with them off)."""

    fused = os.environ.get("CMRU_NEURO_FUSED") != "0"


def use_fused_kernels(enabled: bool = True) -> None:
    """Let :func:`cmru_neuro.functional.memory_sequence` run the fused kernels (the
    default), or only composed PyTorch ops."""
    Switches.fused = bool(enabled)


def use_compiled_kernels(enabled: bool = True) -> None:
    """Fuse the composed path's gate forward and backward with ``torch.compile``.

    About 10-40x faster on those two kernels; the first call compiles (~1 min on a fresh
    machine, seconds once cached). Falls back to eager PyTorch, with a warning, where
    compiling fails. Also enabled by the environment variable ``CMRU_NEURO_COMPILE=1``.
    """
    from .. import functional

    gate = functional._Kernels
    if not enabled:
        gate.forward = staticmethod(functional._gate_forward)
        gate.backward = staticmethod(functional._gate_backward)
        return
    gate.forward = staticmethod(_with_fallback(functional._gate_forward))
    gate.backward = staticmethod(_with_fallback(functional._gate_backward))


def _with_fallback(function):
    compiled = torch.compile(function, dynamic=True)

    def run(*args):
        try:
            return compiled(*args)
        except Exception as error:  # a missing compiler, an unsupported platform
            warnings.warn(f"cmru_neuro: compiled kernels unavailable ({error!r:.200}); using eager PyTorch")
            use_compiled_kernels(False)
            return function(*args)

    return run


def triton_available() -> bool:
    """True when Triton can be imported (it ships with PyTorch's CUDA wheels)."""
    return importlib.util.find_spec("triton") is not None


def backend(currents: Tensor, slope: float | None):
    """The kernel module that runs ``currents``, or None for the composed path.

    ``slope``: the arctan surrogate's slope, None for any other surrogate.
    """
    if not Switches.fused or slope is None or currents.dtype not in (torch.float32, torch.float64):
        return None
    if currents.device.type == "cpu":
        from . import numba_cpu

        return numba_cpu
    if currents.device.type == "cuda" and triton_available():
        from . import triton_gpu

        return triton_gpu
    return None


def run(
    module,
    currents: Tensor,
    threshold,
    h0: Tensor,
    step_size,
    epsilon,
    slope: float,
    initial_level: Tensor | None,
    record: frozenset,
    cumulative: bool,
    bias: Tensor | None = None,
) -> tuple:
    """Pack the arguments of :func:`cmru_neuro.functional.memory_sequence` and run ``module``:
    ``(states, events, levels, gates)``, each ``(T, ..., H)``, None where not recorded.

    ``threshold`` None: from the currents; else per unit ``(H,)`` or a scalar. ``step_size``
    None: ``softplus`` of the currents' last block; else per unit or a scalar. ``bias``
    ``(S H,)`` or None (zeros).
    """
    hidden, dtype, device = h0.shape[-1], currents.dtype, currents.device

    def per_unit(value) -> Tensor:  # (H,) in the currents' dtype, differentiable
        if isinstance(value, Tensor):
            return value.to(device=device, dtype=dtype).expand(hidden)
        return torch.full((hidden,), float(value), dtype=dtype, device=device)  # no host copy

    steps, shape = currents.shape[0], (currents.shape[0], *h0.shape)
    flat_h0 = h0.to(dtype).reshape(-1, hidden)
    packed = currents.reshape(steps, flat_h0.shape[0], currents.shape[-1])
    l0 = None if initial_level is None else initial_level.to(dtype).reshape(-1, hidden)
    fixed = threshold is not None
    bias = packed.new_zeros(packed.shape[-1]) if bias is None else bias.to(dtype)
    outputs = FusedScan.apply(
        module, packed, bias, flat_h0, l0,
        per_unit(1.0 if step_size is None else step_size), per_unit(epsilon),
        per_unit(threshold if fixed else 1.0),
        slope, fixed, step_size is None, cumulative,
        "events" in record, "levels" in record, "gates" in record,
    )
    return tuple(None if o is None else o.view(shape) for o in outputs)


class Flags(NamedTuple):
    """Static choices of one fused call (the kernels branch on them)."""

    fixed_threshold: bool  # threshold per unit, not in the currents
    per_step: bool  # step size softplus(raw) from the currents' last block
    decays: bool  # some epsilon may differ from 1: previous states are read backward


class FusedScan(torch.autograd.Function):
    """One fused pass forward, one backward, through ``module`` (:mod:`.numba_cpu` or
    :mod:`.triton_gpu`). Returns ``(h, events, levels, gates)`` (None where not recorded)."""

    @staticmethod
    def forward(ctx, module, currents, bias, h0, l0, alpha, epsilon, threshold, slope, fixed,
                per_step, cumulative, record_events, record_levels, record_gates):
        inputs = [v.detach().contiguous() for v in (currents, bias, h0, alpha, epsilon, threshold)]
        currents_, bias_, h0_ = inputs[:3]
        l0_ = torch.zeros_like(h0_) if l0 is None else l0.detach().contiguous()
        h = currents_.new_empty(currents_.shape[0], h0_.shape[0], h0_.shape[1])
        # levels and gates come together (one compiled kernel fewer per combination)
        trace = record_levels or record_gates
        events, levels, gates = (
            torch.empty_like(h) if wanted else None for wanted in (record_events, trace, trace)
        )
        flags = Flags(fixed, per_step, not cumulative or ctx.needs_input_grad[6])
        # alpha_t = softplus(raw) by PyTorch (numba's exp is scalar), the raw block made
        # contiguous by adding its bias (twice as fast as on the strided block); else placeholders
        hidden = h.shape[-1]
        raw = currents_[..., -hidden:] + bias_[-hidden:] if per_step else h
        steps = torch.nn.functional.softplus(raw) if per_step else h
        module.forward(currents_, bias_, h0_, l0_, *inputs[3:], steps, flags, h, events, levels, gates)
        ctx.save_for_backward(currents_, bias_, h0_, l0_, *inputs[3:], raw, steps, h, levels)
        ctx.module, ctx.slope, ctx.flags = module, slope, flags
        ctx.set_materialize_grads(False)  # no zero-filled gradient for an unused output
        return h, events, levels if record_levels else None, gates if record_gates else None

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h, grad_events, grad_levels, grad_gates):
        currents, bias, h0, l0, alpha, epsilon, threshold, raw, steps, h, levels = ctx.saved_tensors
        step_slopes = torch.sigmoid(raw) if ctx.flags.per_step else h  # d softplus / d raw
        if (grad_levels is None) != (grad_gates is None):  # the kernels take both or neither
            grad_levels, grad_gates = (torch.zeros_like(h) if g is None else g for g in (grad_levels, grad_gates))
        grads = [None if g is None else g.contiguous() for g in (grad_h, grad_events, grad_levels, grad_gates)]
        grad_currents = torch.empty_like(currents)
        grad_h0, grad_l0 = torch.zeros_like(h0), torch.zeros_like(h0)
        # per row: [alpha | epsilon | threshold | bias (S H)]
        grad_sums = h0.new_zeros(h0.shape[0], 3 * h0.shape[1] + currents.shape[-1])
        ctx.module.backward(
            currents, bias, h0, l0, alpha, epsilon, threshold, steps, step_slopes, h, levels, *grads,
            ctx.flags, ctx.slope,
            grad_currents, grad_h0, grad_l0, grad_sums,
        )
        hidden = h0.shape[1]
        grad_alpha, grad_epsilon, grad_threshold, grad_bias = grad_sums.sum(0).split(
            [hidden, hidden, hidden, currents.shape[-1]])
        grads = (grad_currents, grad_bias, grad_h0, grad_l0, grad_alpha, grad_epsilon, grad_threshold)
        wanted = ctx.needs_input_grad[1:8]
        return (None, *(g if w else None for g, w in zip(grads, wanted)), *([None] * 7))


if os.environ.get("CMRU_NEURO_COMPILE") == "1":  # pragma: no cover - set by the user
    use_compiled_kernels(True)
