"""Models for training: the paper's residual block around any cell, or the deployable stack.

``build_model(config) -> nn.Module``; every model maps time-first features ``(T, B, F)``
to ``(B, O)`` (readout ``"last"`` / ``"mean"``) or ``(T, B, O)`` (``"sequence"``).

Block (pre-norm, the CMRU group's setup)::

    x = Linear(F -> W)(input)
    repeat layers:  x = x + scale * cell(LayerNorm(x))        scale: learned (W,)
                    x = x + GLU-MLP(LayerNorm(x))             W -> 2*4W -> GLU -> 4W -> W, dropout
    out = Linear(W -> O)(readout(LayerNorm(x)))

``input_bias=False`` drops the input Linear's bias. With the bias, LayerNorm turns a silent
input (zeros) into a full-scale constant drive, and a CMRU whose gate that drive opens counts
up by one every step: on copy-first-input at T = 100 the CMRU block stays at chance with the
bias and converges within 25 steps without it. Without the bias, a single input feature
(F = 1: pixel sequences, MNIST-1D) loses its amplitude in LayerNorm (only its sign is
left), so keep the bias there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Union

import torch
from torch import Tensor, nn

from ._checks import check_choice, check_positive_int
from .baselines import LRU, MinGRU
from .network import READOUTS, UNITS, MemoryNetwork

CELLS = (*UNITS, "lru", "mingru", "snn")
ARCHS = ("block", "stack")


@dataclass(kw_only=True)
class CellChoice:
    """Which cell in which architecture, and its initialisation (shared by
    :class:`ModelConfig` and :class:`~cmru_neuro.training.TrainConfig`).

    arch: ``"block"`` (the paper's residual block) or ``"stack"`` (:class:`MemoryNetwork`,
    memory-unit cells only). cell: one of ``CELLS``. hidden: width W (units per layer).
    init_scale: factor on the cell's input weights at initialisation. threshold_bias: the
    memory units' threshold bias (hysteresis half-width) at initialisation. input_bias: a
    bias in the block's input Linear (see the module docstring).
    cell_options: further keyword arguments for the cell (memory units, LRU, minGRU).
    """

    cell: str = "cmru"
    arch: str = "block"
    hidden: int = 32
    layers: int = 1
    dropout: float = 0.1
    expansion: int = 4
    init_scale: float = 1.0
    threshold_bias: float = 1.0
    input_bias: bool = True
    cell_options: dict = field(default_factory=dict)


@dataclass(kw_only=True)
class ModelConfig(CellChoice):
    """What :func:`build_model` needs; JSON-friendly (``to_dict`` / ``from_dict``).
    input_size: features F; output_size: outputs O; readout: ``READOUTS``."""

    input_size: int
    output_size: int
    readout: str = "mean"

    def __post_init__(self):
        for name in ("input_size", "output_size", "hidden", "layers", "expansion"):
            check_positive_int(getattr(self, name), name)
        check_cell(self.cell)
        check_choice(self.arch, "arch", ARCHS)
        check_choice(self.readout, "readout", READOUTS)
        if self.arch == "stack" and self.cell not in UNITS:
            raise ValueError(
                f"cell: arch 'stack' takes a memory unit ({', '.join(UNITS)}), got {self.cell!r}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: expected a number in [0, 1), got {self.dropout!r}")
        if not self.init_scale > 0:
            raise ValueError(f"init_scale: expected a positive number, got {self.init_scale!r}")

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        """Build from a dict; unknown keys are an error naming the valid ones."""
        return dataclass_from_dict(cls, values, "model config")

    def to_dict(self) -> dict:
        return asdict(self)


def dataclass_from_dict(cls, values: dict, what: str):
    """``cls(**values)``, with unknown keys reported as a ValueError listing the valid ones."""
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"{what}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(names)}")
    return cls(**values)


def check_cell(name: str) -> str:
    """``name`` if it is one of ``CELLS``, else a ValueError listing them."""
    if name not in CELLS:
        raise ValueError(f"cell: unknown cell {name!r}; expected one of {', '.join(CELLS)}")
    return name


class SpikingCell(nn.Module):
    """snnTorch baseline: recurrent leaky integrate-and-fire layer (``snn.RLeaky``, learned
    decay and threshold, all-to-all recurrence, arctan surrogate); outputs spikes ``(T, B, H)``."""

    def __init__(self, input_size: int, hidden_size: int, beta: float = 0.9):
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        self.projection = nn.Linear(input_size, hidden_size)
        self.neurons = snn.RLeaky(
            beta=torch.full((hidden_size,), beta), linear_features=hidden_size, learn_beta=True,
            learn_threshold=True, spike_grad=surrogate.atan(),
        )

    def forward(self, x: Tensor):
        current = self.projection(x)
        spikes, membrane = self.neurons.init_rleaky()
        out = []
        for step in current:
            spikes, membrane = self.neurons(step, spikes, membrane)
            out.append(spikes)
        return torch.stack(out), membrane


def make_cell(name: str, width: int, init_scale: float = 1.0, threshold_bias: float = 1.0,
              options: dict | None = None) -> nn.Module:
    """A ``(T, B, W) -> ((T, B, W), state)`` sequence layer by name."""
    if name in UNITS:
        cell = UNITS[name](width, width, **_unit_options(name, threshold_bias, options))
    elif name == "lru":
        cell = LRU(width, width, **(options or {}))
    elif name == "mingru":
        cell = MinGRU(width, width, **(options or {}))
    else:
        cell = SpikingCell(width, width, **(options or {}))
    _scale_input_weights(cell, init_scale)
    return cell


def _unit_options(name: str, threshold_bias: float, options: dict | None) -> dict:
    """Memory-unit keyword arguments: ``options`` plus the threshold bias (not fq-bmru's)."""
    options = dict(options or {})
    if name != "fq-bmru":
        options.setdefault("threshold_bias", threshold_bias)
    return options


def _scale_input_weights(cell: nn.Module, factor: float) -> None:
    if factor == 1.0:
        return
    weights = [cell.B_re, cell.B_im] if isinstance(cell, LRU) else [cell.projection.weight]
    with torch.no_grad():
        for weight in weights:
            weight.mul_(factor)


class GatedMLP(nn.Module):
    """``W -> Linear(2 E W) -> GLU -> dropout -> Linear(W) -> dropout`` (E = expansion)."""

    def __init__(self, width: int, expansion: int, dropout: float):
        super().__init__()
        self.up = nn.Linear(width, 2 * expansion * width)
        self.down = nn.Linear(expansion * width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.down(self.dropout(nn.functional.glu(self.up(x), dim=-1))))


class ResidualBlock(nn.Module):
    """Pre-norm residual block: cell with a learned per-channel scale, then a GLU MLP."""

    def __init__(self, width: int, cell: nn.Module, expansion: int, dropout: float):
        super().__init__()
        self.cell_norm = nn.LayerNorm(width)
        self.cell = cell
        self.scale = nn.Parameter(torch.ones(width))
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = GatedMLP(width, expansion, dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``(T, B, W) -> (T, B, W)``."""
        out, _ = self.cell(self.cell_norm(x))
        x = x + self.scale * out
        return x + self.mlp(self.mlp_norm(x))


class BlockModel(nn.Module):
    """Input Linear, ``layers`` residual blocks, final LayerNorm, readout, output Linear."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        width = config.hidden
        self.encoder = nn.Linear(config.input_size, width, bias=config.input_bias)
        self.blocks = nn.ModuleList(
            ResidualBlock(
                width,
                make_cell(config.cell, width, config.init_scale, config.threshold_bias, config.cell_options),
                config.expansion, config.dropout,
            )
            for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(width)
        self.readout_mode = config.readout
        self.decoder = nn.Linear(width, config.output_size)

    def forward(self, x: Tensor) -> Tensor:
        """``(T, B, F)`` -> ``(B, O)`` or ``(T, B, O)``."""
        x = self.encoder(x)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        if self.readout_mode == "last":
            x = x[-1]
        elif self.readout_mode == "mean":
            x = x.mean(dim=0)
        return self.decoder(x)


def build_model(config: Union[ModelConfig, dict]) -> nn.Module:
    """The model a :class:`ModelConfig` (or its dict) describes."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    if config.arch == "block":
        return BlockModel(config)
    network = MemoryNetwork(
        config.input_size, [config.hidden] * config.layers, config.output_size,
        unit=config.cell, readout=config.readout,
        unit_options=_unit_options(config.cell, config.threshold_bias, config.cell_options),
    )
    for unit in network.units:
        _scale_input_weights(unit, config.init_scale)
    return network


__all__ = ["ARCHS", "CELLS", "BlockModel", "CellChoice", "ModelConfig", "ResidualBlock", "build_model", "check_cell", "make_cell"]
