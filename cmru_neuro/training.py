"""Training: ``train(TrainConfig(...)) -> TrainResult``.

Paper defaults: AdamW (0.9, 0.99), weight decay 1e-4, lr 1e-3 with cosine decay to 1%,
gradient clipping 1.0, batch 64. A tenth of the training rows is held out for validation
(learning curves, convergence, early stopping); the test split is scored once at the end.

With ``out_dir``: ``model.safetensors`` (atomic; the latest weights every
``checkpoint_every`` steps, at the end the weights the test split scored, with the final
metrics; :func:`cmru_neuro.checkpoint.load_checkpoint` reloads it), ``trainer.pt`` (optimiser, schedule, step, RNG: what ``resume`` needs),
``best.safetensors`` (with ``keep_best``), ``metrics.json`` and ``curves.png``.

Epsilon annealing (the authors' way to train a BMRU, on by default for the cells in
:data:`~cmru_neuro.models.ANNEALED_CELLS`): epsilon is held at 1 for ``anneal_hold`` steps,
then decays linearly to 0 over ``anneal_decay`` steps; only evaluations with epsilon
< 1e-5 may become the best checkpoint. ``keep_best``: the test split is scored on the best
eligible validation evaluation's weights (else the last ones).

Data parallel: under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` > 1) the model is
wrapped in DistributedDataParallel (gloo on CPU); every rank draws the same global batch and
trains on its 1/N slice, evaluation is summed over ranks, rank 0 writes the files.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
from torch import nn

from ._checks import check_non_negative_number, check_positive_int, check_positive_number, check_seed
from .checkpoint import load_checkpoint, save_checkpoint
from .files import RunFolder, atomic_write
from .layers import MemoryUnit
from .models import ANNEALED_CELLS, CellChoice, ModelConfig, build_model, dataclass_from_dict
from .schedule import EpsilonSchedule
from .tasks import Split, Task, make_task

CHECKPOINT_NAME = "model.safetensors"
BEST_NAME = "best.safetensors"
TRAINER_NAME = "trainer.pt"
METRICS_NAME = "metrics.json"
CURVES_NAME = "curves.png"
SETTLED_EPSILON = 1e-5  # annealing: checkpoints count as BMRU once epsilon is below this
#: Settings that may differ between a run and its resumption.
RESUMABLE = ("resume", "overwrite", "progress", "time_limit", "out_dir", "device")


@dataclass(kw_only=True)
class TrainConfig(CellChoice):
    """One training run: a task, a :class:`~cmru_neuro.models.CellChoice` and the optimiser.
    ``readout=None``: the task's own readout.

    stop_at: stop once validation accuracy reaches this (None: run all ``steps``); while
        epsilon is annealed, only once it has settled.
    target: accuracy that counts as converged (None: the task's ``solved_at``).
    time_limit: wall-clock budget in seconds for the training loop (None: none).
    eval_every: steps between validation evaluations (None: steps // 20);
        checkpoint_every: between checkpoints (None: eval_every).
    anneal: epsilon annealing (None: on for ``ANNEALED_CELLS``); anneal_hold, anneal_decay:
        its steps at epsilon 1 and of the linear decay to 0.
    keep_best: score the test split with the best eligible validation checkpoint.
    rate_penalty: adds ``rate_penalty * mean(z)^2`` per memory-unit layer (z: update gates).
    resume: continue the run saved in ``out_dir`` (same settings but ``RESUMABLE``).
    overwrite: replace a run already in ``out_dir`` (else such a folder is refused): the
        files the previous run wrote there (``files.RUN_OUTPUTS``) are removed once the run
        is set up, just before training starts; other files in the folder stay.
    device: where the model and batches live (``"cpu"``, ``"cuda"``...).
    """

    task: str = "copy-first"
    task_options: dict = field(default_factory=dict)
    readout: Optional[str] = None
    seed: int = 0
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    final_lr_fraction: float = 0.01
    weight_decay: float = 1e-4
    betas: tuple = (0.9, 0.99)
    clip: float = 1.0
    eval_every: Optional[int] = None
    checkpoint_every: Optional[int] = None
    stop_at: Optional[float] = None
    target: Optional[float] = None
    time_limit: Optional[float] = None
    anneal: Optional[bool] = None
    anneal_hold: int = 1000
    anneal_decay: int = 5000
    keep_best: bool = True
    rate_penalty: float = 0.0
    out_dir: Optional[str] = None
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    device: str = "cpu"

    def __post_init__(self):
        if isinstance(self.steps, int) and self.steps > 0:
            if self.eval_every is None:  # about 20 points on every learning curve
                self.eval_every = max(1, self.steps // 20)
            if self.checkpoint_every is None:
                self.checkpoint_every = self.eval_every
        for name in ("steps", "batch_size", "eval_every", "checkpoint_every"):
            check_positive_int(getattr(self, name), name)
        check_seed(self.seed, "seed")
        # the model settings, checked now (before any work), not when the task is built
        cell_choice = {f.name: getattr(self, f.name) for f in fields(CellChoice)}
        ModelConfig(input_size=1, output_size=1, readout=self.readout or "mean", **cell_choice)
        check_positive_number(self.lr, "lr")
        check_non_negative_number(self.weight_decay, "weight_decay")
        if not self.clip > 0:  # 0 would zero every gradient, a negative one flip them
            raise ValueError(f"clip: expected a positive gradient norm (inf: no clipping), got {self.clip!r}")
        betas = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else ()
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {self.betas!r}")
        if not 0 < self.final_lr_fraction <= 1:
            raise ValueError(f"final_lr_fraction: expected a number in (0, 1], got {self.final_lr_fraction!r}")
        for name in ("anneal_hold", "anneal_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
        check_non_negative_number(self.rate_penalty, "rate_penalty")
        for name in ("stop_at", "target"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name}: expected an accuracy in [0, 1], got {value!r}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit: expected a positive number of seconds, got {self.time_limit!r}")
        if self.resume and self.overwrite:
            raise ValueError("resume, overwrite: expected at most one of them, got both")
        if self.resume and not self.out_dir:
            raise ValueError("resume: expected an out_dir holding the run to continue, got none")
        self.betas = tuple(self.betas)

    @property
    def annealing(self) -> bool:
        """True when epsilon is annealed in this run."""
        return self.cell in ANNEALED_CELLS if self.anneal is None else bool(self.anneal)

    def schedule(self) -> Optional[EpsilonSchedule]:
        """The epsilon schedule of this run, or None."""
        return EpsilonSchedule(self.anneal_hold, self.anneal_decay) if self.annealing else None

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a dict; unknown keys are an error naming the valid ones."""
        return dataclass_from_dict(cls, values, "train config")

    def model_config(self, task: Task) -> ModelConfig:
        """The model for ``task`` (its sizes; its readout unless ``readout`` is set)."""
        values = {f.name: getattr(self, f.name) for f in fields(CellChoice)}
        return ModelConfig(input_size=task.input_size, output_size=task.output_size,
                           readout=self.readout or task.readout, **values)


@dataclass
class TrainResult:
    """config: the run config saved with the checkpoint; metrics: see :func:`train`."""

    config: dict
    metrics: dict
    model: nn.Module
    checkpoint: Optional[Path] = None


def is_main_process() -> bool:
    """True on rank 0 of a torch.distributed job (the one that writes), or without a job."""
    return not dist.is_initialized() or dist.get_rank() == 0


def _leave_job() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class Ranks:
    """This process's place in a torch.distributed job (rank 0 of 1 without one).

    Joins the job (gloo) when ``WORLD_SIZE`` > 1 and leaves it at interpreter exit (a gloo
    group left to the interpreter's teardown can abort the process: "terminate called without
    an active exception"). ``data_parallel``: None uses a job torchrun started
    (``WORLD_SIZE`` > 1), True any initialized one, False acts as rank 0 of 1.
    """

    def __init__(self, data_parallel: Optional[bool]):
        world = int(os.environ.get("WORLD_SIZE", "1"))
        self.enabled = world > 1 if data_parallel is None else bool(data_parallel)
        if self.enabled and world > 1 and not dist.is_initialized():
            dist.init_process_group("gloo")
            atexit.register(_leave_job)
        self.enabled = self.enabled and dist.is_initialized()
        self.rank = dist.get_rank() if self.enabled else 0
        self.world = dist.get_world_size() if self.enabled else 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share_cores(self) -> None:
        """Give each rank of a job of several its share of the CPU cores."""
        if self.world > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.world))

    def sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        return self.sum([float(flag)])[0] > 0


