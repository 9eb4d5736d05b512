"""Norse neurons for the memory-unit family, the Norse way.

Parameters and state are NamedTuples (:class:`CMRUParameters`; the state is
:class:`cmru_neuro.functional.MemoryState`, also exported as ``CMRUState``), the step is a
pure function ``(input_tensor, state, p, dt) -> (out, new_state)``
(:func:`memory_feed_forward_step`; :func:`memory_scan` for a whole sequence), and thin
modules hand it and their initial state to Norse's base classes: :class:`CMRUCell` (an
``SNNCell``, one step) and :class:`CMRU` (an ``SNN``, time-first ``(T, B, ..., k H)``,
``record_states``, parallel by default). The same for BMRU and alpha-CMRU; the kinds are
those of :data:`cmru_neuro.unit_kinds.UNIT_KINDS`. Both work in
``norse.torch.SequentialState``. Input convention and outputs as in
:mod:`cmru_neuro.snntorch`: the last axis carries ``[c | beta (p.threshold None) | raw step
(p.step_from_input)]``; the output is the event ``z_t sign(c_t)`` (``p.output_state``: the
state). All math is :mod:`cmru_neuro.functional`; ``dt`` is accepted for Norse's signature
and unused (the units are discrete-time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from norse.torch.module.snn import SNN, SNNCell
from torch import Tensor, nn

from . import functional as F
from ._checks import check_choice, check_real_tensor
from .unit_kinds import UNIT_KINDS, UnitKind, neuron_kind


class CMRUParameters(NamedTuple):
    """Parameters of a memory neuron (CMRU, BMRU, alpha-CMRU).

    threshold:       hysteresis half-width ``|beta|``, scalar or ``(H,)``; None: from the input.
    alpha:           level spacing (step per event), scalar or ``(H,)`` (unused with
                     ``step_from_input``).
    surrogate:       gradient of the Heaviside; None = arctan; any snnTorch-style surrogate.
    epsilon:         the family knob: 1 counts events (CMRU), 0 latches (BMRU).
    step_from_input: the step is ``softplus`` of the input's last block (alpha-CMRU).
    output_state:    output the state ``h`` instead of the event.

    The kind classes (:class:`CMRUCell`, :class:`BMRU`, ...) fill in their kind's ``epsilon``
    and ``step_from_input`` where these are left at the defaults and refuse other values.
    """

    threshold: Tensor | None = torch.as_tensor(1.0)
    alpha: Tensor = torch.as_tensor(1.0)
    surrogate: Callable[[Tensor], Tensor] | None = None
    epsilon: float = 1.0
    step_from_input: bool = False
    output_state: bool = False


DEFAULT_PARAMETERS = CMRUParameters()

MemoryState = F.MemoryState
CMRUState = MemoryState  # the same class: ``h`` (snnTorch's ``mem``) and the integer ``level``


def memory_feed_forward_step(
    input_tensor: Tensor,
    state: MemoryState,
    p: CMRUParameters = DEFAULT_PARAMETERS,
    dt: float = 0.001,
) -> tuple[Tensor, MemoryState]:
    """One step: currents ``(B, ..., k H)`` -> ``(out, new state)``, each ``(B, ..., H)``;
    ``out`` is the event ``z_t sign(c_t)`` (``p.output_state``: the new ``h``)."""
    candidate, threshold, step_size = F.split_currents(input_tensor, p.threshold, p.step_from_input)
    update = F.hysteresis_update(candidate, threshold, p.epsilon, p.surrogate)
    new = F.step(update, state, p.alpha if step_size is None else step_size)
    return (new.h if p.output_state else update.events), new


def memory_scan(
    input_tensor: Tensor,
    state: MemoryState,
    p: CMRUParameters = DEFAULT_PARAMETERS,
    dt: float = 0.001,
    *,
    parallel: bool = True,
) -> tuple[Tensor, MemoryState]:
    """A time-first sequence ``(T, B, ..., k H)`` -> ``(out, states)``, each ``(T, B, ..., H)``:
    every step of :func:`memory_feed_forward_step` in one call of
    :func:`cmru_neuro.functional.memory_sequence`, continuing ``state``.

    ``parallel``: prefix sum / associative scan; else the step loop.
    """
    result = F.memory_sequence(
        input_tensor, p.threshold, state.h, None if p.step_from_input else p.alpha, p.epsilon,
        p.surrogate, initial_level=state.level, record=("events", "levels"),
        mode="parallel" if parallel else "sequential",
    )
    out = result.states if p.output_state else result.events
    return out, MemoryState(result.states, result.levels)


def _with_kind(p: CMRUParameters, kind: UnitKind | None, owner: str) -> CMRUParameters:
    """``p`` checked, with ``kind``'s ``epsilon`` and ``step_from_input`` filled in where ``p``
    leaves the defaults (ValueError where it says otherwise); ``kind`` None: ``p``'s own,
    which must name a kind."""
    if not isinstance(p, CMRUParameters):
        raise TypeError(f"p: expected CMRUParameters, got {type(p).__name__}")
    try:
        epsilon = float(p.epsilon)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"p.epsilon: expected a number (1: CMRU, 0: BMRU), got {p.epsilon!r}"
        ) from None
    p = p._replace(
        epsilon=epsilon, step_from_input=bool(p.step_from_input), output_state=bool(p.output_state)
    )
    if kind is None:
        neuron_kind(p.epsilon, p.step_from_input, where=f"{owner} p")
        return p
    for field, wanted in (("epsilon", kind.epsilon), ("step_from_input", kind.step_from_input)):
        given = getattr(p, field)
        if given != wanted and given != CMRUParameters._field_defaults[field]:
            try:
                other = neuron_kind(p.epsilon, p.step_from_input).neuron
                hint = f"use {other}{'Cell' if owner.endswith('Cell') else ''} for that kind"
            except ValueError:
                hint = "MemoryCell / MemorySequence take p as it is"
            raise ValueError(
                f"p.{field}: {owner} is a {kind.neuron} ({field}={wanted!r}), got {given!r}; {hint}"
            )
    return p._replace(epsilon=kind.epsilon, step_from_input=kind.step_from_input)


def cmru_feed_forward_step(input_tensor, state, p=DEFAULT_PARAMETERS, dt: float = 0.001):
    """CMRU step (epsilon = 1): ``h_t = h_{t-1} + alpha z_t sign(c_t)``; ``p`` of that kind."""
    p = _with_kind(p, UNIT_KINDS["cmru"], "cmru_feed_forward_step")
    return memory_feed_forward_step(input_tensor, state, p, dt)


def bmru_feed_forward_step(input_tensor, state, p=DEFAULT_PARAMETERS, dt: float = 0.001):
    """BMRU step (epsilon = 0): set to ``alpha sign(c_t)`` where ``|c_t| >= |beta|``;
    ``p`` of that kind."""
    p = _with_kind(p, UNIT_KINDS["bmru"], "bmru_feed_forward_step")
    return memory_feed_forward_step(input_tensor, state, p, dt)


def alpha_cmru_feed_forward_step(input_tensor, state, p=DEFAULT_PARAMETERS, dt: float = 0.001):
    """alpha-CMRU step: ``h_t = h_{t-1} + softplus(a_t) z_t sign(c_t)``; ``p`` of that kind."""
    p = _with_kind(p, UNIT_KINDS["acmru"], "alpha_cmru_feed_forward_step")
    return memory_feed_forward_step(input_tensor, state, p, dt)


_TENSORS = ("threshold", "alpha")  # p's tensor fields, registered on the module under these names


def _as_tensor(value) -> Tensor | None:
    return None if value is None else torch.as_tensor(value, dtype=torch.get_default_dtype())


def _check_call(module: MemoryModule, args: tuple, kwargs: dict) -> None:
    """Forward pre-hook of the memory modules: the input and a given state fit the module."""
    input_tensor = args[0] if args else kwargs.get("input_tensor")
    state = args[1] if len(args) > 1 else kwargs.get("state")
    if isinstance(input_tensor, tuple):
        raise TypeError(
            "input_tensor: expected a torch.Tensor, got tuple "
            "(did you swap input_tensor and state?)"
        )
    check_real_tensor(input_tensor, "input_tensor")
    shape = module._state_shape(input_tensor)
    if state is None:
        return
    if not isinstance(state, MemoryState):
        raise TypeError(
            f"state: expected CMRUState, got {type(state).__name__} "
            "(a state from another neuron type?)"
        )
    for name, value in zip(MemoryState._fields, state):
        if not isinstance(value, Tensor) or value.shape != shape:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(
                f"state.{name}: expected shape {tuple(shape)} for this input, got {got} "
                "(a state from another layer?)"
            )


class MemoryModule(nn.Module):
    """Shared by the cells and sequence modules.

    ``self.p`` is a plain attribute holding :class:`CMRUParameters`; assigning it registers
    its tensors as ``threshold`` and ``alpha`` (``nn.Parameter`` fields as they are, as
    parameters; copies of the others as buffers), and ``p`` then holds the registered ones, so
    optimizers, ``state_dict``, ``.to()`` and copies see the values the forward uses.
    ``kind``: the :data:`~cmru_neuro.unit_kinds.UNIT_KINDS` name a class fixes (None: ``p``'s
    own ``epsilon`` and ``step_from_input``).
    """

    kind: str | None = None
    _time_axes = 0  # leading axes of the input beyond the state's (the sequence's T)

    def _prepared(
        self, p: CMRUParameters, learn_threshold: bool, learn_alpha: bool, output_state: bool | None
    ) -> CMRUParameters:
        """``p`` as the module takes it: checked, of the class's kind, values in the default
        dtype (``learn_*``: copies as new ``nn.Parameter`` s)."""
        p = self._checked(p)
        if output_state is not None:
            p = p._replace(output_state=bool(output_state))
        if p.threshold is None and learn_threshold:
            raise ValueError(
                "learn_threshold: expected False when p.threshold is None (from input), got True"
            )
        if p.step_from_input and learn_alpha:
            raise ValueError(f"learn_alpha: {type(self).__name__} takes its step from the input")
        values = {}
        for name, learn in (("threshold", learn_threshold), ("alpha", learn_alpha)):
            value = getattr(p, name)
            if value is None or isinstance(value, nn.Parameter):
                continue  # from the input; or the caller's own learnable value
            value = _as_tensor(value)
            values[name] = nn.Parameter(value.detach().clone()) if learn else value
        return p._replace(**values)

    def _checked(self, p: CMRUParameters) -> CMRUParameters:
        kind = None if self.kind is None else UNIT_KINDS[self.kind]
        return _with_kind(p, kind, type(self).__name__)

    def _own(self, h0) -> None:
        """The rest of the construction, after the Norse base class's."""
        self.register_buffer("h0", None if h0 is None else _as_tensor(h0).clone())
        self.register_forward_pre_hook(_check_call, with_kwargs=True)

    def __setattr__(self, name: str, value) -> None:
        if name == "p":
            value = self._checked(value)
            for field in _TENSORS:
                tensor = getattr(value, field)
                self._parameters.pop(field, None)
                self._buffers.pop(field, None)
                if isinstance(tensor, nn.Parameter):
                    self.register_parameter(field, tensor)
                elif isinstance(tensor, Tensor):  # a copy: no buffer aliases p's defaults
                    self.register_buffer(field, tensor.detach().clone())
                else:
                    self.register_buffer(field, _as_tensor(tensor))
            value = self._linked(value)
        super().__setattr__(name, value)
        if name in _TENSORS and "p" in self.__dict__:  # a new threshold / alpha is p's
            self.__dict__["p"] = self._linked(self.p)

    def _linked(self, p: CMRUParameters) -> CMRUParameters:
        """``p`` with the registered ``threshold`` and ``alpha``."""
        registered = {**self._buffers, **self._parameters}
        return p._replace(**{field: registered.get(field) for field in _TENSORS})

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)  # .to(), .double(), .cuda() replace buffers
        self.__dict__["p"] = self._linked(self.p)
        return self

    @property
    def epsilon(self) -> float:
        """``p.epsilon``: 1 for CMRU and alpha-CMRU, 0 for BMRU."""
        return self.p.epsilon

    @property
    def step_from_input(self) -> bool:
        """``p.step_from_input``: the step comes from the input (alpha-CMRU)."""
        return self.p.step_from_input

    @property
    def output_state(self) -> bool:
        """``p.output_state``: the output is the state ``h``, not the event."""
        return self.p.output_state

    @property
    def surrogate(self):
        """``p.surrogate``."""
        return self.p.surrogate

    @property
    def threshold_from_input(self) -> bool:
        """True when ``p.threshold`` is None: the input carries ``[c | beta ...]``."""
        return self.p.threshold is None

    @property
    def streams(self) -> int:
        """How many H-wide current blocks the input carries on its last axis."""
        return 1 + int(self.threshold_from_input) + int(self.step_from_input)

    def _width(self) -> int | None:
        """H when a per-neuron parameter fixes it, else None."""
        for value in (self.p.threshold, None if self.step_from_input else self.p.alpha):
            if value is not None and value.dim() > 0:
                return value.shape[-1]
        return None

    def _state_shape(self, input_tensor: Tensor) -> torch.Size:
        """The state's shape for ``input_tensor`` (its time axes dropped); ValueError where
        the input does not fit."""
        leading = self._time_axes
        if input_tensor.dim() < leading + 1:
            raise ValueError(
                f"input_tensor: expected at least {leading + 1} axes, "
                f"got shape {tuple(input_tensor.shape)}"
            )
        width, hidden, streams = input_tensor.shape[-1], self._width(), self.streams
        if width % streams or (hidden is not None and width != streams * hidden):
            wanted = streams * hidden if hidden is not None else f"a multiple of {streams}"
            raise ValueError(
                f"input_tensor: expected last axis {wanted} ({streams} current blocks of "
                f"H={hidden}), got {width} in shape {tuple(input_tensor.shape)}"
            )
        shape = input_tensor.shape[leading:]
        return shape[:-1] + (width // streams,)

    def initial_state(self, input_tensor: Tensor) -> MemoryState:
        """``h = h0`` (zeros without one) and ``level = 0`` in the state's shape for
        ``input_tensor``."""
        shape = self._state_shape(input_tensor)
        zeros = torch.zeros(shape, dtype=input_tensor.dtype, device=input_tensor.device)
        return MemoryState(zeros if self.h0 is None else zeros + self.h0, zeros)


class MemoryCell(MemoryModule, SNNCell):
    """One step of memory neurons: ``cell(input_tensor (B, ..., k H), state=None) ->
    (out, CMRUState)``; Norse's ``SNNCell`` with :func:`memory_feed_forward_step` as the
    activation and :meth:`initial_state` as the state fallback. The base of :class:`CMRUCell`,
    :class:`BMRUCell`, :class:`AlphaCMRUCell` (each fixes its kind); ``MemoryCell`` itself
    takes ``p``'s ``epsilon`` and ``step_from_input`` as they are.

    Args:
        p: :class:`CMRUParameters` (copied; ``nn.Parameter`` fields stay learnable).
        learn_threshold, learn_alpha: make ``threshold`` / ``alpha`` ``nn.Parameter`` s.
        output_state: sets ``p.output_state`` (None: ``p``'s).
        h0: initial state ``h`` (scalar or ``(H,)``) when none is given; None: zeros.
        dt: Norse's time step (unused: discrete time).

    A forward pre-hook checks the input and the state (errors name them).
    """

    def __init__(
        self,
        p: CMRUParameters = DEFAULT_PARAMETERS,
        *,
        learn_threshold: bool = False,
        learn_alpha: bool = False,
        output_state: bool | None = None,
        h0: None | float | Tensor = None,
        dt: float = 0.001,
    ):
        p = self._prepared(p, learn_threshold, learn_alpha, output_state)
        SNNCell.__init__(self, memory_feed_forward_step, self.initial_state, p, dt=dt)
        self._own(h0)


class MemorySequence(MemoryModule, SNN):
    """Memory neurons over a time-first sequence: ``module(input_tensor (T, B, ..., k H),
    state=None) -> (out (T, B, ..., H), state)``; the final CMRUState, or every step's
    (``(T, ...)`` fields) with ``record_states``. Norse's ``SNN`` with the activation
    :func:`memory_feed_forward_step` and the state fallback :meth:`initial_state`.
    ``mode``: ``"parallel"`` (default, prefix sum / scan) or ``"sequential"`` (the step
    loop). ``p`` and ``options`` (``learn_threshold``, ``learn_alpha``, ``output_state``,
    ``h0``) as :class:`MemoryCell`.
    """

    _time_axes = 1

    def __init__(
        self,
        p: CMRUParameters = DEFAULT_PARAMETERS,
        *,
        record_states: bool = False,
        mode: str = "parallel",
        learn_threshold: bool = False,
        learn_alpha: bool = False,
        output_state: bool | None = None,
        h0: None | float | Tensor = None,
        dt: float = 0.001,
    ):
        p = self._prepared(p, learn_threshold, learn_alpha, output_state)
        SNN.__init__(
            self, memory_feed_forward_step, self.initial_state, p, dt=dt,
            record_states=record_states,
        )
        self._own(h0)
        self.mode = check_choice(mode, "mode", F.MODES)

    def forward(self, input_tensor: Tensor, state: MemoryState | None = None):
        """As ``SNN.forward``, with the whole sequence in one :func:`memory_scan` (one prefix
        sum / scan) instead of its Python loop over ``self.activation``; ``T = 0`` gives the
        state back unchanged."""
        state = state if state is not None else self.state_fallback(input_tensor)
        parallel = self.mode == "parallel"
        out, states = memory_scan(input_tensor, state, self.p, self.dt, parallel=parallel)
        if self.record_states:
            return out, states
        if not input_tensor.shape[0]:
            return out, state
        return out, MemoryState(states.h[-1], states.level[-1])


class CMRUCell(MemoryCell):
    """CMRU, one step (epsilon = 1)."""

    kind = "cmru"


class BMRUCell(MemoryCell):
    """BMRU, one step (epsilon = 0)."""

    kind = "bmru"


class AlphaCMRUCell(MemoryCell):
    """alpha-CMRU, one step: the step is ``softplus`` of the input's last block."""

    kind = "acmru"


class CMRU(MemorySequence):
    """CMRU over a sequence (epsilon = 1)."""

    kind = "cmru"


class BMRU(MemorySequence):
    """BMRU over a sequence (epsilon = 0)."""

    kind = "bmru"


class AlphaCMRU(MemorySequence):
    """alpha-CMRU over a sequence."""

    kind = "acmru"


__all__ = [
    "BMRU",
    "CMRU",
    "DEFAULT_PARAMETERS",
    "AlphaCMRU",
    "AlphaCMRUCell",
    "BMRUCell",
    "CMRUCell",
    "CMRUParameters",
    "CMRUState",
    "MemoryCell",
    "MemoryModule",
    "MemorySequence",
    "MemoryState",
    "alpha_cmru_feed_forward_step",
    "bmru_feed_forward_step",
    "cmru_feed_forward_step",
    "memory_feed_forward_step",
    "memory_scan",
]
