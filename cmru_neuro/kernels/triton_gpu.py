"""Fused GPU kernels of a memory-unit sequence (Triton): the CUDA mirror of
:mod:`cmru_neuro.kernels.numba_cpu`, the same arithmetic line by line.

Each program owns ``BLOCK`` of the ``N H`` (batch row, unit) lanes and walks time inside
the kernel, its level, carry and running sums in registers: forward reads the currents
once and writes the states (events, levels, gates on request), backward walks time in
reverse once. The flags are compile-time constants, so a CMRU's kernel carries no code for
alpha-CMRU or levels. Without a GPU, Triton's interpreter (``TRITON_INTERPRET=1`` set
before importing triton) runs these kernels on CPU tensors: ``tests/test_triton_interpreter.py``.
"""

from __future__ import annotations

import math

import triton
import triton.language as tl

BLOCK = 128


@triton.jit
def _lane_setup(bias, h0, l0, alpha, epsilon, lanes, hidden, FIXED: tl.constexpr,
                PER_STEP: tl.constexpr, BLOCK: tl.constexpr):
    """This program's lanes (row, unit), the currents' row width, and the per-lane starting
    state, starting level, step alpha, 1 - epsilon and the biases of candidate and threshold."""
    lane = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = lane < lanes
    row, unit = lane // hidden, lane % hidden
    width = (1 + (0 if FIXED else 1) + (1 if PER_STEP else 0)) * hidden
    start = tl.load(h0 + lane, mask=mask, other=0.0)
    start_level = tl.load(l0 + lane, mask=mask, other=0.0)
    spacing = tl.load(alpha + unit, mask=mask, other=0.0)
    hold = 1.0 - tl.load(epsilon + unit, mask=mask, other=0.0)
    candidate_bias = tl.load(bias + unit, mask=mask, other=0.0)
    bound_bias = tl.zeros_like(start)
    if not FIXED:
        bound_bias = tl.load(bias + hidden + unit, mask=mask, other=0.0)
    return lane, mask, row, unit, width, start, start_level, spacing, hold, candidate_bias, bound_bias


