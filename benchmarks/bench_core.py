"""Training-step speed of the memory units against baselines, and peak memory.

One training step = forward + backward of a layer on a (T, B, F) batch. Every model is timed
in the same run, interleaved, and reported as the median; ratios are what to read (this
machine is noisy). Targets at T = 1024, B = 32, H = 64 (CPU): CMRU and BMRU parallel <= 1.3x
the projection floor (the same input projection with no recurrence), alpha-CMRU <= 1.6x its
own (3H) projection floor, the deployable stack (``MemoryNetwork``, two CMRU layers) within
1.3x of its layers' floors; CMRU >= 20x faster than CMRU sequential, no slower than MinGRU.
Peak memory of one CMRU training step at T = 16384, B = 8, H = 64 under 2 GB. GPU
(``--device cuda``, T = 4096, B = 64, H = 256): CMRU <= 1.3x its floor and >= 5x faster than
the same layer on composed ops.
"CMRU parallel" is the layer as users get it (the fused kernels of ``cmru_neuro.kernels``:
numba on CPU, Triton on CUDA); "CMRU parallel, PyTorch ops" is the composed path.

    python benchmarks/bench_core.py            # full table (a few minutes)
    python benchmarks/bench_core.py --quick    # smoke run
    python benchmarks/bench_core.py --lengths 1024             # the CPU targets only (add --threads 2)
    python benchmarks/bench_core.py --device cuda --lengths 4096 --batch 64 --hidden 256
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time

import torch
from torch import nn
from tqdm import tqdm

from cmru_neuro import BMRU, CMRU, AlphaCMRU, MemoryNetwork, kernels
from cmru_neuro.baselines import LRU, MinGRU


class ProjectionFloor(nn.Module):
    """A memory unit's input projection (F -> streams * H) with no recurrence at all."""

    def __init__(self, input_size: int, hidden_size: int, streams: int = 2, bias: bool = True):
        super().__init__()
        self.projection = nn.Linear(input_size, streams * hidden_size, bias=bias)

    def forward(self, x):
        return self.projection(x), None


class StackFloor(nn.Module):
    """A ``MemoryNetwork``'s projections and readout with no recurrence: each layer's
    candidate block goes on as the next layer's input."""

    def __init__(self, input_size: int, hidden_sizes, output_size: int):
        super().__init__()
        sizes = [input_size, *hidden_sizes]
        self.layers = nn.ModuleList(nn.Linear(a, 2 * b) for a, b in itertools.pairwise(sizes))
        self.readout = nn.Linear(sizes[-1], output_size)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x).chunk(2, dim=-1)[0]
        return self.readout(x[-1]), None


class Stack(MemoryNetwork):
    """``MemoryNetwork`` with the layers' ``(out, state)`` return convention."""

    def forward(self, x):
        return super().forward(x), None


COMPOSED = "CMRU parallel, PyTorch ops"


def models(input_size: int, hidden: int, device: str) -> dict[str, tuple[nn.Module, dict]]:
    table = {
        "projection floor": (ProjectionFloor(input_size, hidden), {}),
        "projection floor, no bias": (ProjectionFloor(input_size, hidden, bias=False), {}),
        "CMRU parallel": (CMRU(input_size, hidden), {"mode": "parallel"}),
        COMPOSED: (CMRU(input_size, hidden), {"mode": "parallel"}),
        "CMRU sequential": (CMRU(input_size, hidden), {"mode": "sequential"}),
        "BMRU parallel": (BMRU(input_size, hidden), {"mode": "parallel"}),
        "alpha-CMRU projection floor": (ProjectionFloor(input_size, hidden, streams=3), {}),
        "alpha-CMRU parallel": (AlphaCMRU(input_size, hidden), {"mode": "parallel"}),
        "stack floor": (StackFloor(input_size, (hidden, hidden), 10), {}),
        "stack (2 CMRU layers + readout)": (Stack(input_size, (hidden, hidden), 10), {}),
        "MinGRU": (MinGRU(input_size, hidden), {}),
        "LRU": (LRU(input_size, hidden), {}),
    }
    return {name: (model.to(device), options) for name, (model, options) in table.items()}


def train_step(model: nn.Module, options: dict, x: torch.Tensor, fused: bool = True) -> float:
    """Seconds for one forward + backward (``fused``: the fused kernels allowed)."""
    kernels.use_fused_kernels(fused)
    model.zero_grad(set_to_none=True)
    synchronize = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    synchronize()
    start = time.perf_counter()
    out, _ = model(x, **options)
    out.mean().backward()
    synchronize()
    seconds = time.perf_counter() - start
    kernels.use_fused_kernels(True)
    return seconds


