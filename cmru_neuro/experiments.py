"""Experiments on the paper's claims: cell comparison, initialisation sensitivity, noise
robustness. Each returns records and writes a markdown table, JSON and PNG plots.

Under ``torchrun --nproc_per_node=N`` the runs of a sweep are split across ranks (run i on
rank i mod N, each without data parallelism); every rank gets all records, rank 0 writes.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
from dataclasses import asdict, replace
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ._checks import check_distinct, check_non_negative_number, check_positive_int
from .baselines import LRU, MinGRU
from .checkpoint import Checkpoint
from .files import RunFolder, claim_folders
from .functional import linear_scan
from .layers import MemoryUnit
from .models import fit_width
from .tasks import Split, Task, make_task
from .training import Ranks, TrainConfig, is_main_process, plot_histories, train, write_json

MISMATCH_LEVELS = (0.05, 0.10, 0.15)


# --------------------------------------------------------------------------------------
# Running sweeps
# --------------------------------------------------------------------------------------


def run_sweep(configs: Sequence[TrainConfig]) -> list[dict]:
    """Train every config; returns each run's metrics (history included), in order.

    Every run's folder (``out_dir``) is checked before any run starts (:func:`claim_sweep`),
    so a used folder (or two runs naming one) is refused before any training; this
    process's runs' folders stay locked until the sweep ends."""
    ranks = Ranks(data_parallel=True)
    ranks.share_cores()
    with claim_sweep([_folder(config) if config.out_dir else None for config in configs]):
        mine = {index: train(config, data_parallel=False).metrics
                for index, config in enumerate(configs) if index % ranks.world == ranks.rank}
    if ranks.world > 1:
        gathered: list = [None] * ranks.world
        dist.all_gather_object(gathered, mine)
        mine = {index: metrics for part in gathered for index, metrics in part.items()}
    return [mine[index] for index in range(len(configs))]


@contextlib.contextmanager
def claim_sweep(folders: Sequence[Optional[RunFolder]], extra: Sequence[RunFolder] = ()) -> Iterator[None]:
    """Claim a sweep's folders before any of its runs starts: ``folders[i]`` is run i's (or
    None), trained on rank ``i mod N``; ``extra`` are written by rank 0 (a summary).

    Every rank checks every folder and locks its own (:func:`~cmru_neuro.files.claim_folders`);
    then the ranks compare notes, so a refusal on one stops all of them before any writes
    (no rank waits forever for one that failed). Nested claims of the same folders pass.
    """
    ranks = Ranks(data_parallel=True)
    own, others = [], []
    for index, folder in enumerate(folders):
        if folder is not None:
            (own if index % ranks.world == ranks.rank else others).append(folder)
    (own if ranks.main else others).extend(extra)
    with contextlib.ExitStack() as stack:
        error: Optional[Exception] = None
        try:
            stack.enter_context(claim_folders(own, checked=others))
        except (ValueError, OSError) as caught:
            error = caught
        if ranks.world > 1:  # nobody has written yet: every check saw the folders as they were
            notes: list = [None] * ranks.world
            dist.all_gather_object(notes, None if error is None else str(error))
            if error is None and any(notes):
                raise ValueError(next(note for note in notes if note))
        if error is not None:
            raise error
        yield


def _folder(config: TrainConfig) -> RunFolder:
    return RunFolder(config.out_dir, overwrite=config.overwrite, resume=config.resume)


def _summary_folder(out_dir: Optional[str], name: str, overwrite: bool) -> Optional[RunFolder]:
    """The folder of an experiment's summary (``name``.md/.json/.png): refused when it holds
    one already (unless ``overwrite``), locked while the experiment runs."""
    if not out_dir:
        return None
    files = tuple(f"{name}.{ext}" for ext in ("md", "json", "png"))
    return RunFolder(out_dir, overwrite=overwrite, marks=files, outputs=files, what=f"a {name} result")


def _run_dir(out_dir: Optional[Path], *parts) -> Optional[str]:
    return str(out_dir.joinpath(*map(str, parts))) if out_dir else None


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * spread:.1f}"


def _summary(metrics: list[dict]) -> dict:
    """Aggregate a group of runs: accuracies, convergence, steps and time."""
    converged = [m for m in metrics if m["converged"]]
    steps = [m["steps_to_converge"] for m in metrics if m["steps_to_converge"] is not None]
    return {
        "runs": len(metrics),
        "accuracy": [m["test_accuracy"] for m in metrics],
        "test_loss": [m["test_loss"] for m in metrics],
        "converged": len(converged) / max(len(metrics), 1),
        "steps_to_converge": statistics.mean(steps) if steps else None,
        "diverged": sum(m["diverged"] for m in metrics),
        "seconds": statistics.mean(m["seconds"] for m in metrics),
        "parameters": metrics[0]["parameters"] if metrics else 0,
    }


# --------------------------------------------------------------------------------------
# Compare cells
# --------------------------------------------------------------------------------------


def sized(base: TrainConfig, cell: str, budget: Optional[int]) -> TrainConfig:
    """``base`` for ``cell``; with ``budget``, its width set so that the model's parameter
    count is the closest to ``budget`` (:func:`~cmru_neuro.models.fit_width`)."""
    config = replace(base, cell=cell)
    if budget is None:
        return config
    width = fit_width(config.model_config(make_task(config.task, **config.task_options)), budget).hidden
    return replace(config, hidden=width)


def compare(base: TrainConfig, cells: Sequence[str], seeds: Sequence[int],
            out_dir: Optional[str] = None, budget: Optional[int] = None) -> dict:
    """Train ``cells`` x ``seeds`` with ``base``'s other settings (``budget``: each cell
    sized to that many parameters, see :func:`sized`).

    Returns ``{"table": markdown, "summary": {cell: ...}, "runs": [...]}``; with ``out_dir``
    writes ``compare.md``, ``compare.json``, ``compare.png`` and one folder per run.
    """
    folder = Path(out_dir) if out_dir else None
    check_distinct(cells, "cells", "cells")
    runs = [replace(base, cell=cell, seed=seed, out_dir=_run_dir(folder, f"{cell}-s{seed}"))
            for cell in cells for seed in seeds]
    summary = _summary_folder(out_dir, "compare", base.overwrite)
    # the summary's folder and every run's, checked and locked before any work (sizing included)
    with claim_sweep([_folder(c) if c.out_dir else None for c in runs], [summary] if summary else []):
        if summary is not None and base.overwrite and is_main_process():
            summary.clear()
        per_cell = {cell: sized(base, cell, budget) for cell in cells}
        configs = [replace(per_cell[c.cell], seed=c.seed, out_dir=c.out_dir) for c in runs]
        return _compare(base, cells, seeds, folder, budget, per_cell, configs)


def _compare(base, cells, seeds, folder, budget, per_cell, configs) -> dict:
    metrics = run_sweep(configs)
    runs = [{"cell": c.cell, "seed": c.seed, "metrics": m} for c, m in zip(configs, metrics)]
    summary = {cell: _summary([r["metrics"] for r in runs if r["cell"] == cell]) for cell in cells}
    target = metrics[0]["target"] if metrics else None
    lines = [
        f"| cell | width | parameters | test accuracy % (mean ± std) | converged (acc ≥ {target}) | steps to converge | test loss | s / run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell, row in summary.items():
        steps = "-" if row["steps_to_converge"] is None else f"{row['steps_to_converge']:.0f}"
        lines.append(
            f"| {cell} | {per_cell[cell].hidden} | {row['parameters']} | {_mean_std(row['accuracy'])} | "
            f"{row['converged'] * row['runs']:.0f}/{row['runs']} | {steps} | "
            f"{statistics.mean(row['test_loss']):.3g} | {row['seconds']:.0f} |"
        )
    result = {"table": "\n".join(lines), "summary": summary, "runs": runs, "config": asdict(base),
              "cells": list(cells), "seeds": list(seeds), "budget": budget,
              "widths": {cell: config.hidden for cell, config in per_cell.items()}}
    if folder and is_main_process():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "compare.md").write_text(result["table"] + "\n")
        write_json(folder / "compare.json", result)
        plot_histories({f"{r['cell']} s{r['seed']}": r["metrics"]["history"] for r in runs},
                       folder / "compare.png", title=f"{base.task}: validation curves",
                       chance=metrics[0]["chance"] if metrics else None)
    return result


# --------------------------------------------------------------------------------------
# Initialisation sensitivity
# --------------------------------------------------------------------------------------


def sensitivity(base: TrainConfig, cells: Sequence[str], init_scales: Sequence[float],
                threshold_biases: Sequence[float], seeds: Sequence[int],
                out_dir: Optional[str] = None) -> dict:
    """Fraction of seeds that converge for each cell x input-weight scale x threshold bias.

    Writes ``sensitivity.md``, ``sensitivity.json`` and ``sensitivity.png`` (one heat map
    of the converged fraction per cell).
    """
    folder = Path(out_dir) if out_dir else None
    grid = [(cell, scale, bias) for cell in cells for scale in init_scales for bias in threshold_biases]
    configs = [replace(base, cell=cell, init_scale=scale, threshold_bias=bias, seed=seed, out_dir=None)
               for cell, scale, bias in grid for seed in seeds]
    summary = _summary_folder(out_dir, "sensitivity", base.overwrite)
    with claim_sweep([], [summary] if summary else []):  # checked and locked before any run starts
        if summary is not None and base.overwrite and is_main_process():
            summary.clear()
        return _sensitivity(base, cells, init_scales, threshold_biases, seeds, folder, grid, configs)


def _sensitivity(base, cells, init_scales, threshold_biases, seeds, folder, grid, configs) -> dict:
    metrics = run_sweep(configs)
    per_seed = len(seeds)
    rows = []
    for index, (cell, scale, bias) in enumerate(grid):
        group = _summary(metrics[index * per_seed : (index + 1) * per_seed])
        rows.append({"cell": cell, "init_scale": scale, "threshold_bias": bias, **group})
    lines = ["| cell | init scale | threshold bias | converged | test accuracy % (mean ± std) |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['cell']} | {r['init_scale']} | {r['threshold_bias']} | "
              f"{r['converged'] * r['runs']:.0f}/{r['runs']} | {_mean_std(r['accuracy'])} |" for r in rows]
    overall = {cell: statistics.mean(r["converged"] for r in rows if r["cell"] == cell) for cell in cells}
    lines += ["", "| cell | converged over the whole grid |", "|---|---|"]
    lines += [f"| {cell} | {100 * fraction:.0f}% |" for cell, fraction in overall.items()]
    result = {"table": "\n".join(lines), "rows": rows, "overall": overall, "config": asdict(base)}
    if folder and is_main_process():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sensitivity.md").write_text(result["table"] + "\n")
        write_json(folder / "sensitivity.json", result)
        _plot_sensitivity(rows, cells, init_scales, threshold_biases, folder / "sensitivity.png")
    return result


def _plot_sensitivity(rows, cells, scales, biases, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(cells), figsize=(4 * len(cells), 3.6), squeeze=False,
                                constrained_layout=True)
    for index, (axis, cell) in enumerate(zip(axes[0], cells)):
        grid = [[next(r["converged"] for r in rows if r["cell"] == cell and r["init_scale"] == s
                      and r["threshold_bias"] == b) for b in biases] for s in scales]
        image = axis.imshow(grid, vmin=0, vmax=1, cmap="viridis", origin="lower")
        axis.set(title=f"{cell}: fraction converged", xlabel="threshold bias",
                 ylabel="init scale" if index == 0 else "",
                 xticks=range(len(biases)), xticklabels=biases, yticks=range(len(scales)), yticklabels=scales)
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                axis.text(j, i, f"{value:.2f}", ha="center", va="center", color="w" if value < 0.6 else "k")
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --------------------------------------------------------------------------------------
# Noise robustness
# --------------------------------------------------------------------------------------


def perturb_parameters(model: nn.Module, level: float, generator: torch.Generator) -> nn.Module:
    """A copy of ``model`` with mismatch: every parameter ``theta * (1 + N(0, (level/3)^2))``
    (``level`` 0.05 = 5%: three sigma of the spread)."""
    perturbed = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in perturbed.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            parameter.mul_(1 + noise * (level / 3))
    return perturbed


def _state_drift(module: nn.Module, inputs: Tensor, noise: Tensor) -> Tensor:
    """How per-step noise added to a cell's state shows in its outputs ``(T, B, H)``.

    The noise enters the recurrence and is carried by it: ``n'_t = a_t n'_{t-1} + n_t`` with
    the cell's own decay ``a_t`` (gates depend on the input only, so this is exact).
    """
    if isinstance(module, MemoryUnit):
        decay = module.update(module.currents(inputs)).decay
        return linear_scan(decay, noise)[0]
    if isinstance(module, MinGRU):
        gate = module.projection(inputs).chunk(2, dim=-1)[0]
        return linear_scan(1 - torch.sigmoid(gate), noise)[0]
    if isinstance(module, LRU):
        carried = linear_scan(module.eigenvalues.expand(noise.shape), torch.complex(noise, torch.zeros_like(noise)))[0]
        return (carried @ torch.complex(module.C_re, module.C_im).transpose(0, 1)).real
    raise TypeError(f"state noise: not defined for {type(module).__name__} (memory units, LRU, minGRU)")


def _cells(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (MemoryUnit, MinGRU, LRU))]


@torch.no_grad()
def noisy_accuracy(model: nn.Module, task: Task, split: Split, generator: torch.Generator,
                   input_noise: float = 0.0, state_noise: float = 0.0, batch_size: int = 64) -> float:
    """Accuracy with Gaussian noise of std ``input_noise`` on the input features and
    ``state_noise`` on every cell's state at every step (carried by the recurrence)."""
    def add_state_noise(module, args, output):
        outputs = output[0]
        drift = _state_drift(module, args[0], state_noise * torch.randn(outputs.shape, generator=generator))
        return (outputs + drift, *output[1:])

    handles = [cell.register_forward_hook(add_state_noise) for cell in _cells(model)] if state_noise else []
    try:
        model.eval()
        correct = total = 0
        for chunk in torch.arange(len(split)).split(batch_size):
            inputs, targets = task.batch(split, chunk)
            if input_noise:
                inputs = inputs + input_noise * torch.randn(inputs.shape, generator=generator)
            hits, count = task.correct(model(inputs), targets)
            correct, total = correct + hits, total + count
    finally:
        for handle in handles:
            handle.remove()
    return correct / max(total, 1)


