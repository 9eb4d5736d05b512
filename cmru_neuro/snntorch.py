"""snnTorch neurons for the memory-unit family: ``CMRU``, ``BMRU``, ``AlphaCMRU``.

Used like ``snn.Leaky``: ``spk, mem = neuron(input_, mem)``, or inside ``nn.Sequential``
with ``init_hidden=True`` (then ``spk = neuron(input_)``). Elementwise over any shape; the
last axis carries the currents. Input convention along the last axis (H neurons):

- threshold as a parameter (default): ``input_ = c`` ``(..., H)``, the candidate current;
  the hysteresis half-width is ``threshold`` (snnTorch's argument, ``learn_threshold``).
- ``threshold_from_input=True`` (the paper form): ``input_ = [c | beta]`` ``(..., 2H)``,
  e.g. from one ``nn.Linear(F, 2 * H)``; ``threshold`` is then unused.
- ``AlphaCMRU`` appends the raw step current: ``[c | beta (if from input) | a]`` and steps
  by ``softplus(a)`` instead of ``alpha``.

Outputs: ``spk = graded_spikes_factor * z_t * sign(c_t)`` in {-1, 0, +1} (a state change
down or up; ``output_state=True`` outputs the state instead); ``mem = h_t``, the quantized
state (multiples of ``alpha`` for CMRU / BMRU). With ``sequence=True`` the neuron takes a
whole time-first sequence ``(T, B, ..., k H)`` and runs it in parallel (``mode``). All math
is :mod:`cmru_neuro.functional`.

Where the memory is: an event ``z_t sign(c_t)`` depends on the current input only, so a
drop-in for ``snn.Leaky`` with spike output remembers nothing unless something keeps the
state. Two configurations carry it: ``output_state=True`` (the output is ``h_t``), or spike
output into an integrating readout, ``nn.Linear(H, C, bias=False)`` then
``snn.Leaky(beta=1.0, reset_mechanism="none")``, whose ``mem`` is ``W (h_t - h_0) / alpha``.

snnTorch's own tools: importing this module makes ``snntorch.utils.reset(net)`` (called by
``snntorch.backprop`` and NeuroBench's ``SNNTorchModel``) also reset the neurons of this
module inside ``net``, at any depth. ``reset_mem()`` / ``init_cmru()`` return an empty
placeholder that the next step replaces by ``h0`` in the input's shape, as snnTorch's.
"""

from __future__ import annotations

import functools

import snntorch
import snntorch.utils
import torch
from torch import Tensor, nn

from . import functional as F
from ._checks import check_choice, check_positive_int, check_real_tensor
from .layers import MODES
from .unit_kinds import UNIT_KINDS


