# %% [markdown]
# # Tutorial 3: deploy a trained CMRU network to Lava, bit-exact
#
# Train a small deployable network (memory units stacked, then a Linear readout), quantize
# it to a Loihi-2-like integer format (8-bit weight mantissas with a per-layer exponent,
# 24-bit saturating state, alpha folded into the outgoing weights), check the integer model
# against the float one, then run it as Lava processes in floating and fixed point. The
# fixed-point run must equal our numpy integer reference bit for bit.
#
# Needs Python 3.10 with lava-nc (`make demo` / `make test` set that up in `.venv`).
# Run it: `python tutorials/03_deploy_to_lava.py` (add `--quick` for a smoke run).

# %%
import argparse

import torch

from cmru_neuro.adapters.lava import run_on_lava, to_lava
from cmru_neuro.quant import accuracy_report, quantize
from cmru_neuro.training import TrainConfig, train

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true", help="small sizes")
args, _ = parser.parse_known_args()
length, steps, sequences = (30, 80, 4) if args.quick else (100, 300, 32)

# %% [markdown]
# ## 1. Train a deployable network
# `arch="stack"` builds a `MemoryNetwork`: every operation maps to neuromorphic hardware
# (Dense -> unit -> Dense). The task: a 3-bit flip-flop (hold the last +1/-1 command of each
# channel), answered at every step.

# %%
result = train(TrainConfig(task="flip-flop", task_options=dict(length=length, train_size=500, test_size=100),
                           cell="bmru", arch="stack", hidden=16, steps=steps, lr=1e-2, dropout=0.0,
                           eval_every=max(steps // 4, 1), progress=False))
model = result.model
print(f"float model: test accuracy {100 * result.metrics['test_accuracy']:.1f}%")

# %% [markdown]
# ## 2. Quantize and check the integer model
# Calibration inputs set the input step. The integer model (`cmru_neuro.quant.simulate`,
# the golden model) counts every saturated value; none should occur here.

# %%
from cmru_neuro.tasks import make_task  # noqa: E402

task = make_task("flip-flop", length=length, train_size=500, test_size=100)
calibration, _ = task.batch(task.train, torch.arange(64))
quantized = quantize(model, calibration)
inputs, targets = task.batch(task.test, torch.arange(len(task.test)))
print("integer vs float:", accuracy_report(model, quantized.spec, inputs, targets, correct=task.correct))

# %% [markdown]
# ## 3. The Lava process graph
# `to_lava` builds `Dense -> unit -> Dense -> ... -> Readout`. Units send their state
# changes as graded messages and each receiver accumulates them (sigma-delta style), so
# traffic scales with state changes. Each Dense adds one step of delay; `run_on_lava`
# accounts for it and returns outputs aligned with the torch model.

# %%
graph = to_lava(quantized.spec, sequence_length=length)
print(f"{len(graph.denses)} Dense, {len(graph.units)} unit process(es), latency {graph.latency} steps")

# %% [markdown]
# ## 4. Run on Lava: fixed point (bit-exact) and floating point
# Everything is validated before `run()`; the runtime is always stopped, with a timeout.

# %%
inputs, targets = inputs[:, :sequences], targets[:sequences]
fixed = run_on_lava(quantized.spec, inputs, timeout=300)
assert (fixed.outputs == fixed.reference.outputs).all(), "Lava fixed point differs from the integer model"
hits, decisions = task.correct(fixed.logits, targets)
print(f"Lava fixed point: bit-exact with the integer model; accuracy {100 * hits / decisions:.1f}%; "
      f"{sum(fixed.messages)} messages in {fixed.steps} steps")

floating = run_on_lava(model, inputs, timeout=300)
with torch.no_grad():
    difference = (floating.logits - model(inputs)).abs().max().item()
print(f"Lava floating point vs torch: largest difference {difference:.2e}")

# %% [markdown]
# From the command line, the same on a checkpoint:
# `cmru-neuro deploy runs/model.safetensors --sequences 32 --float`.
