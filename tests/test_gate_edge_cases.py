"""The gate's edge cases (tests/gate_cases.py: ties |c| = |beta|, signed zeros, c = beta_lo,
saturation) against every implementation: composed PyTorch (the update functions and
memory_sequence, parallel and step loop), the fused numba kernels, the golden model in
floats and integers, and Lava's floating_pt and fixed_pt ProcessModels. Triton runs the same
table in tests/test_triton_interpreter.py."""

import os
import sys

import numpy as np
import pytest
import torch

from cmru_neuro import functional as F
from cmru_neuro import golden, kernels

sys.path.insert(0, os.path.dirname(__file__))
import gate_cases as G


def _tensor(cases: list, field: str) -> torch.Tensor:
    return torch.tensor(G.column(cases, field))


@pytest.mark.parametrize("kind", G.KINDS)
def test_composed_update_functions(kind):
    """hysteresis_update / first_quadrant_update (on relu(c)), one step ``(H,)``."""
    cases = G.select(kind, "float")
    candidate, threshold, level = (_tensor(cases, f) for f in ("candidate", "threshold", "level"))
    if kind == "fq-bmru":
        update = F.first_quadrant_update(torch.relu(candidate), _tensor(cases, "threshold_low"), threshold)
    else:
        update = F.hysteresis_update(candidate, threshold, G.EPSILON[kind])
    G.assert_matches(cases, gate=update.gate, event=update.events,
                     new_level=update.decay * level + update.events)


def _sequence(arguments: dict, fused: bool, mode: str) -> F.SequenceResult:
    """memory_sequence with every record, the fused kernels on or off (restored after)."""
    previous = kernels.Switches.fused
    F.use_fused_kernels(fused)
    try:
        return F.memory_sequence(**arguments, record=F.RECORDABLE, mode=mode)
    finally:
        F.use_fused_kernels(previous)


def _from_fused_scan(tensor: torch.Tensor) -> bool:
    """True when ``tensor`` is (a view of) an output of kernels.FusedScan."""
    nodes = [tensor.grad_fn, *(node for node, _ in tensor.grad_fn.next_functions)]
    return any(type(node).__name__.startswith("FusedScan") for node in nodes)


PATHS = {"composed": (False, "parallel"), "composed-loop": (False, "sequential"), "numba": (True, "parallel")}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fixed", [False, True], ids=["threshold-from-input", "fixed-threshold"])
@pytest.mark.parametrize("kind", list(G.EPSILON))
def test_memory_sequence(kind, fixed, path):
    """One step of memory_sequence on CPU float32: gates, events, levels and states ``(1, 1, H)``."""
    cases = G.select(kind, "float")
    arguments = G.sequence_arguments(cases, fixed)
    arguments["currents"].requires_grad_()
    fused, mode = PATHS[path]
    result = _sequence(arguments, fused, mode)
    assert _from_fused_scan(result.states) == fused
    G.assert_matches(cases, gate=result.gates, event=result.events, new_level=result.levels)
    G.assert_matches(cases, new_level=result.states)


def _golden_step(cases: list, number: str, streams: int) -> golden.UnitStep:
    """golden.unit_step of a layer of one unit per case: ``c`` (and ``beta`` when ``streams``
    is 2) in the bias, zero accumulator and dendrite, each unit from its level."""
    fixed_point = number == "integer"

    def values(field):  # (H,) float64, or int64 in fixed point
        real = np.array(G.column(cases, field))
        assert not fixed_point or np.array_equal(real, np.rint(real)), f"{field}: not integers"
        return real.astype(np.int64) if fixed_point else real

    candidate, threshold, level = values("candidate"), values("threshold"), values("level")
    bias = np.concatenate([candidate, threshold]) if streams == 2 else candidate
    output = "changes" if cases[0].kind == "fq-bmru" else "events"
    unit = golden.UnitSpec(cases[0].kind, bias, threshold, values("threshold_low"), level, output=output)
    zero = np.full_like(bias, -0.0)  # -0.0 + x is x, bit for bit: -0.0 reaches the gate
    return golden.unit_step(unit, zero, level, zero, False, fixed_point)


