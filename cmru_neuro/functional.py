"""The memory-unit math, pure functions only: every front-end calls (or mirrors) this file.

One update family with a knob ``epsilon`` (BMRU: 0, CMRU: 1)::

    z_t = H(|c_t| - |beta_t|)                      gate, 1 = update
    e_t = z_t * sign(c_t)                          event in {-1, 0, +1}
    a_t = 1 - z_t * (1 - epsilon)                  decay of the old state
    h_t = a_t * h_{t-1} + step_t * e_t             state (step_t = alpha, or alpha_t for alpha-CMRU)
    L_t = a_t * L_{t-1} + e_t,  L_0 = 0            integer level (exact for epsilon in {0, 1})

With a constant step, ``h_t = alpha * L_t + A_t * h_0`` where ``A_t = prod_k a_k``; for CMRU
``A_t = 1`` so the state stays on the lattice ``h_0 + alpha * Z``.

Shapes: sequences are time-first ``(T, B, H)``; per-step tensors ``(B, H)``; per-unit
parameters ``(H,)``. Currents (candidate ``c``, threshold ``beta``) are in the units of the
state (dimensionless, or amperes in the analog reading).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, NamedTuple, Optional, Union

import torch
from torch import Tensor, nn

Surrogate = Callable[[Tensor], Tensor]
Epsilon = Union[float, Tensor]


# --------------------------------------------------------------------------------------
# Heaviside and sign with a surrogate gradient
# --------------------------------------------------------------------------------------


class _ArctanHeaviside(torch.autograd.Function):
    """H(x) = 1[x >= 0]; backward slope / (1 + (pi * slope * x)^2)."""

    @staticmethod
    def forward(ctx, x: Tensor, slope: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad * arctan_derivative(x, ctx.slope), None


def arctan_derivative(x: Tensor, slope: float = 1.0) -> Tensor:
    """The arctan surrogate's derivative ``slope / (1 + (pi * slope * x)^2)``."""
    derivative = (x * (math.pi * slope)).square_().add_(1.0).reciprocal_()
    return derivative if slope == 1.0 else derivative.mul_(slope)


class ArctanSurrogate:
    """Default surrogate: forward ``1[x >= 0]``, backward ``slope / (1 + (pi slope x)^2)``.

    The same family as ``snntorch.surrogate.atan(alpha=2 * slope)``.
    """

    def __init__(self, slope: float = 1.0):
        if not slope > 0:
            raise ValueError(f"slope: expected a positive number, got {slope!r}")
        self.slope = float(slope)

    def __call__(self, x: Tensor) -> Tensor:
        return _ArctanHeaviside.apply(x, self.slope)

    def __repr__(self) -> str:
        return f"ArctanSurrogate(slope={self.slope})"


def atan(slope: float = 1.0) -> ArctanSurrogate:
    """The default surrogate, snnTorch-style factory."""
    return ArctanSurrogate(slope)


def heaviside(x: Tensor, surrogate: Optional[Surrogate] = None) -> Tensor:
    """``1[x >= 0]`` with the surrogate's gradient.

    ``surrogate`` is any snnTorch-style callable mapping ``x`` to spikes (for instance
    ``snntorch.surrogate.fast_sigmoid()``). Only its gradient is used: the forward value is
    always exactly ``1[x >= 0]`` (snnTorch's own forward uses ``x > 0``).
    """
    if surrogate is None or isinstance(surrogate, ArctanSurrogate):
        return (surrogate or _DEFAULT_SURROGATE)(x)
    spikes = surrogate(x)
    return spikes + ((x >= 0).to(x.dtype) - spikes).detach()


def sign(x: Tensor, surrogate: Optional[Surrogate] = None) -> Tensor:
    """``2 H(x) - 1`` in {-1, +1} (sign(0) = +1) with twice the surrogate's gradient."""
    return 2.0 * heaviside(x, surrogate) - 1.0


_DEFAULT_SURROGATE = ArctanSurrogate(1.0)


