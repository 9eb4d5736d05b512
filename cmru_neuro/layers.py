"""Sequence layers of memory units with the interface of ``torch.nn.GRU``.

``layer(x, h0=None) -> (outputs, h_last)``; outputs ``(T, B, H)`` (``(B, T, H)`` with
``batch_first``), ``h_last`` ``(B, H)``; unbatched ``(T, F)`` input gives ``(T, H)``, ``(H,)``.
``layer.step(x_t, h)`` advances one step for streaming. All math lives in
:mod:`cmru_neuro.functional`.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from . import functional as F
from ._checks import (
    check_choice,
    check_positive_int,
    check_sequence,
    check_shape,
    check_state,
    check_tensor,
)

MODES = ("parallel", "sequential")
THRESHOLDS = ("input", "fixed")


class MemoryTrace(NamedTuple):
    """Per-step internals, time-first ``(T, B, H)`` (or batch-first like the outputs).

    gates:  z in {0, 1}: 1 where a unit updated.
    events: e = z * sign(c) in {-1, 0, +1}: the state changes a unit sends downstream.
    levels: integer level L_t: h_t = alpha * L_t + A_t * h_0 (A_t = 1 for CMRU).
    """

    gates: Tensor
    events: Tensor
    levels: Tensor


class Currents(NamedTuple):
    """What the input projection produces for the unit, each ``(..., H)``.

    candidate: c, the target current; threshold: beta (half-width of the hysteresis band);
    step: alpha_t for alpha-CMRU, else None (the per-unit alpha is used).
    """

    candidate: Tensor
    threshold: Tensor
    step: Optional[Tensor]


class MemoryUnit(nn.Module):
    r"""A layer of memory units of the epsilon family (BMRU at 0, CMRU at 1).

    Args:
        input_size: features F of the input.
        hidden_size: units H.
        epsilon: the family knob in [0, 1]; a float you may change between steps (see
            :class:`cmru_neuro.EpsilonSchedule`), or learnable with ``learn_epsilon``.
        batch_first: input and output are ``(B, T, .)``.
        threshold: ``"input"`` (paper form: beta_t = W_b x_t + b_b, bias init
            ``threshold_bias``) or ``"fixed"`` (a learned per-unit half-width, init
            ``threshold_bias``).
        mode: ``"parallel"`` (default; prefix sum or associative scan) or ``"sequential"``.
        surrogate: gradient of the Heaviside; ``None`` = arctan; any snnTorch surrogate.
        learn_initial_state: learned s_0 (random +-1 at init); else h_0 = 0.
        bias: bias in the input projection.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        epsilon: float = 1.0,
        learn_epsilon: bool = False,
        batch_first: bool = False,
        threshold: str = "input",
        threshold_bias: float = 1.0,
        mode: str = "parallel",
        surrogate: Optional[F.Surrogate] = None,
        learn_initial_state: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.batch_first = bool(batch_first)
        self.threshold_mode = check_choice(threshold, "threshold", THRESHOLDS)
        self.mode = check_choice(mode, "mode", MODES)
        self.surrogate = surrogate
        self._epsilon = None
        if learn_epsilon:
            self.raw_epsilon = nn.Parameter(torch.full((hidden_size,), float(epsilon), **factory))
        else:
            self.epsilon = epsilon
        streams = self._streams()
        self.projection = nn.Linear(input_size, streams * hidden_size, bias=bias, **factory)
        self.alpha = nn.Parameter(torch.ones(hidden_size, **factory))
        self._add_thresholds(threshold_bias)
        initial = torch.zeros(hidden_size, **factory)
        if learn_initial_state:
            self.initial_level = nn.Parameter(self._initial_level(initial))
        else:
            self.register_buffer("initial_level", initial)
        self._init_bias(threshold_bias)

    # -- configuration -----------------------------------------------------------------

    input_step = False  # alpha-CMRU: the step size comes from the input

    def _streams(self) -> int:
        """How many H-wide currents the projection produces."""
        return (2 if self.threshold_mode == "input" else 1) + int(self.input_step)

    def _add_thresholds(self, threshold_bias: float) -> None:
        """Learned per-unit thresholds, if any (``threshold="fixed"``: the half-width)."""
        if self.threshold_mode == "fixed":
            self.threshold = nn.Parameter(torch.full_like(self.alpha, float(threshold_bias)))

    def _initial_level(self, zeros: Tensor) -> Tensor:
        return torch.randint(0, 2, zeros.shape, device=zeros.device).to(zeros.dtype) * 2 - 1

    def _init_bias(self, threshold_bias: float) -> None:
        if self.threshold_mode == "input" and self.projection.bias is not None:
            with torch.no_grad():
                self.projection.bias[self.hidden_size : 2 * self.hidden_size].fill_(threshold_bias)

    @property
    def epsilon(self):
        """The family knob: a float, or a clamped ``(H,)`` tensor when learnable."""
        if self._epsilon is None:
            return self.raw_epsilon.clamp(0.0, 1.0)
        return self._epsilon

    @epsilon.setter
    def epsilon(self, value: float) -> None:
        if hasattr(self, "raw_epsilon"):
            with torch.no_grad():
                self.raw_epsilon.fill_(float(value))
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"epsilon: expected a number in [0, 1], got {value!r}")
        self._epsilon = float(value)

    @property
    def schedulable(self) -> bool:
        """True when epsilon may be changed from outside (a plain MemoryUnit, not learned)."""
        return type(self).__init__ is MemoryUnit.__init__ and self._epsilon is not None

    @property
    def cumulative(self) -> bool:
        """True when the update is a pure running sum (epsilon exactly 1, not learned)."""
        return self._epsilon == 1.0

    @property
    def _hysteresis(self) -> bool:
        """True when the update is :func:`~cmru_neuro.functional.hysteresis_update` with the
        per-unit alpha: what :func:`~cmru_neuro.functional.hysteresis_scan` covers."""
        return not self.input_step and type(self).update is MemoryUnit.update

    @property
    def _fixed_threshold(self) -> Optional[Tensor]:
        """The per-unit threshold, or None when it comes from the input."""
        return None if self.threshold_mode == "input" else self.threshold

    # -- the data path -----------------------------------------------------------------

    def currents(self, x: Tensor) -> Currents:
        """Project input ``(..., F)`` to the unit's currents ``(..., H)``."""
        currents = self.projection(x)
        return Currents(*F.split_currents(currents, self._fixed_threshold, self.input_step))

    def update(self, currents: Currents) -> F.Update:
        """Gate, events and decay from the currents."""
        return F.hysteresis_update(
            currents.candidate, currents.threshold, self.epsilon, self.surrogate
        )

    def initial_state(self, batch: int) -> Tensor:
        """h_0 = alpha * s_0, ``(B, H)``."""
        return (self.alpha * self.initial_level).expand(batch, self.hidden_size)

    def _step_size(self, currents: Currents) -> Tensor:
        return self.alpha if currents.step is None else currents.step

    def forward(
        self,
        x: Tensor,
        h0: Optional[Tensor] = None,
        *,
        mode: Optional[str] = None,
        return_trace: bool = False,
    ):
        """Run a whole sequence.

        Returns ``(outputs, h_last)``, plus a :class:`MemoryTrace` with ``return_trace``.
        ``mode`` overrides the layer's evaluation for this call.
        """
        mode = self.mode if mode is None else check_choice(mode, "mode", MODES)
        x, batched = check_sequence(x, "x", self.input_size, self.batch_first)
        batch = x.shape[1]
        h0 = self.initial_state(batch) if h0 is None else check_state(
            h0, "h0", batch, self.hidden_size, batched
        )
        if mode == "parallel" and not return_trace and self._hysteresis:
            h = F.hysteresis_scan(
                self.projection(x), self._fixed_threshold, h0, self.alpha, self.epsilon,
                self.surrogate,
            )
        else:
            h, trace = self._scan(x, h0, mode)
        outputs, h_last = self._layout(h, batched), h[-1] if batched else h[-1].squeeze(0)
        if return_trace:
            return outputs, h_last, MemoryTrace(*(self._layout(t, batched) for t in trace))
        return outputs, h_last

    def _scan(self, x: Tensor, h0: Tensor, mode: str) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """States ``(T, B, H)`` and the trace's ``(gates, events, levels)``, time-first."""
        currents = self.currents(x)
        update = self.update(currents)
        step_size = self._step_size(currents)
        if mode == "parallel":
            h, levels = F.scan_parallel(update, h0, step_size, cumulative=self.cumulative)
        else:
            h, levels = F.scan_sequential(update, h0, step_size)
        return h, (update.gate, update.events, levels)

    def _layout(self, seq: Tensor, batched: bool) -> Tensor:
        if not batched:
            return seq.squeeze(1)
        return seq.transpose(0, 1) if self.batch_first else seq

    def step(self, x_t: Tensor, h: Optional[Tensor] = None) -> Tensor:
        """One streaming step: ``x_t`` ``(B, F)``, ``h`` ``(B, H)`` (None: h_0) -> ``h_t``."""
        x_t = check_tensor(x_t, "x_t")
        check_shape(x_t, "x_t", (None, self.input_size), "batch, features")
        h = self.initial_state(x_t.shape[0]) if h is None else check_state(
            h, "h", x_t.shape[0], self.hidden_size, True
        )
        currents = self.currents(x_t)
        update = self.update(currents)
        return F.advance(update, h, self._step_size(currents))

    def extra_repr(self) -> str:
        eps = "learned" if self._epsilon is None else self._epsilon
        return (
            f"{self.input_size}, {self.hidden_size}, epsilon={eps}, threshold={self.threshold_mode!r}, "
            f"mode={self.mode!r}, batch_first={self.batch_first}"
        )


