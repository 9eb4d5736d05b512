"""Models for training: the authors' reference block, this project's earlier block, or the
deployable stack, around any cell.

``build_model(config) -> nn.Module``; every model maps time-first features ``(T, B, F)``
to ``(B, O)`` (readout ``"last"`` / ``"mean"``) or ``(T, B, O)`` (``"sequence"``).

``arch="reference"``: the CMRU authors' block (see ``../shared/reference/memory-units.md``,
"The reference recipe"); each piece can be switched off for ablations::

    x = Linear(F -> W)(input)
    [positional]  x = Linear(W + P -> W)([x, pe_t])               pe: learned, P features
    [pre_mlp]     x = x + GLU-MLP(LayerNorm(x))
    repeat layers:
      [positional]  u = Linear(W + P -> W)([x, pe_t])  (re-injected, else u = x)
                    n = LayerNorm(u); [conv] n = causal depthwise conv(n)
                    y = cell(n)          the cell: W -> state_size -> own Linear -> W
      [norm_after_cell] y = LayerNorm(y)  (every layer but the last)
      [output_gate] y = sigmoid(W_g LayerNorm(u) + 4) * y
                    x = scale * u + dropout(y)                   [skip_scale]: learned (W,), init 1
                    x = scale2 * x + GLU-MLP(LayerNorm(x))
    [post_mlp]    x = x + GLU-MLP(LayerNorm(x))
    logits_t = Linear(W -> O)(x_t)        no final norm; "mean" averages logits over time

``arch="block"``: this project's earlier block (the ablation row of docs/results.md)::

    x = Linear(F -> W)(input)
    repeat layers:  x = x + scale * cell(LayerNorm(x))        scale: learned (W,)
                    x = x + GLU-MLP(LayerNorm(x))             W -> 2*4W -> GLU -> 4W -> W, dropout
    out = Linear(W -> O)(readout(LayerNorm(x)))

``input_bias=False`` drops the input Linear's bias. With the bias, LayerNorm turns a silent
input (zeros) into a full-scale constant drive, and a CMRU whose gate that drive opens counts
up by one every step: on copy-first-input at T = 100 the earlier block stays at chance with
the bias and converges within 25 steps without it. Without the bias, a single input feature
(F = 1: pixel sequences, MNIST-1D) loses its amplitude in LayerNorm (only its sign is
left), so keep the bias there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Optional, Union

import math

import torch
from torch import Tensor, nn

from ._checks import check_choice, check_positive_int, check_positive_number, check_sequence
from .baselines import LRU, MinGRU
from .layers import INITS, MemoryUnit
from .network import READOUTS, UNITS, MemoryNetwork, read_steps
from .unit_kinds import UNIT_KINDS

#: Cells by name. "bmru-anneal": a memory unit trained from epsilon 1 (CMRU) to 0 (BMRU) by
#: the trainer's epsilon annealing, the authors' way to train a BMRU; "bmru" trains at
#: epsilon 0 from the start. "mingru": Feng et al.'s (g, log space); "mingru-lin": the CMRU
#: authors' (linear candidate, linear space, learned h_0).
CELLS = (*UNITS, "bmru-anneal", "lru", "mingru", "mingru-lin", "snn")
ANNEALED_CELLS = ("bmru-anneal",)
ARCHS = ("reference", "block", "stack")


@dataclass(kw_only=True)
class CellChoice:
    """Which cell in which architecture, and its initialisation (shared by
    :class:`ModelConfig` and :class:`~cmru_neuro.training.TrainConfig`).

    arch: ``"reference"`` (the authors' block), ``"block"`` (this project's earlier block) or
    ``"stack"`` (:class:`MemoryNetwork`, memory-unit cells only). cell: one of ``CELLS``.
    hidden: model width W (units per layer for "block" and "stack"). state_size: the cell's
    state width in "reference" (None: W); the cell's own Linear maps it back to W.
    init: ``"reference"`` (the authors' initialisation: LeCun-normal memory-unit weights,
    Xavier complex LRU) or ``"pytorch"`` (this project's earlier one: ``nn.Linear``'s
    default, Orvieto's normal LRU). init_scale: factor on the cell's input weights at
    initialisation. threshold_bias: the memory units' threshold bias (hysteresis
    half-width) at initialisation. input_bias: a bias in the input Linear (module docstring).
    positional, pre_mlp, post_mlp, norm_after_cell, output_gate, skip_scale, conv: the
    reference block's pieces (module docstring); positional = features of the learned
    positional encoding (0: none), conv = kernel of the causal conv (0: none).
    cell_options: further keyword arguments for the cell (memory units, LRU, minGRU).
    """

    cell: str = "cmru"
    arch: str = "reference"
    hidden: int = 32
    layers: int = 2
    state_size: Optional[int] = None
    dropout: float = 0.1
    expansion: int = 4
    init: str = "reference"
    init_scale: float = 1.0
    threshold_bias: float = 1.0
    input_bias: bool = True
    positional: int = 32
    pre_mlp: bool = True
    post_mlp: bool = True
    norm_after_cell: bool = True
    output_gate: bool = True
    skip_scale: bool = True
    conv: int = 0
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
        if self.state_size is not None:
            check_positive_int(self.state_size, "state_size")
        for name in ("positional", "conv"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected a non-negative integer (0: off), got {value!r}")
        if self.positional % 2:
            raise ValueError(f"positional: expected an even number of features (sine and cosine pairs), got {self.positional}")
        check_cell(self.cell)
        check_choice(self.arch, "arch", ARCHS)
        check_choice(self.init, "init", INITS)
        check_choice(self.readout, "readout", READOUTS)
        if self.arch == "stack" and self.cell not in UNITS:
            raise ValueError(
                f"cell: arch 'stack' takes a memory unit ({', '.join(UNITS)}), got {self.cell!r}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: expected a number in [0, 1), got {self.dropout!r}")
        check_positive_number(self.init_scale, "init_scale")
        if not (isinstance(self.threshold_bias, (int, float)) and math.isfinite(self.threshold_bias)):
            raise ValueError(f"threshold_bias: expected a finite number, got {self.threshold_bias!r}")

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

        self.hidden_size = hidden_size
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
            spikes = spikes.to(step.dtype)  # snnTorch emits float32 spikes; keep the model's dtype
            out.append(spikes)
        return torch.stack(out), membrane


def make_cell(name: str, width: int, init_scale: float = 1.0, threshold_bias: float = 1.0,
              options: dict | None = None, *, init: str = "reference",
              state_size: Optional[int] = None) -> nn.Module:
    """A ``(T, B, W) -> ((T, B, W), state)`` sequence layer by name.

    ``state_size`` None: the cell is W wide (the earlier block). Else the cell holds
    ``state_size`` units and its own output projection maps them back to W (LRU: its C).
    """
    state = width if state_size is None else state_size
    output = None if state_size is None else width
    options = dict(options or {})
    if name in UNITS or name in ANNEALED_CELLS:
        unit = UNITS.get(name, MemoryUnit)
        cell = unit(width, state, **_unit_options(name, threshold_bias, init, options))
    elif name == "lru":
        options.setdefault("init", "xavier" if init == "reference" else "orvieto")
        cell = LRU(width, state, output_size=output, **options)
    elif name in ("mingru", "mingru-lin"):
        cell = MinGRU(width, state, form="linear" if name == "mingru-lin" else "log", **options)
    else:
        cell = SpikingCell(width, state, **options)
    _scale_input_weights(cell, init_scale)
    if output is None or isinstance(cell, LRU):
        return cell
    return ProjectedCell(cell, width, non_negative=_first_quadrant(name))


def _unit_options(name: str, threshold_bias: float, init: str, options: dict | None) -> dict:
    """Memory-unit keyword arguments: ``options`` plus the threshold bias and init (not a
    first-quadrant unit's, whose definition fixes both); "bmru-anneal" starts at epsilon 1."""
    options = dict(options or {})
    if name in ANNEALED_CELLS:
        options.setdefault("epsilon", 1.0)
    if not _first_quadrant(name):
        options.setdefault("threshold_bias", threshold_bias)
        options.setdefault("init", init)
    return options


def _first_quadrant(name: str) -> bool:
    return name in UNIT_KINDS and UNIT_KINDS[name].first_quadrant


def _scale_input_weights(cell: nn.Module, factor: float) -> None:
    if factor == 1.0:
        return
    weights = [cell.B_re, cell.B_im] if isinstance(cell, LRU) else [cell.projection.weight]
    with torch.no_grad():
        for weight in weights:
            weight.mul_(factor)


class ProjectedCell(nn.Module):
    """A cell of S units and its own output projection back to the model width W.

    ``(T, B, W) -> ((T, B, W), state)``; the projection is LeCun-normal (std 1/sqrt(S)),
    bias 0. ``non_negative`` (first-quadrant BMRU, the circuit's output stage):
    ``ReLU(|W_o| s + |b_o|)``.
    """

    def __init__(self, cell: nn.Module, width: int, non_negative: bool = False):
        super().__init__()
        self.cell = cell
        self.non_negative = bool(non_negative)
        self.output = nn.Linear(cell.hidden_size, width)
        with torch.no_grad():
            nn.init.normal_(self.output.weight, 0.0, 1.0 / math.sqrt(cell.hidden_size))
            self.output.bias.zero_()

    def forward(self, x: Tensor):
        states, last = self.cell(x)
        if not self.non_negative:
            return self.output(states), last
        out = nn.functional.linear(states.clamp(min=0), self.output.weight.abs(), self.output.bias.abs())
        return torch.relu(out), last


class LearnedPositions(nn.Module):
    """A learned positional encoding: ``pe_t = [sin(w t + phi), cos(w t + phi)]``, ``(T, P)``.

    ``P/2`` frequencies ``w`` (init log-spaced from 1 to 1e-4 rad per step, like a
    transformer's) and phases ``phi`` (init 0) are learned; any length T works.
    """

    def __init__(self, features: int):
        super().__init__()
        pairs = features // 2
        self.log_frequency = nn.Parameter(-math.log(1e4) * torch.arange(pairs) / max(pairs, 1))
        self.phase = nn.Parameter(torch.zeros(pairs))

    def forward(self, steps: int, like: Tensor) -> Tensor:
        time = torch.arange(steps, device=like.device, dtype=like.dtype).unsqueeze(-1)
        angle = time * self.log_frequency.exp() + self.phase
        return torch.cat([angle.sin(), angle.cos()], dim=-1)


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


def _model_input(model: nn.Module, x: Tensor, input_size: int) -> tuple[Tensor, bool]:
    """``x`` checked (:func:`~cmru_neuro._checks.check_sequence`: a finite floating-point
    ``(T, B, F)`` or unbatched ``(T, F)`` in the model's dtype), returned ``(T, B, F)`` with
    whether it was batched."""
    dtype = next(model.parameters()).dtype
    return check_sequence(x, "x", input_size, batch_first=False, dtype=dtype)


class BlockModel(nn.Module):
    """Input Linear, ``layers`` residual blocks, final LayerNorm, readout, output Linear."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        width = config.hidden
        self.encoder = nn.Linear(config.input_size, width, bias=config.input_bias)
        self.blocks = nn.ModuleList(
            ResidualBlock(
                width,
                make_cell(config.cell, width, config.init_scale, config.threshold_bias,
                          config.cell_options, init=config.init),
                config.expansion, config.dropout,
            )
            for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(width)
        self.readout_mode = config.readout
        self.decoder = nn.Linear(width, config.output_size)

    def forward(self, x: Tensor) -> Tensor:
        """``(T, B, F)`` -> ``(B, O)`` or ``(T, B, O)`` (unbatched ``(T, F)``: no B axis)."""
        x, batched = _model_input(self, x, self.encoder.in_features)
        x = self.encoder(x)
        for block in self.blocks:
            x = block(x)
        out = self.decoder(read_steps(self.norm(x), self.readout_mode))
        return out if batched else out.squeeze(-2)


class CausalConv(nn.Module):
    """Depthwise causal convolution over time, ``(T, B, W) -> (T, B, W)``."""

    def __init__(self, width: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(width, width, kernel, groups=width)

    def forward(self, x: Tensor) -> Tensor:
        padded = nn.functional.pad(x.permute(1, 2, 0), (self.kernel - 1, 0))
        return self.conv(padded).permute(2, 0, 1)


class ReferenceLayer(nn.Module):
    """One layer of the reference block (module docstring), ``(T, B, W) -> (T, B, W)``."""

    def __init__(self, config: "ModelConfig", last: bool):
        super().__init__()
        width = config.hidden
        self.inject = nn.Linear(width + config.positional, width) if config.positional else None
        self.norm = nn.LayerNorm(width)
        self.conv = CausalConv(width, config.conv) if config.conv else None
        self.cell = make_cell(config.cell, width, config.init_scale, config.threshold_bias,
                              config.cell_options, init=config.init,
                              state_size=config.state_size or width)
        self.cell_norm = nn.LayerNorm(width) if config.norm_after_cell and not last else None
        self.gate = nn.Linear(width, width) if config.output_gate else None
        if self.gate is not None:
            with torch.no_grad():
                self.gate.bias.fill_(4.0)
        self.dropout = nn.Dropout(config.dropout)
        self.scale = nn.Parameter(torch.ones(width)) if config.skip_scale else None
        self.mlp_scale = nn.Parameter(torch.ones(width)) if config.skip_scale else None
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = GatedMLP(width, config.expansion, config.dropout)

    def forward(self, x: Tensor, positions: Optional[Tensor]) -> Tensor:
        skip = x if self.inject is None else self.inject(torch.cat([x, positions], dim=-1))
        normed = self.norm(skip)
        y, _ = self.cell(normed if self.conv is None else self.conv(normed))
        if self.cell_norm is not None:
            y = self.cell_norm(y)
        if self.gate is not None:
            y = torch.sigmoid(self.gate(normed)) * y
        x = _scaled(self.scale, skip) + self.dropout(y)
        return _scaled(self.mlp_scale, x) + self.mlp(self.mlp_norm(x))


def _scaled(scale: Optional[Tensor], x: Tensor) -> Tensor:
    return x if scale is None else scale * x


class ReferenceModel(nn.Module):
    """The authors' reference block around any cell (module docstring)."""

    def __init__(self, config: "ModelConfig"):
        super().__init__()
        width = config.hidden
        self.encoder = nn.Linear(config.input_size, width, bias=config.input_bias)
        self.positions = LearnedPositions(config.positional) if config.positional else None
        self.inject = nn.Linear(width + config.positional, width) if config.positional else None
        self.pre_norm, self.pre_mlp = _residual_mlp(config) if config.pre_mlp else (None, None)
        self.layers = nn.ModuleList(
            ReferenceLayer(config, last=index == config.layers - 1) for index in range(config.layers)
        )
        self.post_norm, self.post_mlp = _residual_mlp(config) if config.post_mlp else (None, None)
        self.readout_mode = config.readout
        self.decoder = nn.Linear(width, config.output_size)

    def forward(self, x: Tensor) -> Tensor:
        """``(T, B, F)`` -> ``(B, O)`` or ``(T, B, O)`` (unbatched ``(T, F)``: no B axis).
        ``x`` is checked first: finite, floating point, in the parameters' dtype."""
        x, batched = _model_input(self, x, self.encoder.in_features)
        x = self.encoder(x)
        positions = None
        if self.positions is not None:
            positions = self.positions(x.shape[0], x).unsqueeze(1).expand(*x.shape[:2], -1)
            x = self.inject(torch.cat([x, positions], dim=-1))
        if self.pre_mlp is not None:
            x = x + self.pre_mlp(self.pre_norm(x))
        for layer in self.layers:
            x = layer(x, positions)
        if self.post_mlp is not None:
            x = x + self.post_mlp(self.post_norm(x))
        if self.readout_mode == "last":
            out = self.decoder(read_steps(x, "last"))
        else:  # the authors average the logits, not the features
            out = read_steps(self.decoder(x), self.readout_mode)
        return out if batched else out.squeeze(-2)


def _residual_mlp(config: "ModelConfig") -> tuple[nn.LayerNorm, "GatedMLP"]:
    return nn.LayerNorm(config.hidden), GatedMLP(config.hidden, config.expansion, config.dropout)


def build_model(config: Union[ModelConfig, dict]) -> nn.Module:
    """The model a :class:`ModelConfig` (or its dict) describes."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    if config.arch == "reference":
        return ReferenceModel(config)
    if config.arch == "block":
        return BlockModel(config)
    network = MemoryNetwork(
        config.input_size, [config.hidden] * config.layers, config.output_size,
        unit=config.cell, readout=config.readout,
        unit_options=_unit_options(config.cell, config.threshold_bias, config.init, config.cell_options),
    )
    for unit in network.units:
        _scale_input_weights(unit, config.init_scale)
    return network


def parameter_count(config: Union[ModelConfig, dict]) -> int:
    """Number of parameters of the model ``config`` describes."""
    return sum(p.numel() for p in build_model(config).parameters())


def fit_width(config: ModelConfig, budget: int) -> ModelConfig:
    """``config`` with the width (``hidden``) whose parameter count is closest to ``budget``
    (ties: the smaller); the state size stays as given."""
    check_positive_int(budget, "budget")

    def count(width: int) -> int:
        return parameter_count(replace(config, hidden=width))

    low, high = 1, 1
    while count(high) < budget:
        low, high = high, high * 2
        if high > 1 << 16:
            raise ValueError(f"budget: {budget} parameters is beyond any width up to {high} for cell {config.cell!r}")
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if count(middle) < budget else (low, middle)
    best = min((low, high), key=lambda width: (abs(count(width) - budget), width))
    return replace(config, hidden=best)


__all__ = ["ANNEALED_CELLS", "ARCHS", "CELLS", "BlockModel", "CellChoice", "ModelConfig", "ProjectedCell",
           "ReferenceModel", "ResidualBlock", "build_model", "check_cell", "fit_width", "make_cell",
           "parameter_count"]