def holdout(split: Split, fraction: float = 0.1) -> tuple[Split, Split]:
    """(train rows, validation rows): the last ``fraction`` of ``split`` (at least one row)."""
    size = max(1, int(len(split) * fraction))
    if size >= len(split):
        raise ValueError(f"task: training split has {len(split)} rows, too few to hold out validation rows")
    return (Split(split.inputs[:-size], split.targets[:-size]),
            Split(split.inputs[-size:], split.targets[-size:]))


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, split: Split, batch_size: int = 64,
             rank: int = 0, world: int = 1) -> dict:
    """``{"loss", "accuracy", "count"}`` of ``model`` on ``split`` (this rank's rows only:
    ``rank::world``; sum ``loss * count`` and correct counts over ranks yourself)."""
    check_positive_int(batch_size, "batch_size")
    was_training = model.training
    model.eval()
    loss_sum, correct, decisions, rows = 0.0, 0, 0, 0
    indices = torch.arange(rank, len(split), world)
    device = next(model.parameters()).device  # batches go where the model is
    for chunk in indices.split(batch_size):
        inputs, targets = (v.to(device) for v in task.batch(split, chunk))
        outputs = model(inputs)
        loss_sum += float(task.loss(outputs, targets)) * len(chunk)
        hits, total = task.correct(outputs, targets)
        correct, decisions, rows = correct + hits, decisions + total, rows + len(chunk)
    model.train(was_training)
    return {"loss": loss_sum / max(rows, 1), "accuracy": correct / max(decisions, 1), "count": rows,
            "correct": correct, "decisions": decisions}