def _sign_values(x: Tensor) -> Tensor:
    """``+1`` where ``x >= 0`` (``-0.0`` included), else ``-1``; ``x`` finite.

    Same values as ``torch.where(x >= 0, 1.0, -1.0)`` without comparison or ``where``
    kernels, which are several times slower on CPU (they dominated the eager step).
    """
    return torch.ones_like(x).copysign_(x + 0.0)


def _gate_forward(candidate: Tensor, threshold: Tensor) -> tuple[Tensor, Tensor]:
    """``z = 1[|c| >= |beta|]`` and ``e = z * sign(c)`` (sign(0) = +1).

    ``|c| - |beta|`` has the sign of ``|c| >= |beta|`` for finite floats.
    """
    gate = _sign_values(candidate.abs() - threshold.abs()).add_(1.0).mul_(0.5)
    return gate, gate * _sign_values(candidate)


def _gate_backward(
    candidate: Tensor,
    threshold: Tensor,
    grad_gate: Optional[Tensor],
    grad_events: Tensor,
    slope: float,
) -> tuple[Tensor, Tensor]:
    """Arctan-surrogate gradients of :func:`_gate_forward` w.r.t. ``c`` and ``beta``.

    ``e = z * d``: the gate sees ``grad_gate + grad_events * d``, the direction
    ``d = sign(c)`` sees ``grad_events * z`` and has twice the Heaviside's surrogate.
    ``grad_gate`` is None when the gate itself was not used (the usual CMRU case).
    """
    direction = _sign_values(candidate)
    margin = candidate.abs() - threshold.abs()
    gate = _sign_values(margin).add_(1.0).mul_(0.5)
    grad_z = grad_events * direction
    if grad_gate is not None:
        grad_z = grad_z + grad_gate
    grad_z = grad_z * arctan_derivative(margin, slope)
    grad_candidate = grad_z * direction + 2.0 * (grad_events * gate) * arctan_derivative(candidate, slope)
    return grad_candidate, -grad_z * _sign_values(threshold)


class _Kernels:
    """The gate's forward and backward of the composed path
    (:func:`cmru_neuro.kernels.use_compiled_kernels` swaps in compiled ones)."""

    forward = staticmethod(_gate_forward)
    backward = staticmethod(_gate_backward)


class _ArctanGate(torch.autograd.Function):
    """Fused ``z = H(|c| - |beta|)`` and ``e = z * sign(c)`` with the arctan surrogate.

    Same values and gradients as composing :func:`heaviside` and :func:`sign`, with one
    autograd node instead of eight (the training hot path).
    """

    @staticmethod
    def forward(ctx, candidate: Tensor, threshold: Tensor, slope: float):
        ctx.save_for_backward(candidate, threshold)
        ctx.slope = slope
        ctx.set_materialize_grads(False)  # no zero-filled gradient for an unused output
        return _Kernels.forward(candidate, threshold)

    @staticmethod
    def backward(ctx, grad_gate: Optional[Tensor], grad_events: Optional[Tensor]):
        candidate, threshold = ctx.saved_tensors
        if grad_events is None:
            if grad_gate is None:
                return None, None, None
            grad_events = torch.zeros_like(grad_gate)
        grad_candidate, grad_threshold = _Kernels.backward(
            candidate, threshold.expand_as(candidate), grad_gate, grad_events, ctx.slope
        )
        return grad_candidate, _sum_to(grad_threshold, threshold.shape), None