def robustness(checkpoints: Sequence[Checkpoint], levels: Iterable[float] = MISMATCH_LEVELS,
               trials: int = 10, input_noise: Iterable[float] = (), state_noise: Iterable[float] = (),
               samples: Optional[int] = None, seed: int = 0, out_dir: Optional[str] = None) -> dict:
    """Accuracy under parameter mismatch, input noise and state noise, per cell.

    Each checkpoint is scored on (the first ``samples`` rows of) its task's test split:
    clean once, then ``trials`` draws per mismatch level and noise level. Checkpoints of
    the same cell (several seeds) are pooled. Writes ``robustness.md``/``.json``/``.png``.
    """
    levels, input_noise, state_noise = list(levels), list(input_noise), list(state_noise)
    check_positive_int(trials, "trials")
    if samples is not None:
        check_positive_int(samples, "samples")
    for name, values in (("levels", levels), ("input_noise", input_noise), ("state_noise", state_noise)):
        for value in values:
            check_non_negative_number(value, name)
    conditions = ([("clean", 0.0)] + [("mismatch", p) for p in levels]
                  + [("input", s) for s in input_noise] + [("state", s) for s in state_noise])
    scores: dict[str, dict[tuple, list[float]]] = {}
    generator = torch.Generator().manual_seed(seed)
    for checkpoint in checkpoints:
        task = checkpoint.make_task()
        split = task.test if samples is None else Split(task.test.inputs[:samples], task.test.targets[:samples])
        cell = checkpoint.config["model"]["cell"]
        table = scores.setdefault(cell, {condition: [] for condition in conditions})
        for kind, amount in conditions:
            for _ in range(1 if kind == "clean" else trials):
                model = perturb_parameters(checkpoint.model, amount, generator) if kind == "mismatch" else checkpoint.model
                table[(kind, amount)].append(noisy_accuracy(
                    model, task, split, generator, input_noise=amount if kind == "input" else 0.0,
                    state_noise=amount if kind == "state" else 0.0,
                ))
    header = ["cell", *(_condition_label(kind, amount) for kind, amount in conditions)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell, table in scores.items():
        lines.append(f"| {cell} | " + " | ".join(_mean_std(table[c]) for c in conditions) + " |")
    result = {
        "table": "\n".join(lines), "conditions": [list(c) for c in conditions], "trials": trials,
        "scores": {cell: {f"{k}:{a}": v for (k, a), v in table.items()} for cell, table in scores.items()},
    }
    if out_dir and is_main_process():
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "robustness.md").write_text(result["table"] + "\n")
        write_json(folder / "robustness.json", result)
        _plot_robustness(scores, conditions, folder / "robustness.png")
    return result


