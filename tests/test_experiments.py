"""Experiments: tables and files of compare / sensitivity / robustness, and the noise models."""

import statistics

import pytest
import torch

from cmru_neuro.baselines import LRU, MinGRU, _g
from cmru_neuro.checkpoint import load_checkpoint, save_checkpoint
from cmru_neuro.experiments import (
    _state_drift,
    compare,
    noisy_accuracy,
    perturb_parameters,
    robustness,
    sensitivity,
)
from cmru_neuro.layers import BMRU, CMRU
from cmru_neuro.models import build_model
from cmru_neuro.tasks import make_task
from cmru_neuro.training import TrainConfig

BASE = TrainConfig(task="copy-first", task_options=dict(length=6, classes=2, train_size=60, test_size=12),
                   hidden=4, steps=2, eval_every=1, progress=False)


def test_compare_writes_a_table_with_one_row_per_cell_and_the_files(tmp_path):
    result = compare(BASE, ["cmru", "lru"], [0, 1], str(tmp_path))  # 4 tiny runs
    lines = result["table"].splitlines()
    assert lines[0].startswith("| cell | width | parameters | test accuracy") and len(lines) == 4
    assert lines[2].startswith("| cmru |") and "/2 |" in lines[2]
    assert {"compare.md", "compare.json", "compare.png", "cmru-s0", "lru-s1"} <= {p.name for p in tmp_path.iterdir()}
    runs = result["summary"]["cmru"]
    assert runs["runs"] == 2 and len(runs["accuracy"]) == 2


def test_sensitivity_reports_every_grid_point(tmp_path):
    result = sensitivity(BASE, ["bmru", "cmru"], [0.5, 2.0], [1.0], [0], str(tmp_path))
    assert len(result["rows"]) == 4
    assert {(r["cell"], r["init_scale"]) for r in result["rows"]} == {("bmru", 0.5), ("bmru", 2.0), ("cmru", 0.5), ("cmru", 2.0)}
    assert (tmp_path / "sensitivity.png").exists() and set(result["overall"]) == {"bmru", "cmru"}


def test_mismatch_multiplies_every_parameter_by_one_plus_gaussian_with_sigma_p_over_3():
    model = build_model(dict(input_size=3, output_size=2, hidden=64))
    perturbed = perturb_parameters(model, 0.15, torch.Generator().manual_seed(0))
    with torch.no_grad():
        ratios = torch.cat([(q / p).flatten()[p.flatten() != 0] for p, q in zip(model.parameters(), perturbed.parameters())])
    assert abs(float(ratios.mean()) - 1) < 0.01 and abs(float(ratios.std()) - 0.05) < 0.005
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), perturb_parameters(model, 0.0, torch.Generator()).parameters()))


def injected_loop(cell, x, noise):
    """Each cell's recurrence written out step by step with ``noise[t]`` added to the state."""
    outputs = []
    if isinstance(cell, (CMRU, BMRU)):
        h = cell.initial_state(x.shape[1])
        for t in range(x.shape[0]):
            currents = cell.currents(x[t])
            update = cell.update(currents)
            h = update.decay * h + cell.alpha * update.events + noise[t]
            outputs.append(h)
    elif isinstance(cell, MinGRU):
        gate, hidden = cell.projection(x).chunk(2, dim=-1)
        h = torch.zeros_like(noise[0])
        for t in range(x.shape[0]):
            z = torch.sigmoid(gate[t])
            h = (1 - z) * h + z * _g(hidden[t]) + noise[t]
            outputs.append(h)
    else:
        B = torch.complex(cell.B_re, cell.B_im) * torch.exp(cell.gamma_log).unsqueeze(-1)
        C = torch.complex(cell.C_re, cell.C_im)
        h = torch.zeros(noise.shape[1:], dtype=torch.complex64)
        for t in range(x.shape[0]):
            h = cell.eigenvalues * h + x[t].to(torch.complex64) @ B.T + noise[t]
            outputs.append((h @ C.T).real + x[t] @ cell.D.T)
    return torch.stack(outputs)


@pytest.mark.parametrize("cell_type", [CMRU, BMRU, MinGRU, LRU])
def test_state_noise_is_carried_by_each_cells_own_recurrence(cell_type):
    cell = cell_type(3, 5)
    x, noise = torch.randn(9, 2, 3), 0.1 * torch.randn(9, 2, 5)
    with torch.no_grad():
        clean, _ = cell(x)
        assert torch.allclose(clean + _state_drift(cell, x, noise), injected_loop(cell, x, noise), atol=1e-5)


def test_noise_free_scores_equal_plain_evaluation_and_noise_changes_them():
    task = make_task("copy-first", length=6, classes=2, train_size=60, test_size=40)
    model = build_model(dict(input_size=2, output_size=2, hidden=8, readout="last")).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        inputs, targets = task.batch(task.test, torch.arange(40))
        expected = (model(inputs).argmax(-1) == targets).float().mean().item()
    assert noisy_accuracy(model, task, task.test, generator) == pytest.approx(expected)
    scores = {noisy_accuracy(model, task, task.test, generator, state_noise=3.0) for _ in range(5)}
    assert len(scores) > 1
    assert not any(m._forward_hooks for m in model.modules())  # hooks removed


def test_robustness_pools_seeds_per_cell_and_counts_trials(tmp_path):
    config = {"model": dict(input_size=2, output_size=2, hidden=4, readout="last"),
              "task": {"name": BASE.task, "options": BASE.task_options}}
    checkpoints = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = save_checkpoint(tmp_path / f"s{seed}.safetensors", build_model(config["model"]), config)
        checkpoints.append(load_checkpoint(path))
    result = robustness(checkpoints, levels=[0.1], trials=3, input_noise=[0.2], state_noise=[0.05],
                        out_dir=str(tmp_path / "robust"))
    scores = result["scores"]["cmru"]
    assert len(scores["clean:0.0"]) == 2 and len(scores["mismatch:0.1"]) == 6 and len(scores["state:0.05"]) == 6
    header = result["table"].splitlines()[0]
    assert "mismatch 10%" in header and "input noise σ=0.2" in header and "state noise σ=0.05" in header
    assert all(0 <= statistics.mean(v) <= 1 for v in scores.values())
    assert (tmp_path / "robust" / "robustness.png").exists()


def test_the_robustness_legend_covers_no_panel():
    from cmru_neuro.experiments import robustness_figure

    conditions = [("mismatch", 0.05), ("mismatch", 0.15), ("input", 0.1), ("state", 0.01)]
    cells = ["bmru", "bmru-anneal", "cmru", "acmru", "lru", "mingru", "mingru-lin", "fq-bmru", "snn"]
    scores = {cell: {key: [0.5, 0.6] for key in [("clean", 0.0), *conditions]} for cell in cells}
    figure = robustness_figure(scores, conditions)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legends = [legend.get_window_extent(renderer) for legend in figure.legends]
    assert legends and not any(axis.get_legend() for axis in figure.axes)
    for axis in figure.axes:
        boxes = [axis.get_tightbbox(renderer)]
        assert not any(legend.overlaps(box) for legend in legends for box in boxes)
    assert all(figure.bbox.y0 <= legend.y0 for legend in legends)