class MemoryNeuron(snntorch.SpikingNeuron):
    """Base of the snnTorch memory neurons; each subclass is one ``kind`` of the unit-kind
    registry, which fixes ``epsilon`` and the step source.

    Args:
        threshold: hysteresis half-width ``|beta|`` (scalar, or ``(size,)``).
        spike_grad: any snnTorch surrogate (default: arctan, same as ``surrogate.atan()``).
        size: neurons H on the last axis; makes ``threshold`` and ``alpha`` per-neuron
            ``(H,)`` tensors and checks the input width. None: scalars, any width.
        threshold_from_input: the input carries ``[c | beta]`` (see the module docstring).
        alpha: level spacing (step per event), scalar or ``(size,)``; ``learn_alpha``.
        h0: the state after a reset (scalar or ``(size,)``); None: zeros, as snnTorch.
        init_hidden, output, learn_threshold, surrogate_disable, state_quant,
            graded_spikes_factor, learn_graded_spikes_factor: as in ``snn.Leaky``
            (``state_quant`` quantizes the kept state each step; not with ``sequence``).
        output_state: output the state ``h_t`` instead of the event.
        sequence: ``forward`` takes a whole sequence ``(T, ...)``, returns ``(T, ...)``.
        mode: ``"parallel"`` (prefix sum / scan) or ``"sequential"`` for ``sequence``.
    """

    #: its entry in :data:`cmru_neuro.unit_kinds.UNIT_KINDS`
    kind = UNIT_KINDS["cmru"]

    @property
    def epsilon(self) -> float:
        return self.kind.epsilon

    @property
    def step_from_input(self) -> bool:
        """alpha-CMRU: the step ``softplus(a_t)`` comes from the input's last block."""
        return self.kind.step_from_input

    def __init__(
        self,
        threshold: float | Tensor = 1.0,
        spike_grad=None,
        *,
        size: int | None = None,
        threshold_from_input: bool = False,
        alpha: float | Tensor = 1.0,
        learn_alpha: bool = False,
        h0: None | float | Tensor = None,
        learn_threshold: bool = False,
        surrogate_disable: bool = False,
        init_hidden: bool = False,
        state_quant=False,
        output: bool = False,
        output_state: bool = False,
        graded_spikes_factor: float = 1.0,
        learn_graded_spikes_factor: bool = False,
        sequence: bool = False,
        mode: str = "parallel",
    ):
        # everything is validated before SpikingNeuron registers the instance globally
        self.size = None if size is None else check_positive_int(size, "size")
        if threshold_from_input and learn_threshold:
            raise ValueError(
                "learn_threshold: expected False with threshold_from_input=True "
                "(the threshold comes from the input), got True"
            )
        mode = check_choice(mode, "mode", MODES)
        if sequence and state_quant:
            raise ValueError(
                "state_quant: expected False with sequence=True (the parallel scan cannot "
                "quantize between steps; use the streaming neuron), got a quantizer"
            )
        threshold = _per_neuron(threshold, "threshold", self.size)
        alpha = None if self.step_from_input else _per_neuron(alpha, "alpha", self.size)
        h0 = None if h0 is None else _per_neuron(h0, "h0", self.size)
        super().__init__(
            threshold,
            spike_grad if spike_grad is not None else F.atan(1.0),
            surrogate_disable,
            init_hidden,
            False,
            learn_threshold,
            "none",
            state_quant,
            output,
            graded_spikes_factor,
            learn_graded_spikes_factor,
        )
        self.threshold_from_input = bool(threshold_from_input)
        self.output_state = bool(output_state)
        self.sequence = bool(sequence)
        self.mode = mode
        if alpha is not None:
            if learn_alpha:
                self.alpha = nn.Parameter(alpha)
            else:
                self.register_buffer("alpha", alpha)
        self.register_buffer("h0", h0)
        self.register_buffer("mem", torch.zeros(0), persistent=False)

    @property
    def streams(self) -> int:
        """How many H-wide current blocks the input carries on its last axis."""
        return 1 + int(self.threshold_from_input) + int(self.step_from_input)

    def forward(self, input_: Tensor, mem: Tensor | None = None):
        """One step ``input_ (B, ..., k H)`` (a sequence ``(T, B, ..., k H)`` with
        ``sequence``) -> ``(spk, mem)``, or ``spk`` alone with ``init_hidden``."""
        if self.init_hidden and mem is not None:
            raise TypeError(
                "mem: should not be passed while init_hidden=True (the neuron keeps it)"
            )
        state_shape = self._check_input(input_)
        if mem is not None:
            self.mem = _check_mem(mem, state_shape)
        if self.mem.shape != state_shape:  # a placeholder from reset_mem, or a new shape
            self.mem = self._fresh(
                torch.zeros(state_shape, dtype=input_.dtype, device=input_.device)
            )
        if self.sequence:
            h, events = self._scan(input_)
            if h.shape[0]:  # T = 0 keeps the state
                self.mem = h[-1]
        else:
            update, step_size = self._update(input_)
            h = F.advance(update, self.mem, step_size)
            h = self.mem = self.state_quant(h) if self.state_quant else h
            events = update.events
        spk = h if self.output_state else events * self.graded_spikes_factor
        if self.init_hidden and not self.output:
            return spk
        return spk, h

    @property
    def _fixed_threshold(self) -> Tensor | None:
        """The threshold parameter, or None when it comes from the input."""
        return None if self.threshold_from_input else self.threshold

    def _update(self, input_: Tensor) -> tuple[F.Update, Tensor]:
        """Gate, events and decay of the input's currents, and the step size."""
        candidate, threshold, step_size = F.split_currents(
            input_, self._fixed_threshold, self.step_from_input
        )
        update = F.hysteresis_update(candidate, threshold, self.epsilon, self.spike_grad)
        return update, self.alpha if step_size is None else step_size

    def _scan(self, input_: Tensor) -> tuple[Tensor, Tensor]:
        """A sequence ``(T, B, ..., k H)`` -> states and events, each ``(T, B, ..., H)``."""
        result = F.memory_sequence(
            input_, self._fixed_threshold, self.mem,
            None if self.step_from_input else self.alpha, self.epsilon, self.spike_grad,
            record=("events",), mode=self.mode,
        )
        return result.states, result.events

    def _check_input(self, input_) -> torch.Size:
        """Validate ``input_`` and return the shape of one step's state."""
        if isinstance(input_, tuple):
            raise TypeError(
                "input_: expected a torch.Tensor, got tuple (did you swap input_ and mem?)"
            )
        check_real_tensor(input_, "input_")
        if input_.dim() < (2 if self.sequence else 1):
            raise ValueError(
                f"input_: expected at least {'(time, batch, ...)' if self.sequence else '(batch, ...)'}"
                f", got shape {tuple(input_.shape)}"
            )
        width = input_.shape[-1]
        expected = None if self.size is None else self.streams * self.size
        if (expected is not None and width != expected) or width % self.streams:
            layout = " | ".join(self._layout())
            wanted = expected if expected is not None else f"a multiple of {self.streams}"
            hint = " (did you swap input_ and mem?)" if width == self.size else ""
            raise ValueError(
                f"input_: expected last axis {wanted} ([{layout}], H={self.size}), "
                f"got {width} in shape {tuple(input_.shape)}{hint}"
            )
        shape = input_.shape[1:] if self.sequence else input_.shape
        return shape[:-1] + (width // self.streams,)

    def _layout(self) -> list[str]:
        blocks = ["candidate"]
        if self.threshold_from_input:
            blocks.append("threshold")
        if self.step_from_input:
            blocks.append("raw step")
        return blocks

    def reset_mem(self) -> Tensor:
        """Forget the state (and its graph); returns the empty placeholder ``(0,)`` that
        ``forward`` accepts as ``mem``: the next step starts from ``h0`` (zeros by default)
        in its input's shape, whatever the batch size (snnTorch's lazy state)."""
        self.mem = self.mem.new_zeros(0)
        return self.mem

    def _fresh(self, zeros: Tensor) -> Tensor:
        return zeros if self.h0 is None else zeros + self.h0

    @classmethod
    def detach_hidden(cls) -> None:
        """Detach the state of every registered neuron of this class (not in place: safe
        for views, e.g. after ``state_quant``)."""
        for neuron in _registered(cls):
            neuron.mem = neuron.mem.detach()

    @classmethod
    def reset_hidden(cls) -> None:
        """Zero the state of every registered neuron of this class (snnTorch's global
        registry; :func:`cmru_neuro.reset` resets one network only)."""
        for neuron in _registered(cls):
            neuron.reset_mem()

    def __getstate__(self) -> dict:
        """Copies and pickles carry the state detached (a graph cannot be deep-copied)."""
        state = self.__dict__.copy()
        state["_buffers"] = {**self._buffers, "mem": self.mem.detach()}
        return state

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, threshold_from_input={self.threshold_from_input}, "
            f"output_state={self.output_state}, sequence={self.sequence}, mode={self.mode!r}, "
            f"init_hidden={self.init_hidden}, output={self.output}"
        )