def _evaluate_all(model, task, split, batch_size, ranks: Ranks) -> dict:
    part = evaluate(model, task, split, batch_size, ranks.rank, ranks.world)
    loss_sum, rows, correct, decisions = ranks.sum(
        [part["loss"] * part["count"], part["count"], part["correct"], part["decisions"]]
    )
    return {"loss": loss_sum / max(rows, 1), "accuracy": correct / max(decisions, 1)}


def cosine_schedule(steps: int, final_fraction: float):
    """lr factor at a step: cosine from 1 to ``final_fraction`` over ``steps``."""
    def factor(step: int) -> float:
        progress = min(step, steps) / steps
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def batch_indices(size: int, batch_size: int, seed: int):
    """Endless row indices ``(batch_size,)``: a fresh permutation each epoch, seeded."""
    rng = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(size, generator=rng)
        for start in range(0, size - batch_size + 1 if size >= batch_size else 1, batch_size):
            yield order[start : start + batch_size]


def train(config: TrainConfig | dict, *, data_parallel: Optional[bool] = None) -> TrainResult:
    """Train one model; see the module docstring.

    ``data_parallel``: None = DDP when launched with several processes; False keeps this
    process on its own (seed sweeps split across ranks).

    metrics: ``test_accuracy``, ``test_loss``, ``val_accuracy``, ``val_loss``, ``steps``
    (done), ``seconds``, ``converged`` (test accuracy >= target), ``steps_to_converge``
    (first evaluation step with validation accuracy >= target, else None), ``diverged``
    (non-finite loss), ``parameters``, ``chance`` (:attr:`Task.chance`), ``best_step`` (the weights the test split scored;
    None: the last), ``epsilon`` (annealing: its last value), ``history`` (per evaluation).
    A resumed run gives what the uninterrupted run would have given.
    """
    config = TrainConfig.from_dict(config) if isinstance(config, dict) else config
    ranks = Ranks(data_parallel)
    ranks.share_cores()
    folder = (RunFolder(config.out_dir, overwrite=config.overwrite, resume=config.resume)
              if config.out_dir and ranks.main else None)
    with folder or contextlib.nullcontext():  # checked and locked before any work
        return _train(config, ranks, folder)


