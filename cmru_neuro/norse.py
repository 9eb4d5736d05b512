"""Norse neurons for the memory-unit family, the Norse way.

Parameters and state are NamedTuples, the step is a pure function
``(input_tensor, state, p, dt) -> (out, new_state)``, and thin modules give the initial
state: :class:`CMRUCell` (an ``SNNCell``, one step) and :class:`CMRU` (an ``SNN``, time-first
``(T, B, ..., k H)``, ``record_states``, parallel by default). The same for BMRU and
alpha-CMRU. Both work in ``norse.torch.SequentialState``. Input convention and outputs as in
:mod:`cmru_neuro.snntorch`: the last axis carries ``[c | beta (p.threshold None) | raw step
(alpha-CMRU)]``; the output is the event ``z_t sign(c_t)`` (``output_state``: the state).
All math is :mod:`cmru_neuro.functional`; ``dt`` is accepted for Norse's signature and unused
(the units are discrete-time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from norse.torch.module.snn import SNN, SNNCell
from torch import Tensor, nn

from . import functional as F
from ._checks import check_choice, check_real_tensor
from .layers import MODES


class CMRUParameters(NamedTuple):
    """Parameters of a memory neuron (CMRU, BMRU, alpha-CMRU).

    threshold: hysteresis half-width ``|beta|``, scalar or ``(H,)``; None: from the input.
    alpha:     level spacing (step per event), scalar or ``(H,)`` (unused by alpha-CMRU).
    surrogate: gradient of the Heaviside; None = arctan; any snnTorch-style surrogate.
    """

    threshold: Tensor | None = torch.as_tensor(1.0)
    alpha: Tensor = torch.as_tensor(1.0)
    surrogate: Callable[[Tensor], Tensor] | None = None


DEFAULT_PARAMETERS = CMRUParameters()


class CMRUState(NamedTuple):
    """State of memory neurons, each ``(B, ..., H)``.

    h:     the state h_t (snnTorch's ``mem``).
    level: integer level L_t (h_t = h_0 + alpha L_t for CMRU), exact for CMRU and BMRU.
    """

    h: Tensor
    level: Tensor


def memory_feed_forward_step(
    input_tensor: Tensor,
    state: CMRUState,
    p: CMRUParameters,
    epsilon: float,
    step_from_input: bool = False,
) -> tuple[Tensor, CMRUState]:
    """One step of the epsilon family: currents ``(B, ..., k H)`` -> ``(events, new state)``."""
    update, step_size = _update(input_tensor, p, epsilon, step_from_input)
    new = F.step(update, F.MemoryState(state.h, state.level), step_size)
    return update.events, CMRUState(new.h, new.level)


def memory_scan(
    input_tensor: Tensor,
    state: CMRUState,
    p: CMRUParameters,
    epsilon: float,
    step_from_input: bool = False,
    parallel: bool = True,
) -> tuple[Tensor, CMRUState]:
    """A time-first sequence ``(T, B, ..., k H)`` -> ``(events, states)``, each ``(T, B, ..., H)``.

    ``parallel``: prefix sum / associative scan; else the step loop. Both continue ``state``.
    """
    result = F.memory_sequence(
        input_tensor, p.threshold, state.h, None if step_from_input else p.alpha, epsilon,
        p.surrogate, initial_level=state.level, record=("events", "levels"),
        mode="parallel" if parallel else "sequential",
    )
    return result.events, CMRUState(result.states, result.levels)


def _update(
    input_tensor: Tensor, p: CMRUParameters, epsilon: float, step_from_input: bool
) -> tuple[F.Update, Tensor]:
    candidate, threshold, step_size = F.split_currents(input_tensor, p.threshold, step_from_input)
    update = F.hysteresis_update(candidate, threshold, epsilon, p.surrogate)
    return update, p.alpha if step_size is None else step_size


def cmru_feed_forward_step(input_tensor, state, p=DEFAULT_PARAMETERS, dt: float = 0.001):
    """CMRU step (epsilon = 1): ``h_t = h_{t-1} + alpha z_t sign(c_t)``."""
    return memory_feed_forward_step(input_tensor, state, p, 1.0)


def bmru_feed_forward_step(input_tensor, state, p=DEFAULT_PARAMETERS, dt: float = 0.001):
    """BMRU step (epsilon = 0): set to ``alpha sign(c_t)`` where ``|c_t| >= |beta|``."""
    return memory_feed_forward_step(input_tensor, state, p, 0.0)


def alpha_cmru_feed_forward_step(input_tensor, state, p=DEFAULT_PARAMETERS, dt: float = 0.001):
    """alpha-CMRU step: ``h_t = h_{t-1} + softplus(a_t) z_t sign(c_t)``."""
    return memory_feed_forward_step(input_tensor, state, p, 1.0, step_from_input=True)


class MemoryModule(nn.Module):
    """Shared by the cells and sequence modules: owns the learnable values as real
    ``nn.Parameter`` s and builds :class:`CMRUParameters` from them on every call."""

    epsilon: float = 1.0
    step_from_input: bool = False

    def _own_parameters(
        self,
        p: CMRUParameters,
        learn_threshold: bool = False,
        learn_alpha: bool = False,
        output_state: bool = False,
        h0: None | float | Tensor = None,
    ) -> None:
        if not isinstance(p, CMRUParameters):
            raise TypeError(f"p: expected CMRUParameters, got {type(p).__name__}")
        if p.threshold is None and learn_threshold:
            raise ValueError(
                "learn_threshold: expected False when p.threshold is None (from input), got True"
            )
        if self.step_from_input and learn_alpha:
            raise ValueError(f"learn_alpha: {type(self).__name__} takes its step from the input")
        for name, value, learn in (
            ("threshold", p.threshold, learn_threshold),
            ("alpha", p.alpha, learn_alpha),
        ):
            value = (
                None
                if value is None
                else torch.as_tensor(value, dtype=torch.get_default_dtype()).clone()
            )
            if learn:
                setattr(self, name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)
        self.register_buffer(
            "h0",
            None if h0 is None else torch.as_tensor(h0, dtype=torch.get_default_dtype()).clone(),
        )
        self.surrogate = p.surrogate
        self.output_state = bool(output_state)

    @property
    def p(self) -> CMRUParameters:
        """The current parameters (built from the module's parameters and buffers)."""
        return CMRUParameters(self.threshold, self.alpha, self.surrogate)

    @p.setter
    def p(self, value) -> None:  # Norse's base __init__ assigns p; ours is derived
        if value is not None:
            raise AttributeError(
                "p: derived from the module's threshold and alpha; set those instead"
            )

    @property
    def threshold_from_input(self) -> bool:
        """True when ``p.threshold`` is None: the input carries ``[c | beta ...]``."""
        return self.threshold is None

    @property
    def streams(self) -> int:
        """How many H-wide current blocks the input carries on its last axis."""
        return 1 + int(self.threshold_from_input) + int(self.step_from_input)

    def _width(self) -> int | None:
        """H when a per-neuron parameter fixes it, else None."""
        for value in (self.threshold, None if self.step_from_input else self.alpha):
            if value is not None and value.dim() > 0:
                return value.shape[-1]
        return None

    def _check_input(self, input_tensor, leading: int) -> torch.Size:
        """Validate the input; return the state shape (``leading`` axes dropped)."""
        if isinstance(input_tensor, tuple):
            raise TypeError(
                "input_tensor: expected a torch.Tensor, got tuple "
                "(did you swap input_tensor and state?)"
            )
        check_real_tensor(input_tensor, "input_tensor")
        if input_tensor.dim() < leading + 1:
            raise ValueError(
                f"input_tensor: expected at least {leading + 1} axes, got shape {tuple(input_tensor.shape)}"
            )
        width, hidden = input_tensor.shape[-1], self._width()
        if width % self.streams or (hidden is not None and width != self.streams * hidden):
            wanted = (
                self.streams * hidden if hidden is not None else f"a multiple of {self.streams}"
            )
            raise ValueError(
                f"input_tensor: expected last axis {wanted} ({self.streams} current blocks of H={hidden}), "
                f"got {width} in shape {tuple(input_tensor.shape)}"
            )
        shape = input_tensor.shape[leading:]
        return shape[:-1] + (width // self.streams,)

    def _state(self, state, shape: torch.Size, like: Tensor) -> CMRUState:
        if state is None:
            zeros = torch.zeros(shape, dtype=like.dtype, device=like.device)
            return CMRUState(zeros if self.h0 is None else zeros + self.h0, zeros)
        if not isinstance(state, CMRUState):
            raise TypeError(
                f"state: expected CMRUState, got {type(state).__name__} (a state from another neuron type?)"
            )
        for name, value in zip(CMRUState._fields, state):
            if not isinstance(value, Tensor) or value.shape != shape:
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(
                    f"state.{name}: expected shape {tuple(shape)} for this input, got {got} "
                    "(a state from another layer?)"
                )
        return state

    def _output(self, events: Tensor, state: CMRUState) -> Tensor:
        return state.h if self.output_state else events


class MemoryCell(MemoryModule, SNNCell):
    """One step of memory neurons: ``cell(input_tensor (B, ..., k H), state=None) ->
    (out, CMRUState)``; the base of :class:`CMRUCell`, :class:`BMRUCell`, :class:`AlphaCMRUCell`.

    Args:
        p: :class:`CMRUParameters` (initial values of the learnable ones).
        learn_threshold, learn_alpha: make ``threshold`` / ``alpha`` ``nn.Parameter`` s.
        output_state: output the state ``h`` instead of the event.
        h0: initial state ``h`` (scalar or ``(H,)``) when none is given; None: zeros.
        dt: Norse's time step (unused: discrete time).
    """

    def __init__(
        self,
        p: CMRUParameters = DEFAULT_PARAMETERS,
        *,
        learn_threshold: bool = False,
        learn_alpha: bool = False,
        output_state: bool = False,
        h0: None | float | Tensor = None,
        dt: float = 0.001,
    ):
        SNNCell.__init__(
            self, activation=self._activation, state_fallback=self.initial_state, p=None, dt=dt
        )
        self._own_parameters(p, learn_threshold, learn_alpha, output_state, h0)

    def _activation(self, input_tensor, state, p, dt=0.001):
        return memory_feed_forward_step(input_tensor, state, p, self.epsilon, self.step_from_input)

    def initial_state(self, input_tensor: Tensor) -> CMRUState:
        """Zeros of the state shape for ``input_tensor``."""
        return self._state(None, self._check_input(input_tensor, 0), input_tensor)

    def forward(self, input_tensor: Tensor, state: CMRUState | None = None):
        shape = self._check_input(input_tensor, 0)
        state = self._state(state, shape, input_tensor)
        events, state = self._activation(input_tensor, state, self.p, self.dt)
        return self._output(events, state), state


class MemorySequence(MemoryModule, SNN):
    """Memory neurons over a time-first sequence: ``module(input_tensor (T, B, ..., k H),
    state=None) -> (out (T, B, ..., H), state)``; the final CMRUState, or every step's
    (``(T, ...)`` fields) with ``record_states``. ``mode``: ``"parallel"`` (default, prefix
    sum / scan) or ``"sequential"`` (the step loop). ``options``: ``learn_threshold``,
    ``learn_alpha``, ``output_state``, ``h0``, as :class:`MemoryCell`.
    """

    def __init__(
        self,
        p: CMRUParameters = DEFAULT_PARAMETERS,
        *,
        record_states: bool = False,
        mode: str = "parallel",
        dt: float = 0.001,
        **options,
    ):
        SNN.__init__(
            self, activation=None, state_fallback=None, p=None, dt=dt, record_states=record_states
        )
        self._own_parameters(p, **options)
        self.mode = check_choice(mode, "mode", MODES)

    def forward(self, input_tensor: Tensor, state: CMRUState | None = None):
        shape = self._check_input(input_tensor, 1)
        state = self._state(state, shape, input_tensor)
        events, states = memory_scan(
            input_tensor, state, self.p, self.epsilon, self.step_from_input, self.mode == "parallel"
        )
        out = self._output(events, states)
        if self.record_states:
            return out, states
        if not states.h.shape[0]:  # T = 0: the state is unchanged
            return out, state
        return out, CMRUState(states.h[-1], states.level[-1])


class CMRUCell(MemoryCell):
    """CMRU, one step (epsilon = 1)."""


class BMRUCell(MemoryCell):
    """BMRU, one step (epsilon = 0)."""

    epsilon = 0.0


class AlphaCMRUCell(MemoryCell):
    """alpha-CMRU, one step: the step is ``softplus`` of the input's last block."""

    step_from_input = True


class CMRU(MemorySequence):
    """CMRU over a sequence (epsilon = 1)."""


class BMRU(MemorySequence):
    """BMRU over a sequence (epsilon = 0)."""

    epsilon = 0.0


class AlphaCMRU(MemorySequence):
    """alpha-CMRU over a sequence."""

    step_from_input = True


__all__ = [
    "BMRU",
    "CMRU",
    "AlphaCMRU",
    "AlphaCMRUCell",
    "BMRUCell",
    "CMRUCell",
    "CMRUParameters",
    "CMRUState",
    "MemoryCell",
    "MemoryModule",
    "MemorySequence",
    "alpha_cmru_feed_forward_step",
    "bmru_feed_forward_step",
    "cmru_feed_forward_step",
    "memory_feed_forward_step",
    "memory_scan",
]