@pytest.mark.parametrize("number", G.NUMBERS)
@pytest.mark.parametrize("kind,streams", [("cmru", 2), ("cmru", 1), ("bmru", 2), ("bmru", 1), ("fq-bmru", 1)])
def test_golden_unit_step(kind, streams, number):
    """Levels, the message (events ``z sign(c)``; first quadrant: its changes) and saturation counts."""
    cases = G.select(kind, number)
    step = _golden_step(cases, number, streams)
    G.assert_matches(cases, new_level=step.level)
    if kind == "fq-bmru":
        G.assert_matches(cases, new_level=step.message + np.array(G.column(cases, "level")))
    else:
        G.assert_matches(cases, event=step.message, gate=np.abs(step.message))
    assert step[3:] == (0, 0, sum(G.column(cases, "state_saturations")))


def _lava_run(number: str) -> dict:
    """One Lava run of every case of ``number``: a zero source feeds, per kind, a zero Dense
    -> unit Process (one unit per case, each from its level: ``initial_level``; CMRU's
    threshold from the input, the others fixed) -> RingBuffer sink, one time step. Returns
    ``{kind: (events (H,), levels (H,), saturations (3,))}``; the runtime is always stopped."""
    from cmru_neuro.adapters.lava.build import PAYLOAD_BITS, import_lava

    processes = import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.utils.weightutils import SignMode

    fixed_point = number == "integer"
    wide = np.int64 if fixed_point else np.float64
    dense_options = {"sign_mode": SignMode.MIXED, "weight_exp": 0, "num_weight_bits": 8} if fixed_point else {}
    source = Source(data=np.zeros((1, 1), wide))
    layers = {}
    for kind, streams, process in (("cmru", 2, processes.CMRU), ("bmru", 1, processes.BMRU),
                                   ("fq-bmru", 1, processes.FirstQuadrantBMRU)):
        cases = G.select(kind, number)
        candidate, threshold = (np.array(G.column(cases, f)).astype(wide) for f in ("candidate", "threshold"))
        options = {"threshold_low": np.array(G.column(cases, "threshold_low")).astype(wide),
                   "output": "changes"} if kind == "fq-bmru" else {"output": "events"}
        unit = process(shape=(len(cases),), streams=streams, sequence_length=1, sequences=1,
                       bias=np.concatenate([candidate, threshold]) if streams == 2 else candidate,
                       threshold=threshold, initial_level=np.array(G.column(cases, "level")).astype(wide),
                       **options)
        dense = Dense(weights=np.zeros((streams * len(cases), 1), wide), num_message_bits=PAYLOAD_BITS,
                      **dense_options)
        sink = Sink(shape=(len(cases),), buffer=1)
        source.s_out.connect(dense.s_in)
        dense.a_out.connect(unit.a_in)
        unit.s_out.connect(sink.a_in)
        layers[kind] = unit, sink
    try:
        source.run(condition=RunSteps(num_steps=1),
                   run_cfg=Loihi2SimCfg(select_tag="fixed_pt" if fixed_point else "floating_pt"))
        return {kind: (sink.data.get()[:, 0], unit.level.get(), unit.saturations.get())
                for kind, (unit, sink) in layers.items()}
    finally:
        source.stop()


@pytest.mark.lava
@pytest.mark.timeout(60)
@pytest.mark.parametrize("number", G.NUMBERS)
def test_lava_process_models(number):
    """floating_pt runs the float cases, fixed_pt the integer ones: levels, events, saturations."""
    pytest.importorskip("lava")
    for kind, (events, levels, saturations) in _lava_run(number).items():
        cases = G.select(kind, number)
        G.assert_matches(cases, new_level=levels)
        if kind == "fq-bmru":  # level changes, from the Var's 0 before the first step
            G.assert_matches(cases, new_level=events)
        else:
            G.assert_matches(cases, event=events)
        assert saturations.tolist() == [0, 0, sum(G.column(cases, "state_saturations"))]