class RunInterrupted(KeyboardInterrupt):
    """A training run ended by Ctrl-C or SIGTERM; its message says at which step and where
    its checkpoint and metrics were saved (one line)."""


def _interrupted_message(steps: int, where: Optional[str], step: int, checkpoint_step: Optional[int]) -> str:
    if where is None:
        return f"interrupted at step {step} of {steps}; nothing saved (no out_dir)"
    if checkpoint_step is None:
        return (f"interrupted at step {step} of {steps}, before the first checkpoint; "
                f"metrics (marked interrupted) saved in {where}")
    return (f"interrupted at step {step} of {steps}; checkpoint of step {checkpoint_step} and "
            f"metrics (marked interrupted) saved in {where} (`cmru-neuro train --resume --out {where}` continues it)")


def _train(config: TrainConfig, ranks: Ranks, folder: Optional[RunFolder] = None) -> TrainResult:
    task = make_task(config.task, **config.task_options)
    model_config = config.model_config(task)
    torch.manual_seed(config.seed)
    model = build_model(model_config).to(config.device)
    run_config = {
        "model": model_config.to_dict(),
        "task": {"name": config.task, "options": dict(config.task_options)},
        "training": asdict(config),
    }
    schedule = config.schedule()
    if schedule is not None:
        schedule.apply(model, 0)  # raises when the model has no unit to anneal
    units = [m for m in model.modules() if isinstance(m, MemoryUnit)]
    if config.rate_penalty:
        if not units:
            raise ValueError(f"rate_penalty: cell {config.cell!r} has no memory-unit gates to penalise")
        for unit in units:
            unit.record_update_rate = True
    network = nn.parallel.DistributedDataParallel(model) if ranks.enabled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_schedule(config.steps, config.final_lr_fraction))
    train_rows, val_rows = holdout(task.train)
    target = config.target if config.target is not None else task.solved_at
    out_dir = Path(config.out_dir) if config.out_dir else None
    checkpoint = out_dir / CHECKPOINT_NAME if out_dir else None
    history: list[dict] = []
    metrics = {"parameters": sum(p.numel() for p in model.parameters()), "diverged": False,
               "steps_to_converge": None, "target": target, "best_step": None, "chance": task.chance,
               "history": history}
    loop = {"running": 0.0, "seen": 0, "best": -math.inf, "seconds": 0.0}
    best_weights: Optional[dict] = None
    first = 1
    if config.resume:
        first, best_weights = _resume(out_dir, run_config, model, optimizer, scheduler, metrics, loop)
        history = metrics["history"]
    saved = {"checkpoint": first - 1 if config.resume else None, "step": first - 1}

    def write(step: int, final: bool = False) -> None:
        if out_dir is None or not ranks.main:
            return
        metrics["steps"] = step
        save_checkpoint(checkpoint, model, run_config, metrics)
        if not final:
            state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "rng": torch.get_rng_state(), "loop": dict(loop, seconds=elapsed())}
            _atomic_torch_save(state, out_dir / TRAINER_NAME)
        write_json(out_dir / METRICS_NAME, {"config": run_config, "metrics": metrics})
        saved["checkpoint"] = step
        if final:
            plot_histories({f"{config.cell} seed {config.seed}": history}, out_dir / CURVES_NAME,
                           title=f"{config.task}: {config.cell}", chance=task.chance)

    per_rank = max(1, config.batch_size // ranks.world)
    batches = batch_indices(len(train_rows), min(config.batch_size, len(train_rows)), config.seed)
    for _ in range(first - 1):  # a resumed run draws the batches it would have drawn
        next(batches)
    started = time.perf_counter() - loop["seconds"]

    def elapsed() -> float:
        return time.perf_counter() - started

    def _loop() -> int:
        """The training steps; returns the last step done."""
        nonlocal best_weights
        step = first - 1
        for step in range(first, config.steps + 1):
            saved["step"] = step
            epsilon = schedule.apply(model, step - 1) if schedule is not None else None
            index = next(batches)[ranks.rank :: ranks.world][:per_rank]
            inputs, targets = (v.to(config.device) for v in task.batch(train_rows, index))
            loss = task.loss(network(inputs), targets)
            if config.rate_penalty:
                loss = loss + config.rate_penalty * sum(unit.update_rate.square() for unit in units)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip)
            optimizer.step()
            scheduler.step()
            value = loss.item()
            if ranks.any(not math.isfinite(value)):
                metrics["diverged"] = True
                break
            loop["running"], loop["seen"] = loop["running"] + value, loop["seen"] + 1
            progress.update(1)
            out_of_time = config.time_limit is not None and ranks.any(elapsed() > config.time_limit)
            if step % config.eval_every == 0 or step == config.steps or out_of_time:
                val = _evaluate_all(model, task, val_rows, config.batch_size, ranks)
                history.append({"step": step, "train_loss": loop["running"] / max(loop["seen"], 1),
                                "val_loss": val["loss"], "val_accuracy": val["accuracy"],
                                "lr": scheduler.get_last_lr()[0], "seconds": elapsed(),
                                **({} if epsilon is None else {"epsilon": epsilon})})
                loop["running"], loop["seen"] = 0.0, 0
                progress.set_postfix(loss=f"{history[-1]['train_loss']:.3f}", val=f"{val['accuracy']:.3f}")
                if target is not None and metrics["steps_to_converge"] is None and val["accuracy"] >= target:
                    metrics["steps_to_converge"] = step
                eligible = epsilon is None or epsilon < SETTLED_EPSILON
                if config.keep_best and eligible and val["accuracy"] > loop["best"]:
                    loop["best"], metrics["best_step"] = val["accuracy"], step
                    best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    if out_dir is not None and ranks.main:
                        save_checkpoint(out_dir / BEST_NAME, model, run_config, metrics)
                if (config.stop_at is not None and eligible and val["accuracy"] >= config.stop_at) or out_of_time:
                    break
            if step % config.checkpoint_every == 0:
                write(step)
        return step

    if config.overwrite and folder is not None:
        folder.clear()  # set up without error: the previous run's files go, none is mistaken for ours
    progress = _progress(config, ranks.main, first - 1)
    network.train()
    step = first - 1
    try:
        step = _loop()
    except KeyboardInterrupt:  # the last checkpoint stays as it was; say what happened
        progress.close()
        if out_dir is not None and ranks.main:
            done = history[-1]["step"] if history else first - 1
            metrics.update(interrupted=True, seconds=elapsed(), steps=done)
            write_json(out_dir / METRICS_NAME, {"config": run_config, "metrics": metrics})
            plot_histories({f"{config.cell} seed {config.seed} (interrupted)": history}, out_dir / CURVES_NAME,
                           title=f"{config.task}: {config.cell} (interrupted at step {done})", chance=task.chance)
        if not ranks.main and out_dir is not None:
            raise RunInterrupted(f"interrupted at step {saved['step']} of {config.steps} (rank {ranks.rank}; "
                                 f"rank 0 saves the run in {out_dir})") from None
        raise RunInterrupted(_interrupted_message(config.steps, config.out_dir, saved["step"],
                                                  saved["checkpoint"])) from None
    progress.close()
    metrics["interrupted"] = False
    metrics["seconds"] = elapsed()
    if schedule is not None:
        metrics["epsilon"] = schedule(step - 1)
    if history:
        metrics["val_accuracy"], metrics["val_loss"] = history[-1]["val_accuracy"], history[-1]["val_loss"]
    metrics["steps"] = step
    write(step)  # the latest weights, resumable
    if best_weights is not None:
        model.load_state_dict(best_weights)
    test = _evaluate_all(model, task, task.test, config.batch_size, ranks)
    metrics.update(test_accuracy=test["accuracy"], test_loss=test["loss"])
    metrics["converged"] = bool(target is not None and not metrics["diverged"] and test["accuracy"] >= target)
    if best_weights is None:  # a resumed run whose best checkpoint is gone scores its last weights
        metrics["best_step"] = None
    write(step, final=True)
    if best_weights is not None and out_dir is not None and ranks.main:
        save_checkpoint(out_dir / BEST_NAME, model, run_config, metrics)
        checkpoint = out_dir / BEST_NAME
    return TrainResult(run_config, metrics, model, checkpoint)


