# %% [markdown]
# # Tutorial 1: swap a CMRU into an snnTorch (and a Norse) pipeline
#
# A spiking pipeline that must *remember* something for a long time is hard for leaky
# neurons: their membrane forgets. A CMRU holds its state exactly until its input crosses
# the hysteresis band, and sends an event (+1 / -1) only when its state changes.
#
# We train the same snnTorch pipeline `Linear -> memory -> Linear -> Leaky` twice with
# BPTT, once with `snn.RLeaky` as the memory and once with our `CMRU`, on copy-first-input
# (remember the symbol shown at step 0, answer at the last step). Then the same with Norse,
# and an export to NIR.
#
# Run it: `python tutorials/01_snntorch_and_norse.py` (add `--quick` for a smoke run).

# %%
import argparse
import tempfile
from pathlib import Path

import norse.torch as nt
import snntorch as snn
import torch
from snntorch import surrogate
from torch import nn

from cmru_neuro import nir as cnir
from cmru_neuro import norse as cn
from cmru_neuro import snntorch as cs
from cmru_neuro.reset import reset
from cmru_neuro.tasks import make_task

parser = argparse.ArgumentParser()
parser.add_argument("--quick", action="store_true", help="small sizes")
args, _ = parser.parse_known_args()
length, steps = (20, 40) if args.quick else (100, 300)

task = make_task("copy-first", length=length, classes=4, train_size=512, test_size=256)
hidden = 16


# %% [markdown]
# ## 1. The snnTorch pipeline, step by step in time
# `init_hidden=True` neurons keep their state between calls; `reset(net)` resets every
# neuron inside `net` (nested ones too) and nothing else (snnTorch's own
# `snntorch.utils.reset`, which `snntorch.backprop` and NeuroBench call, resets ours too).
# The readout is a `Leaky` whose membrane at the last step gives the class scores.
#
# A CMRU's events depend on the current input only; the memory is its state. So the CMRU
# below passes its state on (`output_state=True`); with spike output, an integrating readout
# (`Linear(bias=False)` + `snn.Leaky(beta=1.0, reset_mechanism="none")`) carries it instead.

# %%
def snntorch_pipeline(memory: nn.Module) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(task.input_size, hidden),
        memory,
        nn.Linear(hidden, task.output_size),
        snn.Leaky(beta=0.9, init_hidden=True, output=True),
    )


def run(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """x (T, B, F) -> membrane of the readout at the last step (B, classes)."""
    reset(net)
    for x_t in x:
        _, mem = net(x_t)
    return mem


def train(net: nn.Module, forward) -> float:
    """BPTT with Adam; returns test accuracy."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(steps):
        index = torch.randint(0, len(task.train), (64,))
        x, y = task.batch(task.train, index)
        loss = nn.functional.cross_entropy(forward(net, x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        x, y = task.batch(task.test, torch.arange(len(task.test)))
        return (forward(net, x).argmax(-1) == y).float().mean().item()


torch.manual_seed(0)
rleaky = snntorch_pipeline(snn.RLeaky(beta=0.9, linear_features=hidden, init_hidden=True,
                                      spike_grad=surrogate.atan()))
torch.manual_seed(0)
cmru = snntorch_pipeline(cs.CMRU(threshold=1.0, learn_threshold=True, size=hidden, init_hidden=True,
                                 output_state=True, spike_grad=surrogate.atan()))
print(f"snnTorch, RLeaky memory: test accuracy {train(rleaky, run):.2f}")
print(f"snnTorch, CMRU memory:   test accuracy {train(cmru, run):.2f}  (chance 0.25)")

# %% [markdown]
# The CMRU neuron is a drop-in `SpikingNeuron`: `spk` is the event `z sign(c)` in
# {-1, 0, +1}, `mem` the quantized state; `output_state=True` (used above) passes the state
# on instead. Any snnTorch surrogate works as `spike_grad`.
#
# For training speed, `sequence=True` evaluates a whole `(T, B, H)` sequence at once with
# a prefix sum, equal to the step loop:

# %%
neuron = cs.CMRU(threshold=1.0, size=hidden, sequence=True, output_state=True)
currents = torch.randn(length, 4, hidden) * 2
states, _ = neuron(currents)
stepper = cs.CMRU(threshold=1.0, size=hidden, output_state=True)
mem = None
for t in range(length):
    out, mem = stepper(currents[t], mem)
assert torch.allclose(states[-1], mem, atol=1e-5)

# %% [markdown]
# ## 2. The same in Norse
# Norse modules take a `state` argument, so `SequentialState` threads their states. A
# `cn.CMRU()` is an `SNN` over a whole time-first sequence.

# %%
def run_norse(net, x):
    out, _ = net(x)
    return out[-1]


torch.manual_seed(0)
norse_net = nt.SequentialState(
    nn.Linear(task.input_size, hidden),
    cn.CMRU(cn.CMRUParameters(threshold=torch.ones(hidden), alpha=torch.ones(hidden)),
            learn_threshold=True, output_state=True),
    nn.Linear(hidden, task.output_size),
    nt.LI(),
)
print(f"Norse, CMRU memory:      test accuracy {train(norse_net, run_norse):.2f}")

# %% [markdown]
# ## 3. Export to NIR and back
# Standard layers become standard NIR nodes; the CMRU becomes a documented `CMRU` node that
# `nir.read` can load once `cmru_neuro` is imported.

# %%
import nir

path = Path(tempfile.mkdtemp()) / "pipeline.nir"
nir.write(path, cnir.to_nir(cmru))
rebuilt = cnir.from_nir(path, backend="snntorch")
x, _ = task.batch(task.test, torch.arange(8))
with torch.no_grad():
    assert torch.allclose(run(cmru, x), run(rebuilt, x), atol=1e-5)
print("NIR round trip: identical outputs; nodes:", sorted(nir.read(path).nodes))

# %% [markdown]
# A CMRU or BMRU also exports in standard NIR nodes only (`lowered=True`: Affine, LIF as a
# threshold, Affine; two threshold layers for a threshold from the input; the state as an
# integrator), which readers that know nothing of `cmru_neuro` load. snnTorch's own
# importer, here on the events of the trained layer, its learned per-unit thresholds
# included:

# %%
from snntorch.import_nir import import_from_nir

events = nn.Sequential(cmru[0], cs.CMRU(threshold=cmru[1].threshold.detach(), size=hidden, init_hidden=True))
lowered = cnir.to_nir(events, lowered=True, dt=cnir.SNNTORCH_DT)
print("lowered nodes:", [type(node).__name__ for node in lowered.nodes.values()])
theirs = import_from_nir(lowered)
reset(events)
with torch.no_grad():
    assert all(torch.equal(events(x_t), theirs(x_t)[0]) for x_t in x)
print("snnTorch's import_from_nir: the same events")
