"""Per-layer operation counts of one inference, gathered with forward hooks.

:func:`count_operations` runs the model once on example input and returns a
:class:`~.counts.ModelCounts`: for every counted layer a :class:`~.counts.LayerCounts`
(per inference, that is per sample of the batch). The counts and the message bookkeeping
are in :mod:`.counts`, the rules per layer type in :mod:`.layer_rules`; this module holds
the walk over the module tree.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from .counts import CountingSession, LayerCounts, ModelCounts, Rule, UnsupportedLayerError
from .layer_rules import RULES

PURE_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _plan(model: nn.Module, rules: list[Rule], strict: bool):
    """Pick a rule for every module to count; returns ``(planned, left_out)``."""
    planned: list[tuple[str, nn.Module, Rule]] = []
    left_out: list[str] = []

    def visit(name: str, module: nn.Module) -> None:
        label = name or type(module).__name__
        rule = next((r for r in rules if isinstance(module, r.types)), None)
        if rule is not None:
            planned.append((label, module, rule))
            if rule.owns_children:
                return
        elif len(module._modules) == 0 or any(True for _ in module.parameters(recurse=False)):
            problem = f"layer {label!r} ({type(module).__name__}) has no energy counting rule" + (
                "" if len(module._modules) == 0 else " and holds its own parameters"
            )
            if strict:
                raise UnsupportedLayerError(
                    f"{problem}; supported: {supported_layer_names(rules)} "
                    "(pass strict=False to skip it with a warning)"
                )
            what = "it is" if len(module._modules) == 0 else "its own arithmetic is"
            warnings.warn(f"{problem}: {what} not counted", stacklevel=4)
            left_out.append(f"{problem}: {what} NOT COUNTED (lenient mode)")
            if len(module._modules) == 0:
                return
        elif not isinstance(module, PURE_CONTAINERS):
            left_out.append(
                f"arithmetic written in {label!r} ({type(module).__name__}).forward outside its "
                "sub-layers (residual adds, pooling, products) is not counted"
            )
        for child_name, child in module.named_children():
            visit(f"{name}.{child_name}" if name else child_name, child)

    visit("", model)
    return planned, left_out


def supported_layer_names(rules: list[Rule]) -> str:
    """Readable list of the layer types the rules cover."""
    names = sorted({t.__name__ for rule in rules for t in rule.types})
    return ", ".join(names)


def _infer_layout(planned, time_first: Optional[bool]) -> tuple[bool, int, int]:
    """``(time_first, time_axis, batch_axis)`` from the sequence layers in the model."""
    sequence = [
        module
        for _, module, rule in planned
        if (rule.sequence(module) if callable(rule.sequence) else rule.sequence)
    ]
    if time_first is None:
        time_first = bool(sequence)
    if not time_first:
        return False, 0, 0
    batch_first = any(getattr(module, "batch_first", False) for module in sequence)
    return True, (1 if batch_first else 0), (0 if batch_first else 1)


def _samples(example_input: Tensor, time_first: bool, batch_axis: int) -> int:
    if time_first and example_input.dim() < 3:
        return 1  # unbatched (T, F)
    return int(example_input.shape[batch_axis]) if example_input.dim() > 0 else 1


def _positional(module: nn.Module, args: tuple, kwargs: dict) -> tuple:
    """The call's arguments as positional ones (``unit(x, h0=h)`` -> ``(x, h)``)."""
    if not kwargs:
        return args
    try:
        return inspect.signature(module.forward).bind(*args, **kwargs).args
    except TypeError:
        return args


def _first_tensor(value) -> Optional[Tensor]:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _check_not_empty(example_input: Tensor, time_first: bool, time_axis: int) -> None:
    """An inference needs at least one time step and one value: no empty input."""
    shape = tuple(example_input.shape)
    if example_input.numel() > 0:
        return
    if time_first and example_input.dim() >= 2 and shape[time_axis] == 0:
        raise ValueError(
            f"example_input: an inference needs at least one time step, got T = 0 "
            f"(shape {shape}, time on axis {time_axis})"
        )
    raise ValueError(f"example_input: expected a tensor with at least one value, got shape {shape}")


def count_operations(
    model: nn.Module,
    example_input: Tensor,
    *,
    strict: bool = True,
    samples: Optional[int] = None,
    time_steps: Optional[int] = None,
    time_first: Optional[bool] = None,
    forward: Optional[Callable[[nn.Module, Tensor], object]] = None,
) -> ModelCounts:
    """Run ``model`` once on ``example_input`` and count every layer's work per inference.

    Args:
        model: any module built from supported layers (see ``docs/energy.md``).
        example_input: one batch; time-first ``(T, B, F)`` for sequence models (batch-first
            if their layers are), ``(B, ...)`` otherwise.
        strict: an unsupported layer raises :class:`UnsupportedLayerError`; with False it
            is skipped with a warning and listed in ``left_out``.
        samples: batch size to divide by (default: read from the input's layout).
        time_steps: steps of one inference (default: the most steps any layer ran).
        time_first: the input and the tensors between layers are time-first sequences
            (default: True when the model holds a sequence layer such as a memory unit).
        forward: ``forward(model, example_input)`` when the model is not called directly.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(example_input, Tensor):
        raise TypeError(f"example_input: expected a tensor, got {type(example_input).__name__}")
    if time_steps is not None and not (isinstance(time_steps, int) and time_steps >= 1):
        raise ValueError(f"time_steps: expected a positive number of steps, got {time_steps!r}")
    planned, left_out = _plan(model, RULES, strict)
    time_first, time_axis, batch_axis = _infer_layout(planned, time_first)
    _check_not_empty(example_input, time_first, time_axis)
    batch = samples if samples is not None else _samples(example_input, time_first, batch_axis)
    if batch < 1:
        raise ValueError(f"samples: expected a positive batch size, got {batch}")
    session = CountingSession(time_first, time_axis, batch)
    counts: dict[str, LayerCounts] = {}
    handles = []
    for label, module, rule in planned:
        layer = LayerCounts(label, type(module).__name__)
        rule.setup(module, layer)
        counts[label] = layer

        def hook(module, args, kwargs, output, rule=rule, layer=layer):
            rule.count(session, module, layer, _positional(module, args, kwargs), output)

        handles.append(module.register_forward_hook(hook, with_kwargs=True))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = forward(model, example_input) if forward else model(example_input)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    layers = [c.scaled(batch) for c in counts.values() if c.steps > 0]
    steps = time_steps if time_steps is not None else max((c.steps for c in layers), default=1)
    out = _first_tensor(output)
    return ModelCounts(
        model=type(model).__name__,
        layers=layers,
        samples=batch,
        time_steps=int(steps),
        input_values=example_input.numel() // batch,
        output_values=0 if out is None else out.numel() // batch,
        left_out=left_out,
    )