def speed_table(lengths, batch: int, hidden: int, repeats: int, device: str, skip=()) -> list[dict]:
    rows = []
    for length in lengths:
        x = torch.randn(length, batch, hidden, device=device)
        table = {k: v for k, v in models(hidden, hidden, device).items() if k not in skip}
        for name, (model, options) in table.items():  # warm-up (and compile)
            train_step(model, options, x, fused=name != COMPOSED)
        times = {name: [] for name in table}
        for _ in tqdm(range(repeats), desc=f"T={length}", leave=False):
            for name, (model, options) in table.items():
                times[name].append(train_step(model, options, x, fused=name != COMPOSED))
        medians = {name: statistics.median(t) for name, t in times.items()}
        floor, cmru = medians["projection floor"], medians["CMRU parallel"]
        for name, seconds in medians.items():
            rows.append(
                {"T": length, "model": name, "ms": 1e3 * seconds,
                 "x floor": seconds / floor, "x CMRU parallel": seconds / cmru}
            )
    return rows


def peak_memory_mb(length: int, batch: int, hidden: int) -> float:
    """Peak RSS growth during one CMRU training step, in a fresh process (Linux).

    The kernel's high-water mark is reset just before the step (``/proc/self/clear_refs``),
    so what importing torch allocated does not hide the step's peak.
    """
    code = f"""
import torch
from cmru_neuro import CMRU

def status(field):
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field))

unit = CMRU({hidden}, {hidden})
out, _ = unit(torch.randn(8, 2, {hidden})); out.mean().backward()   # load kernels
x = torch.randn({length}, {batch}, {hidden})
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")                                                 # reset the peak
before = status("VmRSS:")
out, _ = unit(x); out.mean().backward()
print((status("VmHWM:") - before) / 1024)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def cuda_peak_memory_mb(length: int, batch: int, hidden: int) -> float:
    """Peak CUDA memory allocated during one CMRU training step, in MB."""
    unit = CMRU(hidden, hidden).cuda()
    x = torch.randn(length, batch, hidden, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    out, _ = unit(x)
    out.mean().backward()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script runs")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (default 1: fair on a shared machine, and the fused kernels are "
        "single-threaded while the floor's matrix product is not)",
    )
    parser.add_argument("--lengths", type=int, nargs="+", help="sequence lengths (default: 256 1024 4096)")
    parser.add_argument("--batch", type=int, help="batch size (default 32)")
    parser.add_argument("--hidden", type=int, help="units H = input features F (default 64)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats (default 7)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default %(default)s)")
    parser.add_argument("--skip", nargs="*", default=[], help="rows to leave out, e.g. 'CMRU sequential' LRU")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        lengths, batch, hidden, repeats, memory_shape = (64,), 4, 8, 2, (256, 2, 8)
    else:
        lengths, batch, hidden, repeats, memory_shape = (256, 1024, 4096), 32, 64, 7, (16384, 8, 64)
    lengths = tuple(args.lengths or lengths)
    batch, hidden, repeats = args.batch or batch, args.hidden or hidden, args.repeats or repeats
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}; B={batch}, H=F={hidden}, median of {repeats} interleaved repeats")
    rows = speed_table(lengths, batch, hidden, repeats, args.device, set(args.skip))
    print("\n| T | model | ms / step | x floor | x CMRU parallel |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['T']} | {row['model']} | {row['ms']:.1f} | {row['x floor']:.2f} | {row['x CMRU parallel']:.2f} |")
    check_at = 1024 if 1024 in lengths else lengths[-1]
    at = {row["model"]: row for row in rows if row["T"] == check_at}
    ratio = lambda a, b: at[a]["ms"] / at[b]["ms"] if a in at and b in at else float("nan")
    checks = {
        "CMRU parallel / floor <= 1.3": ratio("CMRU parallel", "projection floor"),
        "BMRU parallel / floor <= 1.3": ratio("BMRU parallel", "projection floor"),
        "alpha-CMRU parallel / its own (3H) projection floor <= 1.6": ratio("alpha-CMRU parallel", "alpha-CMRU projection floor"),
        "alpha-CMRU parallel / the CMRU's (2H) floor (for reference)": ratio("alpha-CMRU parallel", "projection floor"),
        "stack / stack floor <= 1.3": ratio("stack (2 CMRU layers + readout)", "stack floor"),
        "CMRU composed / CMRU parallel (GPU: >= 5)": ratio(COMPOSED, "CMRU parallel"),
        "CMRU sequential / CMRU parallel >= 20": ratio("CMRU sequential", "CMRU parallel"),
        "MinGRU / CMRU parallel >= 1": ratio("MinGRU", "CMRU parallel"),
    }
    memory = peak_memory_mb(*memory_shape) if args.device == "cpu" else cuda_peak_memory_mb(*memory_shape)
    print(f"\nTargets at T = {check_at}:")
    for name, value in checks.items():
        print(f"  {name}: {value:.2f}")
    print(f"Peak memory growth of one CMRU training step at (T, B, H) = {memory_shape}: {memory:.0f} MB (target < 2048)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rows": rows, "checks": checks, "peak_memory_mb": memory}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