def _sum_to(grad: Tensor, shape: torch.Size) -> Tensor:
    """Reduce a broadcast gradient back to ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.dim() - len(shape)
    grad = grad.sum(dim=tuple(range(lead))) if lead > 0 else grad
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(dim=dims, keepdim=True) if dims else grad


# --------------------------------------------------------------------------------------
# Gates, events and decay: what distinguishes the units
# --------------------------------------------------------------------------------------


class Update(NamedTuple):
    """What one or many steps do to the state; all tensors share a shape.

    gate:   z in {0, 1}, 1 where the unit updates.
    events: e, the update's additive term (``h_t = a_t h_{t-1} + step * e_t``): the signed gate
            z sign(c) in {-1, 0, +1} for the epsilon family, the set signal in {0, 1} for the
            first-quadrant latch. What the spiking front-ends emit as spikes. Not the level
            change ``L_t - L_{t-1}`` (the two agree for CMRU only).
    decay:  a, the factor on the old state (1 for CMRU, 1 - z for BMRU).
    """

    gate: Tensor
    events: Tensor
    decay: Tensor


def hysteresis_update(
    candidate: Tensor,
    threshold: Tensor,
    epsilon: Epsilon = 1.0,
    surrogate: Optional[Surrogate] = None,
) -> Update:
    """The epsilon family: update where ``|c| >= |beta|``, towards ``sign(c)``.

    ``candidate`` (..., H); ``threshold`` broadcastable to it (per-step ``(..., H)`` or a
    per-unit ``(H,)`` half-width of the hysteresis band).
    """
    if surrogate is None or isinstance(surrogate, ArctanSurrogate):
        slope = (surrogate or _DEFAULT_SURROGATE).slope
        gate, events = _ArctanGate.apply(candidate, threshold, slope)
    else:
        gate = heaviside(candidate.abs() - threshold.abs(), surrogate)
        events = gate * sign(candidate, surrogate)
    if isinstance(epsilon, (int, float)) and epsilon == 1:
        decay = torch.ones((), dtype=gate.dtype, device=gate.device).expand_as(gate)
    else:
        decay = 1.0 - gate * (1.0 - epsilon)
    return Update(gate, events, decay)


def split_currents(
    currents: Tensor, threshold: Optional[Tensor], step_from_input: bool
) -> tuple[Tensor, Tensor, Optional[Tensor]]:
    """Split projected currents ``(..., k H)`` into ``(candidate, threshold, step)``.

    Layout along the last axis: ``[candidate | threshold | raw step]``; the threshold block is
    there only when ``threshold`` is None (threshold from the input), the step block only
    with ``step_from_input`` (alpha-CMRU: ``step = softplus(raw)``, else None).
    """
    streams = 1 + int(threshold is None) + int(step_from_input)
    parts = currents.chunk(streams, dim=-1)
    step_size = torch.nn.functional.softplus(parts[-1]) if step_from_input else None
    return parts[0], parts[1] if threshold is None else threshold, step_size


def first_quadrant_update(
    current: Tensor, low: Tensor, high: Tensor, surrogate: Optional[Surrogate] = None,
    epsilon: Epsilon = 0.0,
) -> Update:
    """First-quadrant BMRU (the analog circuit's form); states {0, alpha} at epsilon = 0.

    ``current`` = ReLU(W x + b) >= 0; set where ``current >= high``, reset where
    ``current < low`` (strict, as the circuit paper trains it), hold in between
    (``low < high``, per unit). ``epsilon`` relaxes it for annealing (this project's
    reading): ``s_t = a_t s_{t-1} + b_t`` with ``a = 1 - (1 - eps) z``, ``b = set - eps reset``,
    so epsilon = 1 counts sets up and resets down, epsilon = 0 is the latch.
    """
    set_ = heaviside(current - high, surrogate)
    reset = (1.0 - heaviside(current - low, surrogate)) * (1.0 - set_)
    gate = set_ + reset
    if isinstance(epsilon, (int, float)) and epsilon == 0:
        return Update(gate, set_, (1.0 - reset) * (1.0 - set_))
    return Update(gate, set_ - epsilon * reset, 1.0 - (1.0 - epsilon) * gate)


# --------------------------------------------------------------------------------------
# The state update: one step, a step loop, and the parallel scan
# --------------------------------------------------------------------------------------


class MemoryState(NamedTuple):
    """State of a layer of memory units, each ``(B, H)``.

    h:     the state (h_t, what the layer outputs).
    level: integer level L_t relative to the initial state (exact for epsilon in {0, 1}).
    """

    h: Tensor
    level: Tensor


def step(update: Update, state: MemoryState, step_size: Tensor) -> MemoryState:
    """One time step: ``h = a h + step * e``, ``L = a L + e``. ``step_size``: (H,) or (B, H)."""
    return MemoryState(
        h=advance(update, state.h, step_size),
        level=update.decay * state.level + update.events,
    )


def advance(update: Update, h: Tensor, step_size: Tensor) -> Tensor:
    """The state alone, one time step: ``h = a h + step * e`` (streaming without levels)."""
    return update.decay * h + step_size * update.events


def scan_sequential(
    update: Update, h0: Tensor, step_size: Tensor
) -> tuple[Tensor, Tensor]:
    """Step loop over time-first ``(T, B, H)`` updates. Returns ``(h, levels)``, each (T, B, H).

    ``step_size`` is per unit ``(H,)`` or per step ``(T, B, H)``.
    """
    state = MemoryState(h0, torch.zeros_like(h0))
    hs, levels = [], []
    per_step = step_size.dim() == update.events.dim()
    for t in range(update.events.shape[0]):
        state = step(
            Update(update.gate[t], update.events[t], update.decay[t]),
            state,
            step_size[t] if per_step else step_size,
        )
        hs.append(state.h)
        levels.append(state.level)
    if not hs:  # T = 0
        return h0.new_empty(0, *h0.shape), h0.new_empty(0, *h0.shape)
    return torch.stack(hs), torch.stack(levels)


def scan_parallel(
    update: Update, h0: Tensor, step_size: Tensor, cumulative: bool
) -> tuple[Tensor, Tensor]:
    """The same as :func:`scan_sequential`, in parallel over time.

    ``cumulative=True`` (epsilon = 1, every decay is 1): a prefix sum. Otherwise an
    associative scan of ``(a, b)`` pairs. Levels are exact; ``h`` agrees to float rounding.
    """
    per_step = step_size.dim() == update.events.dim()
    if cumulative:
        levels = prefix_sum(update.events)
        if per_step:
            return h0 + prefix_sum(step_size * update.events), levels
        return torch.addcmul(h0, step_size, levels), levels
    levels, carry = linear_scan(update.decay, update.events)
    if per_step:
        h, _ = linear_scan(update.decay, step_size * update.events)
        return h + carry * h0, levels
    return step_size * levels + carry * h0, levels


RECORDABLE = ("events", "levels", "gates")
MODES = ("parallel", "sequential")


class SequenceResult(NamedTuple):
    """What :func:`memory_sequence` returns, each ``(T, B, ..., H)``; None where not recorded.

    states: h_t.  events: e_t = z_t sign(c_t).  levels: L_t (from ``initial_level``, default
    0).  gates: z_t.
    """

    states: Tensor
    events: Optional[Tensor] = None
    levels: Optional[Tensor] = None
    gates: Optional[Tensor] = None


def memory_sequence(
    currents: Tensor,
    threshold: Optional[Tensor],
    h0: Tensor,
    step_size: Optional[Tensor] = None,
    epsilon: Epsilon = 1.0,
    surrogate: Optional[Surrogate] = None,
    *,
    bias: Optional[Tensor] = None,
    initial_level: Optional[Tensor] = None,
    record: Iterable[str] = (),
    mode: str = "parallel",
) -> SequenceResult:
    """A memory-unit sequence of the epsilon family straight from its projected currents:
    the one entry point of every front-end (layers, snnTorch and Norse neurons, networks).

    ``currents`` ``(T, B, ..., k H)`` are ``[candidate | threshold | raw step]`` along the last
    axis: the threshold block only when ``threshold`` is None (else ``threshold`` is a
    per-unit ``(H,)`` or 0-d half-width), the raw-step block only when ``step_size`` is None
    (alpha-CMRU: ``alpha_t = softplus(raw)``; else ``step_size`` is the per-unit ``(H,)`` or
    0-d alpha). ``bias`` ``(k H,)``: added to the currents first (a projection's bias: the
    fused kernels add it, and sum its gradient, in their own passes). ``h0`` and
    ``initial_level`` ``(B, ..., H)``; ``epsilon`` a float or ``(H,)``.
    ``record``: any of :data:`RECORDABLE`, computed in the same pass as the states.
    ``mode``: ``"parallel"`` (prefix sum / associative scan) or ``"sequential"`` (the step loop).

    The same as :func:`split_currents`, :func:`hysteresis_update` and :func:`scan_parallel`
    (or :func:`scan_sequential`); in parallel mode with the arctan surrogate a fused kernel of
    :mod:`cmru_neuro.kernels` computes it where one covers the device and dtype (two passes
    over memory instead of a dozen).
    """
    record = frozenset(record)
    if not record <= set(RECORDABLE):
        raise ValueError(f"record: expected any of {', '.join(RECORDABLE)}, got {sorted(record)}")
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(map(repr, MODES))}, got {mode!r}")
    surrogate = surrogate or _DEFAULT_SURROGATE
    slope = surrogate.slope if isinstance(surrogate, ArctanSurrogate) else None
    cumulative = isinstance(epsilon, (int, float)) and epsilon == 1
    if mode == "parallel":
        from . import kernels  # the backend choice lives with the kernels

        fused = kernels.backend(currents, slope)
        if fused is not None:
            return SequenceResult(*kernels.run(
                fused, currents, threshold, h0, step_size, epsilon, slope, initial_level, record,
                cumulative, bias,
            ))
    if bias is not None:
        currents = currents + bias
    candidate, threshold, step_from_input = split_currents(currents, threshold, step_size is None)
    update = hysteresis_update(candidate, threshold, epsilon, surrogate)
    step_size = step_from_input if step_size is None else step_size

    def scan(start: Tensor, size: Tensor) -> tuple[Tensor, Tensor]:
        if mode == "parallel":
            return scan_parallel(update, start, size, cumulative=cumulative)
        return scan_sequential(update, start, size)

    h, levels = scan(h0, step_size)
    if initial_level is not None and "levels" in record:
        levels = scan(initial_level, torch.ones((), dtype=h.dtype, device=h.device))[0]
    return SequenceResult(
        h,
        update.events if "events" in record else None,
        levels if "levels" in record else None,
        update.gate if "gates" in record else None,
    )


def prefix_sum(x: Tensor, block: int = 32) -> Tensor:
    """``torch.cumsum(x, dim=0)``, blocked: a triangular matmul inside blocks of ``block``
    steps, a short cumsum across blocks.

    About 10x faster than ``torch.cumsum`` along time on CPU, and exact for integer-valued
    ``x`` (every partial sum is an integer below 2^24).
    """
    length = x.shape[0]
    if length <= block:
        return torch.cumsum(x, dim=0)
    n_blocks = -(-length // block)
    flat = x.reshape(length, -1)
    if n_blocks * block != length:
        flat = nn.functional.pad(flat, (0, 0, 0, n_blocks * block - length))
    lower = torch.ones(block, block, dtype=x.dtype, device=x.device).tril_()
    within = torch.matmul(lower, flat.view(n_blocks, block, -1))  # (n_blocks, block, N)
    totals = within[:, -1]
    before = torch.cumsum(totals, dim=0) - totals  # sum of all earlier blocks
    return (within + before.unsqueeze(1)).view(n_blocks * block, -1)[:length].view_as(x)


def linear_scan(decay: Tensor, increment: Tensor) -> tuple[Tensor, Tensor]:
    """Solve ``x_t = a_t x_{t-1} + b_t`` with ``x_{-1} = 0`` along dim 0, in parallel.

    Returns ``(x, A)`` with ``A_t = prod_{k<=t} a_k`` (the weight of an initial state:
    ``x_t + A_t x_init`` solves the recurrence from ``x_init``). Hillis-Steele doubling with
    the associative operator ``(a_i, b_i) . (a_j, b_j) = (a_i a_j, a_j b_i + b_j)``:
    ``ceil(log2 T)`` vectorized rounds, differentiable, real or complex.
    """
    a, b = decay, increment
    shift = 1
    length = a.shape[0]
    while shift < length:
        a_prev = torch.cat([torch.ones_like(a[:shift]), a[:-shift]])
        b_prev = torch.cat([torch.zeros_like(b[:shift]), b[:-shift]])
        b = a * b_prev + b
        a = a * a_prev
        shift *= 2
    return b, a


# The switches live with the kernels; re-exported here where users have always found them.
from .kernels import use_compiled_kernels, use_fused_kernels  # noqa: E402, F401
