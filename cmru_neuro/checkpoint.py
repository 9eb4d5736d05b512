"""Checkpoints: one safetensors file holding the weights and, in its metadata, the run's
JSON config and metrics, and the epsilon of every memory unit whose epsilon is scheduled (an
annealed BMRU reloads at the epsilon it was saved at, not at its config's starting value). Written to a temporary file in the same folder, then renamed
(``os.replace``): a run killed at any moment leaves the previous checkpoint intact.

``config`` is the run's config: a dict with at least ``"model"`` (a
:class:`~cmru_neuro.models.ModelConfig` dict); training adds ``"task"`` (``{"name": ...,
"options": {...}}``) and ``"training"``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .files import atomic_write
from .layers import MemoryUnit
from .models import ModelConfig, build_model

FORMAT = "cmru-neuro/1"
METADATA_KEY = "cmru_neuro"
PathLike = Union[str, os.PathLike]


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (eval mode), the run config, the metrics."""

    model: nn.Module
    config: dict
    metrics: dict = field(default_factory=dict)

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.config["model"])

    def make_task(self, **overrides):
        """The task the model was trained on (config ``"task"``), options overridable."""
        from .tasks import make_task

        if "task" not in self.config:
            raise ValueError("checkpoint: its config names no task (no 'task' entry)")
        task = self.config["task"]
        return make_task(task["name"], **{**task.get("options", {}), **overrides})


def save_checkpoint(path: PathLike, model: nn.Module, config: dict, metrics: Optional[dict] = None) -> Path:
    """Write ``model``'s weights with ``config`` and ``metrics`` atomically to ``path``.

    ``model`` may be wrapped (DistributedDataParallel); its weights must match what
    ``config["model"]`` builds. Returns the path.
    """
    path = Path(path)
    model = getattr(model, "module", model)
    if not isinstance(config, dict) or "model" not in config:
        raise ValueError("config: expected a dict with a 'model' entry (a ModelConfig dict)")
    model_config = _model_config(config["model"]).to_dict()
    config = {**config, "model": model_config}
    with torch.random.fork_rng(devices=[]):  # building the reference model leaves the caller's RNG alone
        reference = build_model(model_config).state_dict()
    _check_weights(reference, model.state_dict(), f"model ({type(model).__name__})")
    tensors = {name: value.detach().cpu().contiguous().clone() for name, value in model.state_dict().items()}
    header = json.dumps({"format": FORMAT, "config": config, "metrics": metrics or {},
                         "epsilon": scheduled_epsilon(model)})
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda temporary: save_file(tensors, str(temporary), metadata={METADATA_KEY: header}))


def load_checkpoint(path: PathLike, expect: Optional[dict] = None) -> Checkpoint:
    """Rebuild the model saved at ``path``.

    ``expect``: model-config values the checkpoint must have, e.g. ``{"arch": "stack"}`` or
    ``{"arch": "stack", "cell": "cmru"}``; a checkpoint of another architecture, a file
    that is not a cmru-neuro checkpoint, or weights that do not fit the config raise a
    ValueError saying which.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"checkpoint {path}: not a readable safetensors file ({error})") from None
    try:
        header = json.loads(metadata[METADATA_KEY])
        if header["format"] != FORMAT:
            raise ValueError(f"format {header['format']!r}, this version reads {FORMAT!r}")
        config, metrics = header["config"], header.get("metrics", {})
        model_config = _model_config(config["model"])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"checkpoint {path}: not a cmru-neuro checkpoint (missing or malformed {error})") from None
    except ValueError as error:
        raise ValueError(f"checkpoint {path}: {error}") from None
    _check_finite(path, tensors)
    _check_expected(path, model_config, expect or {})
    with torch.random.fork_rng(devices=[]):
        model = build_model(model_config)
    _check_weights(model.state_dict(), tensors, f"checkpoint {path}")
    model.load_state_dict(tensors)
    _restore_epsilon(path, model, header.get("epsilon", {}))
    model.eval()
    return Checkpoint(model, config, metrics)


def scheduled_epsilon(model: nn.Module) -> dict:
    """``{module name: epsilon}`` of the memory units whose epsilon a schedule may change."""
    return {name: module.epsilon for name, module in model.named_modules()
            if isinstance(module, MemoryUnit) and module.schedulable}


def _restore_epsilon(path: Path, model: nn.Module, saved) -> None:
    units = scheduled_epsilon(model)
    if not isinstance(saved, dict) or not set(saved) <= set(units):
        raise ValueError(f"checkpoint {path}: its epsilon entry names no scheduled memory units of the "
                         f"model (got {sorted(saved) if isinstance(saved, dict) else type(saved).__name__})")
    for name, value in saved.items():
        model.get_submodule(name).epsilon = value


def _model_config(values) -> ModelConfig:
    if isinstance(values, ModelConfig):
        return values
    if not isinstance(values, dict):
        raise ValueError(f"model config: expected a dict, got {type(values).__name__}")
    return ModelConfig.from_dict(values)


def _check_finite(path: Path, tensors: dict) -> None:
    """Refuse weights holding NaN or inf, naming the tensors."""
    bad = [name for name, tensor in tensors.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        raise ValueError(f"checkpoint {path}: non-finite (NaN or inf) values in {', '.join(bad[:5])}"
                         f"{' ...' if len(bad) > 5 else ''}; the run that wrote it diverged")


def _check_expected(path: Path, config: ModelConfig, expect: dict) -> None:
    saved = config.to_dict()
    unknown = sorted(set(expect) - set(saved))
    if unknown:
        raise ValueError(f"expect: unknown model-config key(s) {', '.join(unknown)}; valid keys: {', '.join(saved)}")
    wrong = {key: value for key, value in expect.items() if saved[key] != value}
    if wrong:
        held = ", ".join(f"{key}={saved[key]!r}" for key in wrong)
        wanted = ", ".join(f"{key}={value!r}" for key, value in wrong.items())
        raise ValueError(
            f"checkpoint {path}: holds a model with {held} (cell={config.cell!r}, arch={config.arch!r}); expected {wanted}"
        )


def _check_weights(expected: dict, actual: dict, what: str) -> None:
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(actual) if expected[k].shape != actual[k].shape)
    if missing or unexpected or reshaped:
        parts = [
            f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
            for label, names in (("missing", missing), ("unexpected", unexpected), ("other shape", reshaped))
            if names
        ]
        raise ValueError(f"{what}: weights do not match the architecture of its config ({'; '.join(parts)})")


__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]
