"""snnTorch front-end speed: one streaming step of our CMRU neuron vs ``snn.Leaky`` of the
same width (target: at most 1.5x), and the parallel whole-sequence mode vs the step loop
that records the same outputs (every step's ``spk`` and ``mem``; target: no slower at any
width).

Candidates are timed side by side in one run, repeats interleaved, medians compared.

    .venv/bin/python benchmarks/bench_snn.py [--batch 32] [--widths 128 1024] [--steps 1024] [--threads 1] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import snntorch as snn
import torch

from cmru_neuro import functional as F
from cmru_neuro import snntorch as cs


def median_seconds(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Run each candidate ``repeats`` times, interleaved; return the median wall time."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for fn in candidates.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def streaming_loop(neuron, x: torch.Tensor, grad: bool) -> Callable[[], object]:
    """``len(x)`` single steps ``spk, mem = neuron(x[t], mem)``; with ``grad`` also backward."""

    def run():
        with torch.set_grad_enabled(grad):
            mem = torch.zeros_like(x[0])
            total = 0.0
            for x_t in x:
                spk, mem = neuron(x_t, mem)
                total = total + spk.sum()
            if grad:
                total.backward()

    return run


def bench_step(batch: int, width: int, steps: int, repeats: int) -> None:
    x = torch.randn(steps, batch, width)
    for grad in (False, True):
        inputs = x.clone().requires_grad_(grad)
        result = median_seconds(
            {
                "cmru": streaming_loop(cs.CMRU(threshold=0.5), inputs, grad),
                "leaky": streaming_loop(snn.Leaky(beta=0.9), inputs, grad),
            },
            repeats,
        )
        per_step = {k: 1e6 * v / steps for k, v in result.items()}
        label = "forward+backward" if grad else "forward"
        print(
            f"step  B={batch} H={width:5d} {label:16s} CMRU {per_step['cmru']:7.1f} us  "
            f"Leaky {per_step['leaky']:7.1f} us  ratio {per_step['cmru'] / per_step['leaky']:.2f}x"
        )


def recording_loop(neuron, x: torch.Tensor, grad: bool) -> Callable[[], object]:
    """The step loop a user writes to get what the whole-sequence mode returns: every
    step's ``spk`` and ``mem``, stacked to ``(T, ...)``; with ``grad`` also backward."""

    def run():
        with torch.set_grad_enabled(grad):
            mem = torch.zeros_like(x[0])
            spikes, states = [], []
            for x_t in x:
                spk, mem = neuron(x_t, mem)
                spikes.append(spk)
                states.append(mem)
            spk, mem = torch.stack(spikes), torch.stack(states)
            if grad:
                spk.sum().backward()

    return run


def bench_sequence(batch: int, width: int, steps: int, repeats: int) -> None:
    """Whole-sequence mode against the recording step loop: the same outputs, same input."""
    whole = cs.CMRU(threshold=0.5, sequence=True)

    def parallel(inputs: torch.Tensor, grad: bool):
        def run():
            with torch.set_grad_enabled(grad):
                spk, _mem = whole(inputs, torch.zeros_like(inputs[0]))
                if grad:
                    spk.sum().backward()

        return run

    for grad in (False, True):
        inputs = torch.randn(steps, batch, width).requires_grad_(grad)
        result = median_seconds(
            {"parallel": parallel(inputs, grad), "loop": recording_loop(cs.CMRU(threshold=0.5), inputs, grad)},
            repeats,
        )
        label = "forward+backward" if grad else "forward"
        print(
            f"seq   B={batch} H={width:5d} T={steps} {label:16s} parallel {1e3 * result['parallel']:7.2f} ms  "
            f"loop {1e3 * result['loop']:7.2f} ms  speed-up {result['loop'] / result['parallel']:.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--steps", type=int, default=1024, help="T for the sequence comparison")
    parser.add_argument(
        "--step-repeats", type=int, default=100, help="steps per timed streaming run"
    )
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: fair on a shared machine; more oversubscribe)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="fused gate kernels (functional.use_compiled_kernels)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.compile:
        F.use_compiled_kernels(True)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, snntorch {snn.__version__}, threads {torch.get_num_threads()}, "
        f"compiled gate kernels {args.compile}"
    )
    for width in args.widths:
        bench_step(args.batch, width, args.step_repeats, args.repeats)
    for width in args.widths:
        bench_sequence(args.batch, width, args.steps, args.repeats)


if __name__ == "__main__":
    main()