@triton.jit
def _forward_kernel(
    currents, bias, h0, l0, alpha, epsilon, threshold, steps_, h, events, levels, gates,
    steps, lanes, hidden,
    FIXED: tl.constexpr, PER_STEP: tl.constexpr, RECORD_EVENTS: tl.constexpr,
    RECORD_LEVELS: tl.constexpr, RECORD_GATES: tl.constexpr, BLOCK: tl.constexpr,
):
    lane, mask, row, unit, width, start, start_level, spacing, hold, candidate_bias, bound_bias = (
        _lane_setup(bias, h0, l0, alpha, epsilon, lanes, hidden, FIXED, PER_STEP, BLOCK))
    level = tl.zeros_like(start)
    carry = tl.zeros_like(start) + 1.0
    total = tl.zeros_like(start)
    if FIXED:
        bound = tl.load(threshold + unit, mask=mask, other=0.0)
    for t in range(steps):
        offset = t * (lanes // hidden) * width + row * width + unit
        at = currents + offset
        candidate = tl.load(at, mask=mask, other=0.0) + candidate_bias
        if not FIXED:
            bound = tl.load(at + hidden, mask=mask, other=0.0) + bound_bias
        gate = tl.where(tl.abs(candidate) >= tl.abs(bound), 1.0, 0.0).to(start.dtype)
        event = tl.where(candidate >= 0.0, gate, -gate)
        decay = 1.0 - gate * hold
        level = decay * level + event
        carry = carry * decay
        out = t * lanes + lane
        if PER_STEP:
            total = decay * total + tl.load(steps_ + out, mask=mask, other=0.0) * event
            tl.store(h + out, total + carry * start, mask=mask)
        else:
            tl.store(h + out, spacing * level + carry * start, mask=mask)
        if RECORD_EVENTS:
            tl.store(events + out, event, mask=mask)
        if RECORD_LEVELS:
            tl.store(levels + out, level + carry * start_level, mask=mask)
        if RECORD_GATES:
            tl.store(gates + out, gate, mask=mask)


@triton.jit
def _backward_kernel(
    currents, bias, h0, l0, alpha, epsilon, threshold, steps_, step_slopes, h, levels,
    grad_h, grad_events, grad_levels, grad_gates,
    grad_currents, grad_h0, grad_l0, grad_sums,
    steps, lanes, hidden, slope, pi_slope,
    HAS_H: tl.constexpr, HAS_EVENTS: tl.constexpr, HAS_LEVELS: tl.constexpr,
    HAS_GATES: tl.constexpr, FIXED: tl.constexpr, PER_STEP: tl.constexpr,
    DECAYS: tl.constexpr, BLOCK: tl.constexpr,
):
    lane, mask, row, unit, width, start, start_level, spacing, hold, candidate_bias, bound_bias = (
        _lane_setup(bias, h0, l0, alpha, epsilon, lanes, hidden, FIXED, PER_STEP, BLOCK))
    carried = tl.zeros_like(start)  # G_{t+1} a_{t+1}
    carried_level = tl.zeros_like(start)
    sum_alpha = tl.zeros_like(start)
    sum_epsilon = tl.zeros_like(start)
    sum_threshold = tl.zeros_like(start)
    sum_candidate = tl.zeros_like(start)  # dL/dbias of the three blocks
    sum_bound = tl.zeros_like(start)
    sum_raw = tl.zeros_like(start)
    if FIXED:
        bound = tl.load(threshold + unit, mask=mask, other=0.0)
    for k in range(steps):
        t = steps - 1 - k
        offset = t * (lanes // hidden) * width + row * width + unit
        at = currents + offset
        out = t * lanes + lane
        total = tl.zeros_like(start)
        total_level = tl.zeros_like(start)
        if HAS_H:
            total = carried + tl.load(grad_h + out, mask=mask, other=0.0)
        if HAS_LEVELS:
            total_level = carried_level + tl.load(grad_levels + out, mask=mask, other=0.0)
        candidate = tl.load(at, mask=mask, other=0.0) + candidate_bias
        if not FIXED:
            bound = tl.load(at + hidden, mask=mask, other=0.0) + bound_bias
        direction = tl.where(candidate >= 0.0, 1.0, -1.0).to(start.dtype)
        margin = tl.abs(candidate) - tl.abs(bound)
        gate = tl.where(margin >= 0.0, 1.0, 0.0).to(start.dtype)
        if PER_STEP:
            step = tl.load(steps_ + out, mask=mask, other=0.0)
            step_slope = tl.load(step_slopes + out, mask=mask, other=0.0)
            grad_raw = gate * direction * total * step_slope
            tl.store(grad_currents + offset + width - hidden, grad_raw, mask=mask)
            sum_raw += grad_raw
        else:
            step = spacing
        grad_event = step * total + total_level
        if HAS_EVENTS:
            grad_event += tl.load(grad_events + out, mask=mask, other=0.0)
        grad_decay = tl.zeros_like(start)
        if DECAYS:
            previous = tl.load(h + out - lanes, mask=mask & (t > 0), other=0.0)
            previous = tl.where(t > 0, previous, start)
            grad_decay = total * previous
            if HAS_LEVELS:
                previous_level = tl.load(levels + out - lanes, mask=mask & (t > 0), other=0.0)
                previous_level = tl.where(t > 0, previous_level, start_level)
                grad_decay += total_level * previous_level
        sum_alpha += gate * direction * total
        sum_epsilon += gate * grad_decay
        grad_gate = grad_event * direction - hold * grad_decay
        if HAS_GATES:
            grad_gate += tl.load(grad_gates + out, mask=mask, other=0.0)
        bend = pi_slope * margin
        grad_gate = grad_gate * (slope / (1.0 + bend * bend))
        bend = pi_slope * candidate
        grad_candidate = grad_gate * direction + 2.0 * grad_event * gate * (slope / (1.0 + bend * bend))
        tl.store(grad_currents + offset, grad_candidate, mask=mask)
        sum_candidate += grad_candidate
        grad_bound = tl.where(bound >= 0.0, -grad_gate, grad_gate)
        if FIXED:
            sum_threshold += grad_bound
        else:
            tl.store(grad_currents + offset + hidden, grad_bound, mask=mask)
            sum_bound += grad_bound
        keep = 1.0 - gate * hold
        carried = keep * total
        carried_level = keep * total_level
    tl.store(grad_h0 + lane, carried, mask=mask)
    tl.store(grad_l0 + lane, carried_level, mask=mask)
    sums = grad_sums + row * (3 * hidden + width) + unit  # [alpha | epsilon | threshold | bias]
    tl.store(sums, sum_alpha, mask=mask)
    tl.store(sums + hidden, sum_epsilon, mask=mask)
    tl.store(sums + 2 * hidden, sum_threshold, mask=mask)
    tl.store(sums + 3 * hidden, sum_candidate, mask=mask)
    if not FIXED:
        tl.store(sums + 4 * hidden, sum_bound, mask=mask)
    if PER_STEP:
        tl.store(sums + 2 * hidden + width, sum_raw, mask=mask)


def _grid(lanes: int) -> tuple[int]:
    return (triton.cdiv(lanes, BLOCK),)


def forward(currents, bias, h0, l0, alpha, epsilon, threshold, steps, flags, h, events, levels,
            gates) -> None:
    """Launch :func:`_forward_kernel` (outputs written in place; None: not recorded)."""
    lanes = h0.numel()
    if lanes == 0 or h.shape[0] == 0:
        return
    _forward_kernel[_grid(lanes)](
        currents, bias, h0, l0, alpha, epsilon, threshold, steps, h,
        h if events is None else events, h if levels is None else levels, h if gates is None else gates,
        h.shape[0], lanes, h0.shape[1],
        FIXED=flags.fixed_threshold, PER_STEP=flags.per_step, RECORD_EVENTS=events is not None,
        RECORD_LEVELS=levels is not None, RECORD_GATES=gates is not None, BLOCK=BLOCK,
    )


def backward(currents, bias, h0, l0, alpha, epsilon, threshold, steps, step_slopes, h, levels, grad_h,
             grad_events, grad_levels, grad_gates, flags, slope, grad_currents, grad_h0, grad_l0,
             grad_sums) -> None:
    """Launch :func:`_backward_kernel` (None gradients: not reaching the loss)."""
    lanes = h0.numel()
    if lanes == 0 or h.shape[0] == 0:
        grad_currents.zero_()
        return
    _backward_kernel[_grid(lanes)](
        currents, bias, h0, l0, alpha, epsilon, threshold, steps, step_slopes, h,
        h if levels is None else levels,
        *(h if g is None else g for g in (grad_h, grad_events, grad_levels, grad_gates)),
        grad_currents, grad_h0, grad_l0, grad_sums,
        h.shape[0], lanes, h0.shape[1], float(slope), float(math.pi * slope),
        HAS_H=grad_h is not None, HAS_EVENTS=grad_events is not None,
        HAS_LEVELS=grad_levels is not None, HAS_GATES=grad_gates is not None,
        FIXED=flags.fixed_threshold, PER_STEP=flags.per_step, DECAYS=flags.decays, BLOCK=BLOCK,
    )