class CMRU(MemoryUnit):
    """Cumulative memory recurrent unit (epsilon = 1): ``h_t = h_{t-1} + alpha z_t sign(c_t)``."""

    def __init__(self, input_size: int, hidden_size: int, **kwargs):
        _reject(kwargs, "epsilon", "learn_epsilon")
        super().__init__(input_size, hidden_size, epsilon=1.0, **kwargs)


class BMRU(MemoryUnit):
    """Bistable memory recurrent unit (epsilon = 0): states in {-alpha, +alpha}."""

    def __init__(self, input_size: int, hidden_size: int, **kwargs):
        _reject(kwargs, "epsilon", "learn_epsilon")
        super().__init__(input_size, hidden_size, epsilon=0.0, **kwargs)

    def initial_state(self, batch: int) -> Tensor:
        """h_0 = alpha * sign(s_0): bistable from the first step on."""
        level = F.sign(self.initial_level, self.surrogate)
        return (self.alpha * level).expand(batch, self.hidden_size)


class AlphaCMRU(MemoryUnit):
    """Relaxed CMRU: input-dependent step ``alpha_t = softplus(W_a x_t + b_a)`` (init 1).

    ``h_t = h_{t-1} + z_t alpha_t sign(c_t)``: the state leaves the lattice (this project's
    reading of the paper; see docs/architecture.md).
    """

    input_step = True

    def __init__(self, input_size: int, hidden_size: int, **kwargs):
        _reject(kwargs, "epsilon", "learn_epsilon")
        super().__init__(input_size, hidden_size, epsilon=1.0, **kwargs)
        if self.projection.bias is not None:
            with torch.no_grad():  # softplus(log(e - 1)) = 1
                self.projection.bias[-self.hidden_size :].fill_(math.log(math.e - 1.0))


