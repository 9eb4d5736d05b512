"""Fused CPU kernels for a memory-unit layer's training step (numba).

A mirror of :func:`cmru_neuro.functional.hysteresis_update` (arctan surrogate) followed by
:func:`cmru_neuro.functional.scan_parallel`, for a per-unit step ``alpha`` and any per-unit
epsilon (CMRU, BMRU, scheduled or learned epsilon): one pass over time, vectorized across
batch and units, with the gate computed on the fly. Forward reads the projected currents
once and writes the states; backward reads currents, states and output gradients once and
writes the currents' gradients. Events (the snnTorch neurons' spikes) are written on
request, and their gradients taken, in the same passes. The composed PyTorch path does a
dozen passes (more for the associative scan) for the same work.

The state is kept as in :func:`~cmru_neuro.functional.scan_parallel`:
``h_t = alpha L_t + A_t h_0`` with the level ``L_t = a_t L_{t-1} + e_t`` and the carry
``A_t = a_t A_{t-1}``, so levels and events are exact for epsilon in {0, 1} and the
states equal the composed path's to one rounding there (to float rounding otherwise;
``tests/test_kernels.py``). :func:`cmru_neuro.functional.hysteresis_scan` picks this path
for CPU float tensors and the PyTorch composition everywhere else.

Shapes: ``currents`` ``(T, B, 2H)`` packed ``[candidate | threshold]`` (the layer's
projection output), ``h0`` ``(B, H)``, ``alpha`` and ``epsilon`` ``(H,)``; states ``(T, B, H)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

# Constants are float32 (exact in float64 too, so one kernel serves both dtypes). The numpy
# error model drops the division-by-zero checks, which is what lets LLVM vectorize the loops;
# strict IEEE math otherwise (-0.0 counts as positive, states round like PyTorch's).
ONE, ZERO, TWO = np.float32(1.0), np.float32(0.0), np.float32(2.0)
_JIT = {"cache": True, "error_model": "numpy", "nogil": True}


@numba.njit(**_JIT)
def _forward(currents, h0, alpha, epsilon, h, events, record):  # pragma: no cover - compiled
    """z = 1[|c| >= |beta|], e = z sign(c), a = 1 - z (1 - epsilon); h as in the module
    docstring. ``events`` receives e when ``record`` (else it is not touched)."""
    steps, batch, hidden = h.shape
    level = np.zeros((batch, hidden), currents.dtype)
    carry = np.ones((batch, hidden), currents.dtype)
    for t in range(steps):
        for b in range(batch):
            for j in range(hidden):
                candidate = currents[t, b, j]
                gate = ONE if abs(candidate) >= abs(currents[t, b, hidden + j]) else ZERO
                event = gate if candidate >= ZERO else -gate
                decay = ONE - gate * (ONE - epsilon[j])
                level[b, j] = decay * level[b, j] + event
                carry[b, j] *= decay
                if record:
                    events[t, b, j] = event
            for j in range(hidden):
                h[t, b, j] = alpha[j] * level[b, j] + carry[b, j] * h0[b, j]


@numba.njit(**_JIT)
def _backward(
    currents,
    h0,
    alpha,
    epsilon,
    h,
    grad_h,
    grad_events,
    direct,
    decays,
    slope,
    pi_slope,
    grad_currents,
    grad_h0,
    grad_sums,
):  # pragma: no cover - compiled
    """Surrogate gradients of :func:`_forward`.

    ``grad_events`` is dL/de from outside, read only when ``direct``. ``grad_h0`` (B, H) and
    ``grad_sums`` (B, 2H): ``[dL/dalpha | dL/depsilon]`` per batch row, summed over B by the
    caller) come in zeroed. ``G_t = dL/dh_t + a_{t+1} G_{t+1}`` runs backwards in
    ``grad_h0`` and ends as dL/dh0 = a_0 G_0. Per step: dL/de_t = alpha G_t (+ the direct
    part), dL/da_t = G_t h_{t-1}, dL/dalpha += e_t G_t, dL/depsilon += z_t G_t h_{t-1}.
    Without ``decays`` (every epsilon 1 and no dL/depsilon wanted) h_{t-1} is not read:
    dL/da_t is then never used, and dL/depsilon comes out meaningless.
    """
    steps, batch, hidden = h.shape
    for t in range(steps - 1, -1, -1):
        previous = h[t - 1] if t > 0 and decays else h0
        for b in range(batch):
            for j in range(hidden):
                total = grad_h0[b, j] + grad_h[t, b, j]
                candidate = currents[t, b, j]
                threshold = currents[t, b, hidden + j]
                direction = ONE if candidate >= ZERO else -ONE
                margin = abs(candidate) - abs(threshold)
                gate = ONE if margin >= ZERO else ZERO
                hold = ONE - epsilon[j]
                grad_event = alpha[j] * total
                if direct:
                    grad_event += grad_events[t, b, j]
                grad_decay = total * previous[b, j]
                grad_sums[b, j] += gate * direction * total
                grad_sums[b, hidden + j] += gate * grad_decay
                bend = pi_slope * margin
                grad_gate = (grad_event * direction - hold * grad_decay) * (
                    slope / (ONE + bend * bend)
                )
                bend = pi_slope * candidate
                grad_currents[t, b, j] = grad_gate * direction + TWO * grad_event * gate * (
                    slope / (ONE + bend * bend)
                )
                grad_currents[t, b, hidden + j] = -grad_gate if threshold >= ZERO else grad_gate
                grad_h0[b, j] = (ONE - gate * hold) * total


def supports(currents: Tensor) -> bool:
    """True where these kernels run: CPU float32/float64 tensors."""
    return currents.device.type == "cpu" and currents.dtype in (torch.float32, torch.float64)


class HysteresisScan(torch.autograd.Function):
    """``(currents, h0, alpha, epsilon, slope, record_events) -> h`` ``(T, B, H)``, or
    ``(h, events)`` with ``record_events``; see the module docstring."""

    @staticmethod
    def forward(ctx, currents, h0, alpha, epsilon, slope: float, record_events: bool = False):
        inputs = [v.detach().contiguous() for v in (currents, h0, alpha, epsilon)]
        h = inputs[0].new_empty(*inputs[0].shape[:2], alpha.shape[0])
        events = torch.empty_like(h) if record_events else h
        _forward(*(v.numpy() for v in (*inputs, h, events)), record_events)
        ctx.save_for_backward(*inputs, h)
        ctx.slope = slope
        ctx.set_materialize_grads(False)  # no zero-filled gradient for an unused output
        return (h, events) if record_events else h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h, grad_events=None):
        currents, h0, alpha, epsilon, h = ctx.saved_tensors
        states_used = grad_h is not None  # else only events reach the loss
        grad_h = grad_h.contiguous() if states_used else torch.zeros_like(h)
        direct = grad_events is not None
        grad_events = grad_events.contiguous() if direct else grad_h  # not read
        grad_currents = torch.empty_like(currents)
        grad_h0, grad_sums = torch.zeros_like(h0), h0.new_zeros(h0.shape[0], 2 * h0.shape[1])
        scalar = currents.numpy().dtype.type
        decays = ctx.needs_input_grad[3] or bool((epsilon != 1).any())
        _backward(
            *(v.numpy() for v in (currents, h0, alpha, epsilon, h, grad_h, grad_events)),
            direct,
            decays,
            scalar(ctx.slope),
            scalar(math.pi * ctx.slope),
            *(v.numpy() for v in (grad_currents, grad_h0, grad_sums)),
        )
        if not states_used:  # h0, alpha and epsilon only act on the states
            return grad_currents, None, None, None, None, None
        grad_alpha, grad_epsilon = grad_sums.sum(0).chunk(2)
        return grad_currents, grad_h0, grad_alpha, grad_epsilon if decays else None, None, None
