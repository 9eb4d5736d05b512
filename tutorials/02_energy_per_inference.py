# %% [markdown]
# # Tutorial 2: energy per inference, with your own hardware profile
#
# What does one inference of a CMRU network cost on a CPU, on Loihi, on an analog
# bistable-cell circuit, and on *your* chip? `cmru_neuro.energy` runs the model once on
# example input, counts each layer's work (NeuroBench's rules for synaptic operations, the
# units' own traces for state changes) and prices the counts with a cited hardware profile.
#
# Run it: `python tutorials/02_energy_per_inference.py` (add `--quick` for a smoke run).
# Cells are marked `# %%`, so the file also opens as a notebook in Jupyter or VS Code.

# %%
import argparse
import tempfile
from pathlib import Path

import torch

from cmru_neuro.energy import (
    available_profiles,
    estimate_energy,
    estimate_energy_many,
    plot_reports,
    register_profile,
    summary_table,
)
from cmru_neuro.network import MemoryNetwork
from cmru_neuro.tasks import make_task

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true", help="small sizes")
parser.add_argument("--out", default=tempfile.mkdtemp(prefix="cmru-energy-"), help="where the chart goes")
args, _ = parser.parse_known_args()
length = 50 if args.quick else 500

# %% [markdown]
# ## 1. A model and example input
# A 3-bit flip-flop (hold the last command per channel) and a 32-unit CMRU network. The
# model need not be trained for counting, but a trained one has realistic event rates:
# `cmru-neuro energy CHECKPOINT` does the same on a checkpoint.

# %%
torch.manual_seed(0)
task = make_task("flip-flop", length=length, train_size=64, test_size=16)
inputs, _ = task.batch(task.test, torch.arange(8))  # (T, B, F), time first
model = MemoryNetwork(task.input_size, [32], task.output_size, unit="cmru", readout="sequence")

# %% [markdown]
# ## 2. One profile, per layer
# The report splits joules into compute / memory / communication / static, keeps the counts
# behind them and lists every assumed figure it used and what it leaves out.

# %%
report = estimate_energy(model, inputs, profile="loihi2")
print(report.table())

# %% [markdown]
# ## 3. Every shipped profile, and a chart

# %%
reports = estimate_energy_many(model, inputs, sorted(available_profiles()))
print(summary_table(reports))
chart = plot_reports(reports, Path(args.out) / "energy.png")
print("chart:", chart)

# %% [markdown]
# ## 4. Your own profile
# A profile is YAML (or a dict): every figure has a value written with its unit (`"5 pJ"`,
# `"1 mW"`, `"1 ms"`; a bare number is rejected, so 5 meant as 5 pJ is never read as 5 J), a
# status (measured, datasheet, derived or assumed) and a source key that names a citation.
# The schema is checked: a typo names the file, the field and the problem, and a value
# implausible for its figure (`"5 J"` per operation) warns.

# %%
my_chip = {
    "name": "my-event-chip",
    "title": "A hypothetical event-driven chip (tutorial)",
    "kind": "event-driven",
    "description": "Numbers for illustration only.",
    "sources": {"guess": "tutorial assumption, not a measurement"},
    "figures": {
        "ac": {"value": "5 pJ", "status": "assumed", "source": "guess"},
        "mac": {"value": "20 pJ", "status": "assumed", "source": "guess"},
        "neuron_update": {"value": "10 pJ", "status": "assumed", "source": "guess"},
        "message_out": {"value": "2 pJ", "status": "assumed", "source": "guess"},
        "static_power": {"value": "1 mW", "status": "assumed", "source": "guess"},
        "step_duration": {"value": "1 ms", "status": "assumed", "source": "guess"},
    },
}
register_profile(my_chip, replace=True)
mine = estimate_energy(model, inputs, profile="my-event-chip")
print(f"my-event-chip: {mine.total:.3e} J per inference, {100 * mine.assumed_share:.0f}% of it on assumed figures")

# %% [markdown]
# The same profile as a file, read by path (this is what `cmru-neuro profiles --check` and
# `cmru-neuro energy --profile path.yaml` do):

# %%
import yaml  # noqa: E402

path = Path(args.out) / "my-event-chip.yaml"
path.write_text(yaml.safe_dump({**my_chip, "name": "my-event-chip-file"}))
from_file = estimate_energy(model, inputs, profile=str(path))
assert abs(from_file.total - mine.total) < 1e-15

# %% [markdown]
# ## 5. Why event-driven targets like CMRU
# On an event-driven target a unit that holds its state sends nothing. Feed a constant
# (graded) input: after the units settle, each extra step costs only the static part.
# (Inputs whose values are all in {-1, 0, 1} count as spikes, sent every step they are
# nonzero; a graded input is sigma-delta coded, sent only when it changes.)

# %%
steady = torch.full((length, 8, task.input_size), 0.3)
short, long = (estimate_energy(model, steady[:n], profile="my-event-chip") for n in (length // 2, length))
extra_dynamic = long.energy.dynamic - short.energy.dynamic  # compute + memory + communication
print(f"{length - length // 2} extra steady steps: dynamic {extra_dynamic:.3e} J, "
      f"static {long.energy.static - short.energy.static:.3e} J")
