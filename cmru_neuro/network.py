"""A deployable network: memory-unit layers stacked, then a linear readout.

Every operation maps to neuromorphic hardware (Dense + unit + Dense), so this is what the
integer reference and the Lava adapter run. The paper's block (LayerNorm, GLU MLP,
residuals) lives in :mod:`cmru_neuro.models`.
"""

from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor, nn

from ._checks import check_choice, check_positive_int
from .layers import MODES, MemoryTrace, MemoryUnit
from .unit_kinds import UNIT_KINDS

#: the layer class of every unit kind (read from :data:`cmru_neuro.unit_kinds.UNIT_KINDS`)
UNITS: dict[str, type[MemoryUnit]] = {name: kind.layer_class() for name, kind in UNIT_KINDS.items()}
READOUTS = ("last", "mean", "sequence")


class MemoryNetwork(nn.Module):
    """``x (T, B, F) -> unit layers -> Linear`` readout.

    Args:
        input_size: features F.
        hidden_sizes: units per layer, e.g. ``(32,)`` or ``(64, 64)``.
        output_size: readout width (classes).
        unit: one of ``UNITS`` (``"cmru"``, ``"bmru"``, ``"acmru"``, ``"fq-bmru"``).
        readout: ``"last"`` (last step), ``"mean"`` (mean over time) or ``"sequence"``
            (every step, ``(T, B, O)``).
        unit_options: keyword arguments for every unit (``threshold``, ``surrogate``...).
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: Sequence[int],
        output_size: int,
        *,
        unit: str = "cmru",
        readout: str = "last",
        unit_options: Optional[dict] = None,
    ):
        super().__init__()
        check_positive_int(input_size, "input_size")
        check_positive_int(output_size, "output_size")
        if not hidden_sizes:
            raise ValueError("hidden_sizes: expected at least one layer size, got none")
        for size in hidden_sizes:
            check_positive_int(size, "hidden_sizes")
        self.unit_name = check_choice(unit, "unit", tuple(UNITS))
        self.readout_mode = check_choice(readout, "readout", READOUTS)
        sizes = [input_size, *hidden_sizes]
        options = dict(unit_options or {})
        self.units = nn.ModuleList(
            UNITS[unit](n_in, n_out, **options) for n_in, n_out in zip(sizes[:-1], sizes[1:])
        )
        self.readout = nn.Linear(sizes[-1], output_size)

    def forward(self, x: Tensor, *, return_traces: bool = False):
        """``x`` (T, B, F) -> logits ``(B, O)`` (``(T, B, O)`` for readout ``"sequence"``).

        With ``return_traces``, also a list of each layer's :class:`MemoryTrace`.
        """
        traces: list[MemoryTrace] = []
        h = x
        for unit in self.units:
            if return_traces:
                h, _, trace = unit(h, return_trace=True)
                traces.append(trace)
            else:
                h, _ = unit(h)
        out = self.readout(read_steps(h, self.readout_mode))
        return (out, traces) if return_traces else out

    def extra_repr(self) -> str:
        return f"unit={self.unit_name!r}, readout={self.readout_mode!r}"


def read_steps(h: Tensor, readout: str) -> Tensor:
    """What a readout reads of ``h`` ``(T, B, W)``: the last step ``(B, W)``, the mean over
    time ``(B, W)`` or every step (``"sequence"``); T = 0 is refused for the first two."""
    if readout != "sequence" and h.shape[0] == 0:
        raise ValueError(f"x: expected at least one time step for readout {readout!r}, got T = 0")
    if readout == "last":
        return h[-1]
    return h.mean(dim=0) if readout == "mean" else h


def set_mode(model: nn.Module, mode: str) -> None:
    """Set the evaluation (``"parallel"`` / ``"sequential"``) of every layer in ``model``."""
    check_choice(mode, "mode", MODES)
    for module in model.modules():
        if hasattr(module, "mode") and isinstance(getattr(module, "mode"), str):
            module.mode = mode


__all__ = ["MemoryNetwork", "UNITS", "READOUTS", "read_steps", "set_mode"]