class CMRU(MemoryNeuron):
    """Cumulative memory neuron: ``h_t = h_{t-1} + alpha z_t sign(c_t)`` (a ladder of levels)."""

    init_cmru = MemoryNeuron.reset_mem  # as snn.Leaky.init_leaky


class BMRU(MemoryNeuron):
    """Bistable memory neuron: set to ``alpha sign(c_t)`` where ``|c_t| >= |beta|``, else hold."""

    kind = UNIT_KINDS["bmru"]
    init_bmru = MemoryNeuron.reset_mem


class AlphaCMRU(MemoryNeuron):
    """Relaxed CMRU: steps by ``softplus(a_t)``, ``a_t`` the last block of the input."""

    kind = UNIT_KINDS["acmru"]
    init_alpha_cmru = MemoryNeuron.reset_mem

    def __init__(self, threshold: float | Tensor = 1.0, spike_grad=None, **kwargs):
        for name in ("alpha", "learn_alpha"):
            if name in kwargs:
                raise TypeError(
                    f"{name}: not an option of AlphaCMRU (its step comes from the input)"
                )
        super().__init__(threshold, spike_grad, **kwargs)


def _also_reset_memory_neurons(snntorch_reset):
    """``snntorch.utils.reset`` as it is, then :meth:`MemoryNeuron.reset_mem` on every one
    of ours inside ``net`` (snnTorch's own list of classes does not know them)."""

    @functools.wraps(snntorch_reset)
    def reset(net):
        snntorch_reset(net)
        for module in net.modules():
            if isinstance(module, MemoryNeuron):
                module.reset_mem()

    reset.resets_memory_neurons = True
    return reset


if not getattr(snntorch.utils.reset, "resets_memory_neurons", False):  # once per process
    snntorch.utils.reset = _also_reset_memory_neurons(snntorch.utils.reset)


def _registered(cls) -> list[MemoryNeuron]:
    """The live instances of ``cls`` in snnTorch's global registry (fully constructed)."""
    return [
        n for n in snntorch.SpikingNeuron.instances if isinstance(n, cls) and "mem" in n._buffers
    ]


def _per_neuron(value, name: str, size: int | None) -> Tensor:
    """A scalar or ``(size,)`` tensor parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise TypeError(f"{name}: expected a number or a tensor, got {type(value).__name__}")
    value = torch.as_tensor(value, dtype=torch.get_default_dtype()).clone()
    if size is None:
        return value
    if value.dim() == 0:
        return value.expand(size).clone()
    if tuple(value.shape) != (size,):
        raise ValueError(
            f"{name}: expected a scalar or shape ({size},) (size), got {tuple(value.shape)}"
        )
    return value


def _check_mem(mem, shape: torch.Size) -> Tensor:
    if not isinstance(mem, Tensor):
        hint = " (pass mem, not the (spk, mem) tuple)" if isinstance(mem, tuple) else ""
        raise TypeError(f"mem: expected a torch.Tensor, got {type(mem).__name__}{hint}")
    if mem.shape != shape and mem.numel():  # empty: the placeholder of reset_mem
        raise ValueError(
            f"mem: expected shape {tuple(shape)} (this neuron's state for this input), got "
            f"{tuple(mem.shape)} (a state from another layer, or input_ and mem swapped?)"
        )
    return mem


__all__ = ["BMRU", "CMRU", "AlphaCMRU", "MemoryNeuron"]