def _resume(out_dir: Path, run_config: dict, model: nn.Module, optimizer, scheduler,
            metrics: dict, loop: dict) -> tuple[int, Optional[dict]]:
    """Load the run saved in ``out_dir`` into the objects given; returns ``(first step to
    run, best weights or None)``. The saved settings must equal ``run_config``'s (but
    ``RESUMABLE``)."""
    trainer, saved = out_dir / TRAINER_NAME, out_dir / CHECKPOINT_NAME
    if not trainer.is_file() or not saved.is_file():
        raise FileNotFoundError(f"resume: {out_dir} holds no resumable run (needs {CHECKPOINT_NAME} and {TRAINER_NAME})")
    previous = load_checkpoint(saved)
    mine = {k: v for k, v in run_config["training"].items() if k not in RESUMABLE}
    mine = json.loads(json.dumps(mine, default=_jsonable))
    theirs = {k: v for k, v in previous.config.get("training", {}).items() if k not in RESUMABLE}
    if mine != theirs or previous.config["model"] != run_config["model"]:
        changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)) or ["model"]
        raise ValueError(f"resume: {out_dir} holds a run with other settings ({', '.join(changed)}); "
                         f"resume with the same settings or train into a new folder")
    state = torch.load(trainer, weights_only=True)
    model.load_state_dict(previous.model.state_dict())
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    loop.update(state["loop"])
    saved_metrics = dict(previous.metrics)
    saved_metrics["history"] = [row for row in saved_metrics.get("history", []) if row["step"] <= state["step"]]
    metrics.update(saved_metrics)
    best = None
    if metrics.get("best_step") is not None and (out_dir / BEST_NAME).is_file():
        best = load_checkpoint(out_dir / BEST_NAME).model.state_dict()
    torch.set_rng_state(state["rng"])
    return state["step"] + 1, best


