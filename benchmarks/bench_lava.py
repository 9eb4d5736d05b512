"""Time per step of a CMRU network on Lava's CPU simulator against a LIF network.

Both networks have the same sizes and the same six Lava processes, in fixed point:

    CMRU: RingBuffer -> Dense (2H x F) -> CMRU (H) -> Dense (O x H) -> Readout (O) -> RingBuffer
    LIF:  RingBuffer -> Dense (H x F)  -> LIF (H)  -> Dense (O x H) -> LIF (O)     -> RingBuffer

Both runtimes are compiled and spawned first (not timed), then stepped in turns in the same
run of this script; the median over repeats is reported. Target: CMRU / LIF <= 1.3. The
CMRU network is a quantized, untrained MemoryNetwork fed copy-first-input sequences (a
one-hot symbol, then Gaussian distractors); messages per step are what its units sent.

    python benchmarks/bench_lava.py            # H = 64, 2000 steps x 5 repeats (about a minute)
    python benchmarks/bench_lava.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from cmru_neuro.adapters.lava import check_spec, import_lava, source_data, to_lava

from cmru_neuro import quant
from cmru_neuro.network import MemoryNetwork
from cmru_neuro.tasks import make_task


def cmru_network(hidden: int, length: int, steps: int):
    """(sink, CMRU graph, source data ``(F, steps)``) for a quantized copy-first CMRU stack."""
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    sequences = -(-steps // length)
    task = make_task("copy-first", length=length, noise=0.2, train_size=sequences, test_size=sequences)
    inputs, _ = task.batch(task.test, torch.arange(sequences))
    torch.manual_seed(0)
    model = MemoryNetwork(task.input_size, [hidden], task.output_size, unit="cmru").eval()
    spec = quant.quantize(model, inputs).spec
    check_spec(spec)
    graph = to_lava(spec, sequence_length=length)
    data = source_data(spec, inputs, 0)
    source = Source(data=data)
    sink = Sink(shape=(spec.output_size,), buffer=steps)
    source.s_out.connect(graph.input_port)
    graph.output_port.connect(sink.a_in)
    return sink, graph, data


def lif_network(data: np.ndarray, hidden: int, outputs: int, steps: int):
    """(sink, LIF neurons) of the same sizes, fed the same input stream."""
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    rng = np.random.default_rng(0)
    features = data.shape[0]
    source = Source(data=data)
    dense_in = Dense(weights=2 * rng.integers(-128, 128, (hidden, features)), num_message_bits=24)
    lif = LIF(shape=(hidden,), du=4095, dv=1024, vth=64, bias_mant=0, bias_exp=0)
    dense_out = Dense(weights=2 * rng.integers(-128, 128, (outputs, hidden)))
    readout = LIF(shape=(outputs,), du=4095, dv=1024, vth=64)
    sink = Sink(shape=(outputs,), buffer=steps)
    source.s_out.connect(dense_in.s_in)
    dense_in.a_out.connect(lif.a_in)
    lif.s_out.connect(dense_out.s_in)
    dense_out.a_out.connect(readout.a_in)
    readout.s_out.connect(sink.a_in)
    return sink, lif


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--length", type=int, default=100, help="sequence length T")
    parser.add_argument("--steps", type=int, default=2000, help="time steps per timed run()")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="H = 16, 200 steps x 2")
    args = parser.parse_args()
    if args.quick:
        args.hidden, args.steps, args.repeats = 16, 200, 2
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    warmup = 20
    total = warmup + args.steps * args.repeats
    cmru_sink, graph, data = cmru_network(args.hidden, args.length, total)
    lif_sink, _ = lif_network(data, args.hidden, graph.spec.output_size, total)
    config = Loihi2SimCfg(select_tag="fixed_pt")
    times = {"CMRU": [], "LIF": []}
    sinks = {"CMRU": cmru_sink, "LIF": lif_sink}
    try:
        for name, sink in sinks.items():
            started = time.perf_counter()
            sink.run(condition=RunSteps(num_steps=warmup), run_cfg=config)
            print(f"{name}: compile, spawn and {warmup} warm-up steps {time.perf_counter() - started:.2f} s")
        for _ in range(args.repeats):
            for name, sink in sinks.items():
                started = time.perf_counter()
                sink.run(condition=RunSteps(num_steps=args.steps), run_cfg=config)
                times[name].append((time.perf_counter() - started) / args.steps)
        messages = sum(int(unit.messages_sent.get()[0]) for unit in graph.units)
    finally:
        for sink in sinks.values():
            sink.stop()
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"H = {args.hidden}, F = {graph.spec.input_size}, O = {graph.spec.output_size}, 6 processes each, "
          f"{args.repeats} x {args.steps} steps, fixed point")
    for name, value in median.items():
        spread = ", ".join(f"{1e3 * v:.3f}" for v in times[name])
        print(f"{name:5s} {1e3 * value:.3f} ms per step (runs: {spread})")
    ratio = median["CMRU"] / median["LIF"]
    print(f"CMRU / LIF time per step: {ratio:.2f} (target <= 1.3: {'met' if ratio <= 1.3 else 'NOT met'})")
    print(f"CMRU messages per step: {messages / total:.2f} ({messages / total / args.hidden:.4f} per unit per step; "
          f"a dense link would send {args.hidden} values per step)")


if __name__ == "__main__":
    main()