def _condition_label(kind: str, amount: float) -> str:
    if kind == "clean":
        return "clean"
    if kind == "mismatch":
        return f"mismatch {100 * amount:g}%"
    return f"{kind} noise σ={amount:g}"


def _plot_robustness(scores: dict, conditions: list, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure = robustness_figure(scores, conditions)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def robustness_figure(scores: dict, conditions: list):
    """Accuracy against each noise kind, one panel per kind, the cells' legend below the
    panels. ``scores``: ``{cell: {(kind, amount): [accuracies]}}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [kind for kind in ("mismatch", "input", "state") if any(k == kind for k, _ in conditions)]
    figure, axes = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 3.6), squeeze=False)
    for axis, kind in zip(axes[0], kinds):
        amounts = [0.0] + [a for k, a in conditions if k == kind]
        for cell, table in scores.items():
            values = [table[("clean", 0.0)]] + [table[(kind, a)] for a in amounts[1:]]
            means = [statistics.mean(v) for v in values]
            spreads = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
            axis.errorbar([100 * a if kind == "mismatch" else a for a in amounts], means, yerr=spreads,
                          label=cell, marker="o", capsize=3)
        axis.set(xlabel="mismatch p (%)" if kind == "mismatch" else f"{kind} noise std",
                 ylabel="test accuracy", ylim=(0, 1.02), title=kind)
    handles, labels = axes[0][0].get_legend_handles_labels()
    rows = -(-len(labels) // 8)  # below the axes, never over the curves (8 cells a row)
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.06 * rows + 0.02, 1, 1))
    return figure


__all__ = ["claim_sweep", "compare", "sized", "noisy_accuracy", "perturb_parameters", "robustness", "run_sweep", "sensitivity"]