def _atomic_torch_save(data: dict, path: Path) -> None:
    atomic_write(path, lambda temporary: torch.save(data, temporary))


def _progress(config: TrainConfig, show: bool, done: int = 0):
    """A progress bar on a terminal; none when stderr is a file or pipe (a log stays lines)."""
    from tqdm.auto import tqdm

    on_terminal = sys.stderr.isatty()
    return tqdm(total=config.steps, initial=done, desc=f"{config.task} {config.cell} s{config.seed}",
                disable=not (config.progress and show and on_terminal), leave=False, dynamic_ncols=True)


def write_json(path: Path, data) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    text = json.dumps(data, indent=2, default=_jsonable)
    atomic_write(path, lambda temporary: temporary.write_text(text))


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def plot_histories(histories: dict, path: Path, title: str = "", chance: Optional[float] = None) -> Path:
    """Learning curves (validation loss and accuracy vs step) -> PNG. ``histories`` maps a
    label to a history; labels sharing their first word (a cell name) share a colour.
    ``chance``: the accuracy of the best constant answer, drawn as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    colours: dict[str, str] = {}
    for label, history in histories.items():
        group = label.split()[0] if label.split() else label
        steps = [row["step"] for row in history]
        style = {"color": colours.get(group), "label": None if group in colours else group,
                 "marker": "o", "markersize": 3}
        line, = loss_axis.plot(steps, [row["val_loss"] for row in history], **style)
        colours.setdefault(group, line.get_color())
        accuracy_axis.plot(steps, [row["val_accuracy"] for row in history], color=line.get_color(),
                           marker="o", markersize=3)
    if chance is not None:
        accuracy_axis.axhline(chance, color="grey", linestyle="--", linewidth=1, label=f"chance {chance:.2f}")
        accuracy_axis.legend(fontsize=8, loc="lower right")
    loss_axis.set(xlabel="step", ylabel="validation loss", yscale="log")
    accuracy_axis.set(xlabel="step", ylabel="validation accuracy", ylim=(0, 1.02))
    handles, labels = loss_axis.get_legend_handles_labels()
    figure.suptitle(title)
    if handles:  # below the axes, never over their labels
        figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.08 if handles else 0, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


__all__ = ["RunInterrupted", "TrainConfig", "TrainResult", "evaluate", "plot_histories", "train"]