class FirstQuadrantBMRU(MemoryUnit):
    """BMRU with non-negative currents (the analog circuit): states {0, alpha}.

    ``c = ReLU(W x + b)``; set where ``c >= beta_hi``, reset where ``c < beta_lo``, hold in
    between. ``beta_lo = threshold_low`` and ``beta_hi = beta_lo + softplus(width)`` are
    learned per unit (init 0.5 and 1.0), so ``beta_lo < beta_hi`` always.
    """

    def __init__(self, input_size: int, hidden_size: int, **kwargs):
        _reject(kwargs, "epsilon", "learn_epsilon", "threshold", "threshold_bias")
        super().__init__(input_size, hidden_size, epsilon=0.0, threshold="fixed", **kwargs)

    def _add_thresholds(self, threshold_bias: float) -> None:
        self.threshold_low = nn.Parameter(torch.full_like(self.alpha, 0.5))
        self.raw_width = nn.Parameter(torch.full_like(self.alpha, math.log(math.e ** 0.5 - 1.0)))

    def _initial_level(self, zeros: Tensor) -> Tensor:
        return zeros

    @property
    def threshold_high(self) -> Tensor:
        return self.threshold_low + nn.functional.softplus(self.raw_width)

    def currents(self, x: Tensor) -> Currents:
        current = torch.relu(self.projection(x))
        return Currents(current, self.threshold_high, None)

    def update(self, currents: Currents) -> F.Update:
        return F.first_quadrant_update(
            currents.candidate, self.threshold_low, currents.threshold, self.surrogate
        )


def _reject(kwargs: dict, *names: str) -> None:
    for name in names:
        if name in kwargs:
            raise TypeError(f"{name}: not an option of this unit (it is fixed by the unit's definition)")
