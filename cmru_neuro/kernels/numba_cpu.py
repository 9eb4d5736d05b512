"""Fused CPU kernels of a memory-unit sequence (numba): the CPU mirror of
:func:`cmru_neuro.functional.memory_sequence`'s composed path (arctan surrogate).

One pass over time, vectorized across batch and units, the gate computed on the fly:
forward reads the packed currents once (adding their bias) and writes the states (and
events, levels, gates on request); backward reads currents, states and output gradients
once and writes the currents' gradients, dL/dh0, dL/dL0 and the per-unit sums for alpha,
epsilon, a per-unit threshold and the bias. The state is kept as the composed scan keeps it:
``h_t = alpha L_t + A_t h_0`` with ``L_t = a_t L_{t-1} + e_t`` and ``A_t = a_t A_{t-1}``
(a per-unit step), or ``h_t = S_t + A_t h_0`` with ``S_t = a_t S_{t-1} + alpha_t e_t``
(alpha-CMRU: ``steps`` ``alpha_t = softplus(raw_t)`` and, backward, ``step_slopes``
``sigmoid(raw_t)`` come computed by PyTorch, whose vectorized ``exp`` numba lacks), so levels and events are exact and states
equal the composed path's to one rounding for epsilon in {0, 1} with a per-unit step.
Shapes and flags: see :mod:`cmru_neuro.kernels`.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

# Constants are float32 (exact in float64 too, so one kernel serves both dtypes). The numpy
# error model drops the division-by-zero checks, which is what lets LLVM vectorize the loops;
# strict IEEE math otherwise (-0.0 counts as positive, states round like PyTorch's).
ONE, ZERO, TWO = np.float32(1.0), np.float32(0.0), np.float32(2.0)
_JIT = {"cache": True, "error_model": "numpy", "nogil": True}
# The flags are closure constants: each combination compiles (and is cached) on its own, with
# no branch left in the loops, which is what lets them vectorize.


@functools.cache
def _forward_kernel(fixed: bool, per_step: bool, record_events: bool, record_trace: bool):
    """The forward kernel for these flags (see :mod:`cmru_neuro.kernels`):
    z = 1[|c| >= |beta|], e = z sign(c), a = 1 - z (1 - epsilon); see the module docstring."""

    @numba.njit(**_JIT)
    def kernel(currents, bias, h0, l0, alpha, epsilon, threshold, steps_, h, events, levels, gates):  # pragma: no cover - compiled
        steps, batch, hidden = h.shape
        level = np.zeros((batch, hidden), currents.dtype)
        carry = np.ones((batch, hidden), currents.dtype)
        total = np.zeros((batch, hidden), currents.dtype)  # S_t of a per-step step
        for t in range(steps):
            for b in range(batch):
                for j in range(hidden):
                    candidate = currents[t, b, j] + bias[j]
                    bound = threshold[j] if fixed else currents[t, b, hidden + j] + bias[hidden + j]
                    gate = ONE if abs(candidate) >= abs(bound) else ZERO
                    event = gate if candidate >= ZERO else -gate
                    decay = ONE - gate * (ONE - epsilon[j])
                    level[b, j] = decay * level[b, j] + event
                    carry[b, j] *= decay
                    if per_step:
                        total[b, j] = decay * total[b, j] + steps_[t, b, j] * event
                    if record_events:
                        events[t, b, j] = event
                    if record_trace:
                        gates[t, b, j] = gate
                for j in range(hidden):
                    if per_step:
                        h[t, b, j] = total[b, j] + carry[b, j] * h0[b, j]
                    else:
                        h[t, b, j] = alpha[j] * level[b, j] + carry[b, j] * h0[b, j]
                    if record_trace:
                        levels[t, b, j] = level[b, j] + carry[b, j] * l0[b, j]

    return kernel


@functools.cache
def _backward_kernel(has_h: bool, has_events: bool, has_trace: bool, fixed: bool, per_step: bool):
    """The backward kernel for these flags: surrogate gradients of :func:`_forward_kernel`.

    ``grad_h0`` and ``grad_l0`` carry ``G_t = dL/dh_t + a_{t+1} G_{t+1}`` (and the same for
    levels) backwards and end as dL/dh0, dL/dL0; ``grad_sums`` (N, (3 + S) H) gathers
    ``[dL/dalpha | dL/depsilon | dL/dthreshold | dL/dbias]`` per row (summed over N by the
    caller; dL/dbias is the currents' gradient summed over time).
    Per step: dL/de_t = step_t G_t + GL_t (+ dL/de_t from outside), dL/da_t = G_t h_{t-1}
    + GL_t L_{t-1}, dL/dz_t = dL/de_t sign(c_t) - (1 - eps) dL/da_t (+ dL/dz_t from outside).
    Without ``decays`` (every epsilon 1, no dL/depsilon wanted; a run-time flag, read once
    per step) h_{t-1} is not read: h0 stands in, and dL/depsilon comes out meaningless.
    """

    @numba.njit(**_JIT)
    def kernel(currents, bias, h0, l0, alpha, epsilon, threshold, steps_, step_slopes, h, levels,
               grad_h, grad_events, grad_levels, grad_gates, decays, slope, pi_slope,
               grad_currents, grad_h0, grad_l0, grad_sums):  # pragma: no cover - compiled
        steps, batch, hidden = h.shape
        raw_at = hidden if fixed else 2 * hidden
        bias_at, width = 3 * hidden, currents.shape[2]  # where dL/dbias starts in grad_sums
        step_grads = np.empty(hidden, currents.dtype)  # one row's dL/dalpha_t (per step)
        for t in range(steps - 1, -1, -1):
            previous = h[t - 1] if t > 0 and decays else h0
            previous_level = levels[t - 1] if t > 0 and decays and has_trace else l0
            for b in range(batch):
                for j in range(hidden):
                    total = grad_h0[b, j] + grad_h[t, b, j] if has_h else ZERO
                    total_level = grad_l0[b, j] + grad_levels[t, b, j] if has_trace else ZERO
                    candidate = currents[t, b, j] + bias[j]
                    bound = threshold[j] if fixed else currents[t, b, hidden + j] + bias[hidden + j]
                    direction = ONE if candidate >= ZERO else -ONE
                    margin = abs(candidate) - abs(bound)
                    gate = ONE if margin >= ZERO else ZERO
                    hold = ONE - epsilon[j]
                    if per_step:
                        step = steps_[t, b, j]
                        step_grads[j] = gate * direction * total
                    else:
                        step = alpha[j]
                    grad_event = step * total + total_level
                    if has_events:
                        grad_event += grad_events[t, b, j]
                    grad_decay = total * previous[b, j]
                    if has_trace:
                        grad_decay += total_level * previous_level[b, j]
                    grad_sums[b, j] += gate * direction * total
                    grad_sums[b, hidden + j] += gate * grad_decay
                    grad_gate = grad_event * direction - hold * grad_decay
                    if has_trace:
                        grad_gate += grad_gates[t, b, j]
                    bend = pi_slope * margin
                    grad_gate *= slope / (ONE + bend * bend)
                    bend = pi_slope * candidate
                    grad_candidate = grad_gate * direction + TWO * grad_event * gate * (
                        slope / (ONE + bend * bend)
                    )
                    grad_currents[t, b, j] = grad_candidate
                    grad_bound = -grad_gate if bound >= ZERO else grad_gate
                    if fixed:
                        grad_sums[b, 2 * hidden + j] += grad_bound
                    else:
                        grad_currents[t, b, hidden + j] = grad_bound
                    keep = ONE - gate * hold
                    if has_h:
                        grad_h0[b, j] = keep * total
                    if has_trace:
                        grad_l0[b, j] = keep * total_level
                if per_step:  # a loop of its own: a third output stream stops the vectorizer
                    for j in range(hidden):
                        grad_currents[t, b, raw_at + j] = step_grads[j] * step_slopes[t, b, j]
                for j in range(width):  # dL/dbias, from the row just written (still in cache)
                    grad_sums[b, bias_at + j] += grad_currents[t, b, j]

    return kernel


def forward(currents, bias, h0, l0, alpha, epsilon, threshold, steps, flags, h, events, levels,
            gates) -> None:
    """Run :func:`_forward_kernel` on CPU tensors (outputs written in place; None: not
    recorded; levels and gates come both or neither)."""
    outputs = [h.numpy() if o is None else o.numpy() for o in (events, levels, gates)]
    kernel = _forward_kernel(flags.fixed_threshold, flags.per_step, events is not None, levels is not None)
    kernel(*(v.numpy() for v in (currents, bias, h0, l0, alpha, epsilon, threshold, steps, h)), *outputs)


def backward(currents, bias, h0, l0, alpha, epsilon, threshold, steps, step_slopes, h, levels, grad_h,
             grad_events, grad_levels, grad_gates, flags, slope, grad_currents, grad_h0, grad_l0,
             grad_sums) -> None:
    """Run :func:`_backward_kernel` on CPU tensors (None gradients: not reaching the loss;
    those of levels and gates come both or neither)."""
    placeholder = h.numpy()
    grads = [placeholder if g is None else g.numpy() for g in (grad_h, grad_events, grad_levels, grad_gates)]
    scalar = placeholder.dtype.type
    kernel = _backward_kernel(grad_h is not None, grad_events is not None, grad_levels is not None,
                              flags.fixed_threshold, flags.per_step)
    kernel(
        *(v.numpy() for v in (currents, bias, h0, l0, alpha, epsilon, threshold, steps, step_slopes, h)),
        placeholder if levels is None else levels.numpy(),
        *grads, flags.decays, scalar(slope), scalar(math.pi * slope),
        *(v.numpy() for v in (grad_currents, grad_h0, grad_l0, grad_sums)),
    )
