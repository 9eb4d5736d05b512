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
    check_dtype,
    check_positive_int,
    check_sequence,
    check_shape,
    check_state,
    check_tensor,
)

MODES = F.MODES
THRESHOLDS = ("input", "fixed")
INITS = ("reference", "pytorch")
TRACE = ("gates", "events", "levels")  # what a MemoryTrace records


class MemoryTrace(NamedTuple):
    """Per-step internals, time-first ``(T, B, H)`` (or batch-first like the outputs).

    gates:  z in {0, 1}: 1 where a unit updated.
    events: e = z * sign(c) in {-1, 0, +1} (:class:`~cmru_neuro.functional.Update`): what the
            spiking front-ends emit; its level changes are ``levels`` differenced (equal to
            the events for CMRU only: a BMRU already at +1 receiving +1 does not change).
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
        init: ``"reference"`` (the authors' recipe: LeCun-normal weights, std 1/sqrt(F),
            candidate bias 0, threshold bias ``threshold_bias``; about 37% of the gates open
            on LayerNorm'd input) or ``"pytorch"`` (``nn.Linear``'s default weights and bias,
            then the threshold bias; this project's initialisation before 0.2).

    The projection packs the candidate and threshold maps ``[W_c; W_b]`` in one Linear
    (two separate maps, one matrix product).
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
        init: str = "reference",
        device=None,
        dtype=None,
    ):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.init = check_choice(init, "init", INITS)
        self.threshold_bias = float(threshold_bias)
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
        self._add_thresholds()
        initial = torch.zeros(hidden_size, **factory)
        if learn_initial_state:
            self.initial_level = nn.Parameter(initial)
        else:
            self.register_buffer("initial_level", initial)
        self.reset_parameters()

    # -- configuration -----------------------------------------------------------------

    #: alpha-CMRU: the step size comes from the input.
    input_step = False
    #: True when ``currents()`` is the plain projection split and ``update()`` is
    #: :func:`~cmru_neuro.functional.hysteresis_update`, so a forward runs
    #: :func:`~cmru_neuro.functional.memory_sequence`. A subclass that changes either sets
    #: it False (and runs its own update through the composed scan); one that overrides
    #: them without saying is refused at class creation (never skipped silently).
    fusable = True
    #: False where the unit's definition fixes epsilon (CMRU, BMRU, alpha-CMRU): an
    #: :class:`~cmru_neuro.EpsilonSchedule` leaves such units alone.
    epsilon_settable = True
    #: Set True (e.g. by the trainer's rate penalty) to keep ``update_rate``, the mean gate
    #: of the last forward pass (a 0-d tensor with gradients).
    record_update_rate = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        overridden = [name for name in ("currents", "update") if name in vars(cls)]
        if overridden and "fusable" not in vars(cls):
            raise TypeError(
                f"{cls.__name__} overrides {' and '.join(overridden)}(): set the class attribute "
                "fusable = False (its forward then runs your update through the composed scan), "
                "or fusable = True if functional.memory_sequence still computes it"
            )

    def _streams(self) -> int:
        """How many H-wide currents the projection produces."""
        return (2 if self.threshold_mode == "input" else 1) + int(self.input_step)

    def _add_thresholds(self) -> None:
        """Learned per-unit thresholds, if any (``threshold="fixed"``: the half-width)."""
        if self.threshold_mode == "fixed":
            self.threshold = nn.Parameter(torch.empty_like(self.alpha))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Initialise every parameter as ``init`` says (see the class docstring)."""
        projection, hidden = self.projection, self.hidden_size
        if self.init == "reference":
            nn.init.normal_(projection.weight, 0.0, 1.0 / math.sqrt(self.input_size))
            if projection.bias is not None:
                projection.bias.zero_()
        else:
            projection.reset_parameters()
        if self.threshold_mode == "fixed":
            self.threshold.fill_(self.threshold_bias)
        elif projection.bias is not None:
            projection.bias[hidden : 2 * hidden].fill_(self.threshold_bias)
        self.alpha.fill_(1.0)
        if isinstance(self.initial_level, nn.Parameter):
            self.initial_level.copy_(_random_signs(self.initial_level))

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
        """True when epsilon may be changed from outside (settable and not learned)."""
        return self.epsilon_settable and self._epsilon is not None

    @property
    def cumulative(self) -> bool:
        """True when the update is a pure running sum (epsilon exactly 1, not learned)."""
        return self._epsilon == 1.0

    @property
    def _fixed_threshold(self) -> Optional[Tensor]:
        """The per-unit threshold, or None when it comes from the input."""
        return None if self.threshold_mode == "input" else self.threshold

    # -- the data path -----------------------------------------------------------------

    def currents(self, x: Tensor) -> Currents:
        """Project input ``(..., F)`` to the unit's currents ``(..., H)``."""
        currents, bias = self._project(x)
        if bias is not None:  # added after the product, as memory_sequence adds it: one rounding
            currents = currents + bias
        return Currents(*F.split_currents(currents, self._fixed_threshold, self.input_step))

    def _project(self, x: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """``(W x, b)``: the bias left to :func:`~cmru_neuro.functional.memory_sequence`,
        whose fused kernels add it without a pass of its own. Only for a plain ``nn.Linear``
        with no hooks; any other projection (pruned, weight-normed, hooked, a subclass)
        runs its own forward: ``(projection(x), None)``."""
        projection = self.projection
        if type(projection) is nn.Linear and not _has_hooks(projection):
            return nn.functional.linear(x, projection.weight), projection.bias
        return projection(x), None

    def update(self, currents: Currents) -> F.Update:
        """Gate, events and decay from the currents."""
        return F.hysteresis_update(
            currents.candidate, currents.threshold, self.epsilon, self.surrogate
        )

    def initial_state(self, batch: int) -> Tensor:
        """h_0 = alpha * s_0, ``(B, H)``."""
        return (self.alpha * self.initial_level).expand(batch, self.hidden_size)

    @property
    def level_spacing(self) -> Tensor:
        """The per-unit step alpha ``(H,)`` the state climbs by (``h = alpha * level``)."""
        return self.alpha

    def projection_weights(self) -> tuple[Tensor, Optional[Tensor]]:
        """``(weight (S*H, F), bias (S*H,) or None)`` as the forward pass applies them."""
        return self.projection.weight, self.projection.bias

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
        dtype = self.alpha.dtype
        x, batched = check_sequence(x, "x", self.input_size, self.batch_first, dtype)
        batch = x.shape[1]
        h0 = self.initial_state(batch) if h0 is None else check_state(
            h0, "h0", batch, self.hidden_size, batched, dtype
        )
        record = TRACE if return_trace else ("gates",) if self.record_update_rate else ()
        h, gates, events, levels = self._scan(x, h0, mode, record)
        if self.record_update_rate:
            self.update_rate = gates.mean()
        h_last = h[-1] if h.shape[0] else h0  # T = 0: the state is h0
        outputs, h_last = self._layout(h, batched), h_last if batched else h_last.squeeze(0)
        if return_trace:
            return outputs, h_last, MemoryTrace(*(self._layout(t, batched) for t in (gates, events, levels)))
        return outputs, h_last

    def _scan(self, x: Tensor, h0: Tensor, mode: str, record) -> tuple:
        """States, gates, events and levels ``(T, B, H)``, time-first (the last three None
        unless in ``record``; the composed update of a non-fusable unit records all)."""
        if self.fusable:
            currents, bias = self._project(x)
            result = F.memory_sequence(
                currents, self._fixed_threshold, h0,
                None if self.input_step else self.alpha, self.epsilon, self.surrogate,
                bias=bias, record=record, mode=mode,
            )
            return result.states, result.gates, result.events, result.levels
        currents = self.currents(x)
        update = self.update(currents)
        step_size = self._step_size(currents)
        if mode == "parallel":
            h, levels = F.scan_parallel(update, h0, step_size, cumulative=self.cumulative)
        else:
            h, levels = F.scan_sequential(update, h0, step_size)
        return h, update.gate, update.events, levels

    def _layout(self, seq: Tensor, batched: bool) -> Tensor:
        if not batched:
            return seq.squeeze(1)
        return seq.transpose(0, 1) if self.batch_first else seq

    def step(self, x_t: Tensor, h: Optional[Tensor] = None) -> Tensor:
        """One streaming step: ``x_t`` ``(B, F)``, ``h`` ``(B, H)`` (None: h_0) -> ``h_t``."""
        x_t = check_dtype(check_tensor(x_t, "x_t"), "x_t", self.alpha.dtype)
        check_shape(x_t, "x_t", (None, self.input_size), "batch, features")
        h = self.initial_state(x_t.shape[0]) if h is None else check_state(
            h, "h", x_t.shape[0], self.hidden_size, True, self.alpha.dtype
        )
        currents = self.currents(x_t)
        update = self.update(currents)
        return F.advance(update, h, self._step_size(currents))

    def extra_repr(self) -> str:
        eps = "learned" if self._epsilon is None else self._epsilon
        return (
            f"{self.input_size}, {self.hidden_size}, epsilon={eps}, threshold={self.threshold_mode!r}, "
            f"init={self.init!r}, mode={self.mode!r}, batch_first={self.batch_first}"
        )


class CMRU(MemoryUnit):
    """Cumulative memory recurrent unit (epsilon = 1): ``h_t = h_{t-1} + alpha z_t sign(c_t)``."""

    epsilon_settable = False

    def __init__(self, input_size: int, hidden_size: int, **kwargs):
        _reject(kwargs, "epsilon", "learn_epsilon")
        super().__init__(input_size, hidden_size, epsilon=1.0, **kwargs)


class BMRU(MemoryUnit):
    """Bistable memory recurrent unit (epsilon = 0): states in {-alpha, +alpha}."""

    epsilon_settable = False

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
    epsilon_settable = False

    def __init__(self, input_size: int, hidden_size: int, **kwargs):
        _reject(kwargs, "epsilon", "learn_epsilon")
        super().__init__(input_size, hidden_size, epsilon=1.0, **kwargs)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.projection.bias is not None:  # softplus(log(e - 1)) = 1
            self.projection.bias[-self.hidden_size :].fill_(math.log(math.e - 1.0))


class FirstQuadrantBMRU(MemoryUnit):
    """BMRU with non-negative currents, as the circuit paper trains it: states {0, alpha}.

    ``c = ReLU(|W| ReLU(x) + b)`` (input rectified, weights used as magnitudes, bias init
    0.5); set where ``c >= beta_hi``, reset where ``c < beta_lo`` (strict), hold in between.
    Per unit, learned: ``beta_lo = |raw_threshold_low|`` (init 0.15 U(0.8, 1.2)),
    ``beta_hi = beta_lo + |raw_width|`` (init 0.35 U(0.8, 1.2)), the spacing ``|alpha|``
    (init U(0.5, 1.5)) and a binarised initial state ``s_0 = H(initial_level)`` in {0, 1}.
    ``epsilon`` may be annealed from 1 to 0 (:class:`~cmru_neuro.EpsilonSchedule`; see
    :func:`~cmru_neuro.functional.first_quadrant_update`); it deploys at epsilon = 0.
    ``rectify_input=False`` feeds ``x`` as it comes (for inputs already non-negative).
    """

    fusable = False

    def __init__(self, input_size: int, hidden_size: int, *, epsilon: float = 0.0,
                 rectify_input: bool = True, **kwargs):
        _reject(kwargs, "learn_epsilon", "threshold", "threshold_bias", "init")
        self.rectify_input = bool(rectify_input)
        super().__init__(input_size, hidden_size, epsilon=epsilon, threshold="fixed", **kwargs)

    def _add_thresholds(self) -> None:
        self.raw_threshold_low = nn.Parameter(torch.empty_like(self.alpha))
        self.raw_width = nn.Parameter(torch.empty_like(self.alpha))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.normal_(self.projection.weight, 0.0, 1.0 / math.sqrt(self.input_size))
        if self.projection.bias is not None:
            self.projection.bias.fill_(0.5)
        self.raw_threshold_low.uniform_(0.8, 1.2).mul_(0.15)
        self.raw_width.uniform_(0.8, 1.2).mul_(0.35)
        self.alpha.uniform_(0.5, 1.5)
        if isinstance(self.initial_level, nn.Parameter):
            self.initial_level.copy_(_random_signs(self.initial_level))

    @property
    def threshold_low(self) -> Tensor:
        """beta_lo ``(H,)``: reset where the current is below it."""
        return self.raw_threshold_low.abs()

    @property
    def threshold_high(self) -> Tensor:
        """beta_hi ``(H,)`` > beta_lo: set where the current reaches it."""
        return self.threshold_low + self.raw_width.abs()

    @property
    def level_spacing(self) -> Tensor:
        return self.alpha.abs()

    def projection_weights(self) -> tuple[Tensor, Optional[Tensor]]:
        return self.projection.weight.abs(), self.projection.bias

    def initial_state(self, batch: int) -> Tensor:
        """h_0 = |alpha| * H(s_0), ``(B, H)``: 0 or |alpha| from the first step on."""
        level = F.heaviside(self.initial_level, self.surrogate)
        return (self.level_spacing * level).expand(batch, self.hidden_size)

    def currents(self, x: Tensor) -> Currents:
        if self.rectify_input:
            x = torch.relu(x)
        weight, bias = self.projection_weights()
        current = torch.relu(nn.functional.linear(x, weight, bias))
        return Currents(current, self.threshold_high, None)

    def update(self, currents: Currents) -> F.Update:
        return F.first_quadrant_update(
            currents.candidate, self.threshold_low, currents.threshold, self.surrogate, self.epsilon
        )

    def _step_size(self, currents: Currents) -> Tensor:
        return self.level_spacing

    def extra_repr(self) -> str:
        return super().extra_repr() + f", rectify_input={self.rectify_input}"


def _has_hooks(module: nn.Module) -> bool:
    """True when calling ``module`` would run hooks (its own or global ones): the condition
    of ``nn.Module.__call__``'s fast path."""
    hooks = nn.modules.module
    return bool(
        module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
        or module._backward_pre_hooks or hooks._global_forward_hooks
        or hooks._global_forward_pre_hooks or hooks._global_backward_hooks
        or hooks._global_backward_pre_hooks
    )


def _random_signs(like: Tensor) -> Tensor:
    """Random +-1 shaped like ``like``."""
    return torch.randint(0, 2, like.shape, device=like.device).to(like.dtype) * 2 - 1


def _reject(kwargs: dict, *names: str) -> None:
    for name in names:
        if name in kwargs:
            raise TypeError(f"{name}: not an option of this unit (it is fixed by the unit's definition)")
