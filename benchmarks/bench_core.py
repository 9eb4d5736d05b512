"""Training-step speed of the memory units against baselines, and peak memory.

One training step = forward + backward of a layer on a (T, B, F) batch. Every model is timed
in the same run, interleaved, and reported as the median; ratios are what to read (this
machine is noisy). Targets at T = 1024: CMRU parallel <= 1.5x the projection floor (the same
input projection with no recurrence), >= 20x faster than CMRU sequential, no slower than
MinGRU. Peak memory of one CMRU training step at T = 16384, B = 8, H = 64 under 2 GB.
"CMRU parallel" is the layer as users get it (on CPU: the fused kernels of
``cmru_neuro.kernels``); "CMRU parallel, PyTorch ops" is the composed path other devices run.

    python benchmarks/bench_core.py            # full table (a few minutes)
    python benchmarks/bench_core.py --quick    # smoke run
    python benchmarks/bench_core.py --lengths 1024             # the targets only (add --threads 2)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from torch import nn
from tqdm import tqdm

from cmru_neuro import BMRU, CMRU
from cmru_neuro import functional as F
from cmru_neuro.baselines import LRU, MinGRU


class ProjectionFloor(nn.Module):
    """The CMRU's input projection (F -> 2H) with no recurrence at all."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.projection = nn.Linear(input_size, 2 * hidden_size)

    def forward(self, x):
        return self.projection(x), None


COMPOSED = "CMRU parallel, PyTorch ops"


def models(input_size: int, hidden: int) -> dict[str, tuple[nn.Module, dict]]:
    return {
        "projection floor": (ProjectionFloor(input_size, hidden), {}),
        "CMRU parallel": (CMRU(input_size, hidden), {"mode": "parallel"}),
        COMPOSED: (CMRU(input_size, hidden), {"mode": "parallel"}),
        "CMRU sequential": (CMRU(input_size, hidden), {"mode": "sequential"}),
        "BMRU parallel": (BMRU(input_size, hidden), {"mode": "parallel"}),
        "MinGRU": (MinGRU(input_size, hidden), {}),
        "LRU": (LRU(input_size, hidden), {}),
    }


def train_step(model: nn.Module, options: dict, x: torch.Tensor, fused: bool = True) -> float:
    """Seconds for one forward + backward (``fused``: CMRU's fused CPU kernels allowed)."""
    F.use_fused_kernels(fused)
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    out, _ = model(x, **options)
    out.mean().backward()
    seconds = time.perf_counter() - start
    F.use_fused_kernels(True)
    return seconds


def speed_table(lengths, batch: int, hidden: int, repeats: int) -> list[dict]:
    rows = []
    for length in lengths:
        x = torch.randn(length, batch, hidden)
        table = models(hidden, hidden)
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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        lengths, batch, hidden, repeats, memory_shape = (64,), 4, 8, 2, (256, 2, 8)
    else:
        lengths, batch, hidden, repeats, memory_shape = (256, 1024, 4096), 32, 64, 7, (16384, 8, 64)
    lengths = tuple(args.lengths or lengths)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; B={batch}, H=F={hidden}, "
          f"median of {repeats} interleaved repeats")
    rows = speed_table(lengths, batch, hidden, repeats)
    print("\n| T | model | ms / step | x floor | x CMRU parallel |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['T']} | {row['model']} | {row['ms']:.1f} | {row['x floor']:.2f} | {row['x CMRU parallel']:.2f} |")
    check_at = 1024 if 1024 in lengths else lengths[-1]
    at = {row["model"]: row for row in rows if row["T"] == check_at}
    checks = {
        "CMRU parallel / floor <= 1.5": at["CMRU parallel"]["x floor"],
        "CMRU sequential / CMRU parallel >= 20": at["CMRU sequential"]["x CMRU parallel"],
        "MinGRU / CMRU parallel >= 1": at["MinGRU"]["x CMRU parallel"],
    }
    memory = peak_memory_mb(*memory_shape)
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

