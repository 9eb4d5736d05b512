"""Copy-first-input at T = 1000: time for each cell to reach 99% test accuracy on a budget.

Acceptance: CMRU reaches >= 99% test accuracy with hidden <= 32 within 10 minutes on this
machine. Every cell gets the same model (paper block, hidden 32, one layer, input Linear
without bias: the inputs after step 0 are silent, see cmru_neuro.models), the same training
defaults and the same wall-clock budget; training stops once validation accuracy reaches
99% and the test split is scored then. One process, one run after another:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_copy_first.py [--cells cmru bmru lru mingru]
"""

from __future__ import annotations

import argparse
import time

from cmru_neuro.layers import INITS
from cmru_neuro.models import ARCHS
from cmru_neuro.training import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["cmru", "bmru", "lru", "mingru"])
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of training per cell")
    parser.add_argument("--steps", type=int, default=2000, help="step cap (the cosine schedule's length)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input-bias", action="store_true", help="keep the input Linear's bias (CMRU drifts)")
    parser.add_argument("--arch", default="reference", choices=ARCHS, help="default %(default)s")
    parser.add_argument("--layers", type=int, default=2, help="default %(default)s")
    parser.add_argument("--init", default="reference", choices=INITS, help="default %(default)s")
    args = parser.parse_args()
    print(f"copy-first-input, T={args.length}, {args.arch} x {args.layers}, hidden {args.hidden}, "
          f"init {args.init}, budget {args.budget:.0f} s per cell, seed {args.seed}, input bias {args.input_bias}")
    print("| cell | test accuracy | steps | train time (s) | reached 99% |")
    print("|---|---|---|---|---|")
    for cell in args.cells:
        config = TrainConfig(
            task="copy-first", task_options={"length": args.length}, cell=cell, hidden=args.hidden,
            steps=args.steps, eval_every=25, stop_at=0.99, time_limit=args.budget, seed=args.seed,
            input_bias=args.input_bias, arch=args.arch, layers=args.layers, init=args.init, progress=False,
        )
        started = time.perf_counter()
        metrics = train(config).metrics
        total = time.perf_counter() - started
        reached = metrics["test_accuracy"] >= 0.99 and metrics["seconds"] <= args.budget
        print(f"| {cell} | {100 * metrics['test_accuracy']:.1f}% | {metrics['steps']} | "
              f"{metrics['seconds']:.0f} (total with data and test {total:.0f}) | {'yes' if reached else 'no'} |",
              flush=True)


if __name__ == "__main__":
    main()
