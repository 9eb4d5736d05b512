"""Norse neurons: equal to the core layers and the snnTorch neurons, Norse's conventions,
real parameters, errors, and a SequentialState pipeline that remembers where LIFRecurrent
forgets."""

import copy
import pickle

import norse.torch as nt
import pytest
import torch
from norse.torch.module.snn import SNN, SNNCell
from torch import nn

from cmru_neuro import functional as F
from cmru_neuro import layers
from cmru_neuro import norse as cn
from cmru_neuro import snntorch as cs

T, B, F_IN, H = 12, 3, 4, 5
FAMILY = [
    (layers.CMRU, cn.CMRUCell, cn.CMRU, cs.CMRU),
    (layers.BMRU, cn.BMRUCell, cn.BMRU, cs.BMRU),
    (layers.AlphaCMRU, cn.AlphaCMRUCell, cn.AlphaCMRU, cs.AlphaCMRU),
]


def parameters_of(core: layers.MemoryUnit) -> cn.CMRUParameters:
    threshold = core.threshold.detach() if core.threshold_mode == "fixed" else None
    return cn.CMRUParameters(threshold=threshold, alpha=core.alpha.detach())


def initial(core: layers.MemoryUnit) -> cn.CMRUState:
    h0 = core.initial_state(B)
    return cn.CMRUState(h0, torch.zeros_like(h0))


@pytest.mark.parametrize("threshold", ["input", "fixed"])
@pytest.mark.parametrize("core_cls, cell_cls, seq_cls, snn_cls", FAMILY)
def test_cell_sequence_snntorch_and_core_agree(core_cls, cell_cls, seq_cls, snn_cls, threshold):
    core = core_cls(F_IN, H, threshold=threshold)
    x = 2 * torch.randn(T, B, F_IN)
    out, _, trace = core(x, return_trace=True)
    currents = core.projection(x)
    cell, state = cell_cls(parameters_of(core)), initial(core)
    stepped = []
    for c in currents:
        events, state = cell(c, state)
        stepped.append((events, state.h, state.level))
    events, hs, levels = (torch.stack(v) for v in zip(*stepped))
    assert torch.equal(events, trace.events) and torch.equal(levels, trace.levels)
    torch.testing.assert_close(hs, out, rtol=1e-6, atol=1e-6)  # one rounding (alpha-CMRU)
    for mode in ("parallel", "sequential"):
        seq_events, states = seq_cls(parameters_of(core), record_states=True, mode=mode)(
            currents, initial(core)
        )
        assert torch.equal(seq_events, trace.events) and torch.equal(states.level, trace.levels)
        torch.testing.assert_close(states.h, out, rtol=0, atol=1e-5)
    options = {"size": H, "threshold_from_input": threshold == "input"}
    if threshold == "fixed":
        options["threshold"] = core.threshold.detach()
    if not snn_cls.step_from_input:
        options["alpha"] = core.alpha.detach()
    spk, mem = snn_cls(sequence=True, **options)(currents, core.initial_state(B))
    assert torch.equal(spk, seq_events)
    torch.testing.assert_close(mem, states.h, rtol=0, atol=1e-5)


def test_sequence_continues_from_a_state_like_one_pass():
    module = cn.BMRU(cn.CMRUParameters(threshold=torch.full((H,), 0.5)))
    currents = 2 * torch.randn(2 * T, B, H)
    whole, final = module(currents)
    first, middle = module(currents[:T])
    second, final_chunked = module(currents[T:], middle)
    assert torch.equal(torch.cat([first, second]), whole)
    assert torch.equal(final_chunked.h, final.h) and torch.equal(final_chunked.level, final.level)


def test_pure_step_function_is_the_norse_signature():
    state = cn.CMRUState(torch.zeros(B, H), torch.zeros(B, H))
    events, new = cn.cmru_feed_forward_step(
        torch.full((B, H), 2.0), state, cn.CMRUParameters(alpha=torch.tensor(0.5)), 0.001
    )
    assert torch.equal(events, torch.ones(B, H)) and torch.equal(new.h, torch.full((B, H), 0.5))
    events, new = cn.bmru_feed_forward_step(torch.full((B, H), -2.0), new)
    assert torch.equal(new.h, -torch.ones(B, H))


def test_epsilon_and_step_rule_live_in_p_and_the_kind_classes_fill_them_in():
    x, state = 2 * torch.randn(B, H), cn.CMRUState(torch.zeros(B, H), torch.zeros(B, H))
    assert (cn.BMRUCell().p.epsilon, cn.CMRUCell().p.epsilon) == (0.0, 1.0)
    assert cn.AlphaCMRU().p.step_from_input and not cn.CMRU().p.step_from_input
    bmru = cn.BMRUCell(cn.CMRUParameters(threshold=torch.tensor(0.5)))  # default epsilon: filled
    generic = cn.MemoryCell(cn.CMRUParameters(threshold=torch.tensor(0.5), epsilon=0.0))
    pure = cn.memory_feed_forward_step(x, state, generic.p, 0.001)
    for events, new in (bmru(x, state), generic(x, state), pure):
        assert torch.equal(events, pure[0]) and torch.equal(new.h, pure[1].h)
    bmru.p = cn.CMRUParameters(threshold=torch.tensor(0.5))  # assigning p keeps the kind too
    assert bmru.p.epsilon == 0.0 and bmru.epsilon == 0.0


def test_the_state_is_functional_memory_state_and_the_modules_are_norse_s_own():
    assert cn.CMRUState is cn.MemoryState is F.MemoryState
    cell, sequence = cn.CMRUCell(), cn.BMRU(record_states=True)
    assert type(cell).forward is SNNCell.forward
    for module in (cell, sequence):
        assert module.activation is cn.memory_feed_forward_step
        assert module.state_fallback == module.initial_state
    x, state = 2 * torch.randn(T, B, H), cn.CMRUState(torch.randn(B, H), torch.zeros(B, H))
    out, states = sequence(x, state)
    loop_out, loop_states = SNN.forward(sequence, x, state)  # Norse's step loop: the same
    assert torch.equal(out, loop_out) and torch.equal(states.level, loop_states.level)
    torch.testing.assert_close(states.h, loop_states.h)


def test_output_state_is_a_field_of_p():
    x = torch.randn(T, B, H)
    out, states = cn.CMRU(cn.CMRUParameters(output_state=True), record_states=True)(x)
    assert torch.equal(out, states.h) and cn.CMRU(output_state=True).p.output_state
    p = cn.CMRUParameters(output_state=True)
    events, new = cn.memory_scan(x, cn.CMRU().initial_state(x), p)
    assert torch.equal(events, new.h)


def test_output_state_option_and_record_states_shapes():
    module = cn.CMRU(output_state=True, record_states=True)
    out, states = module(torch.randn(T, B, H))
    assert torch.equal(out, states.h) and states.level.shape == (T, B, H)


def test_learnable_values_are_module_parameters():
    cell = cn.CMRUCell(
        cn.CMRUParameters(threshold=torch.ones(H), alpha=torch.ones(H)),
        learn_threshold=True,
        learn_alpha=True,
    )
    assert {name for name, _ in cell.named_parameters()} == {"threshold", "alpha"}
    optimizer = torch.optim.SGD(cell.parameters(), lr=0.1)
    events, state = cell(2 * torch.randn(B, H))
    (events.sum() + state.h.sum()).backward()
    optimizer.step()
    assert not torch.equal(cell.p.alpha, torch.ones(H))  # p follows the parameters
    cell.double()
    assert cell.p.threshold.dtype == torch.float64
    twin = copy.deepcopy(cell)
    assert twin.p.alpha is not cell.p.alpha and torch.equal(twin.p.alpha, cell.p.alpha)


def test_p_follows_dtype_moves_state_dict_copies_and_optimizer_steps():
    p = cn.CMRUParameters(threshold=torch.ones(H), alpha=torch.ones(H))
    cell = cn.BMRUCell(p, learn_threshold=True)
    x = torch.full((B, H), 1.05)
    assert torch.equal(cell(x)[0], torch.ones(B, H))
    optimizer = torch.optim.SGD(cell.parameters(), lr=0.1)
    (-cell.threshold.sum()).backward()
    optimizer.step()  # threshold 1.1: the forward sees it
    assert cell.p.threshold is cell.threshold and torch.equal(cell(x)[0], torch.zeros(B, H))
    cell.double()
    assert cell.p.alpha is cell.alpha and cell.alpha.dtype == torch.float64  # a buffer, replaced
    events, state = cell(x.double())
    assert events.dtype == state.h.dtype == torch.float64
    twin = cn.BMRUCell(cn.CMRUParameters(torch.zeros(H), torch.zeros(H)), learn_threshold=True)
    twin.double().load_state_dict(cell.state_dict())
    assert torch.equal(twin(x.double())[1].h, state.h)
    twin.load_state_dict(cell.state_dict(), assign=True)  # new tensors: p follows
    assert twin.p.threshold is twin.threshold and twin.p.alpha is twin.alpha
    for copied in (copy.deepcopy(cell), pickle.loads(pickle.dumps(cell))):
        assert copied.p.threshold is copied.threshold and copied.p.threshold is not cell.threshold
        assert isinstance(copied.threshold, nn.Parameter) and copied.epsilon == 0.0
        assert torch.equal(copied(x.double())[1].h, state.h)


def test_assigning_p_registers_its_tensors():
    cell = cn.CMRUCell(learn_alpha=True)
    cell.p = cell.p._replace(threshold=torch.tensor(3.0))
    assert cell.threshold is cell.p.threshold
    assert {name for name, _ in cell.named_parameters()} == {"alpha"}
    assert torch.equal(cell(torch.full((B, H), 2.0))[0], torch.zeros(B, H))
    learned = nn.Parameter(torch.ones(H))
    cell.p = cell.p._replace(threshold=learned, alpha=torch.tensor(0.5))
    assert cell.threshold is learned and {n for n, _ in cell.named_parameters()} == {"threshold"}
    cell.threshold = nn.Parameter(torch.full((H,), 2.0))  # the attribute, too, is p's
    assert cell.p.threshold is cell.threshold
    cell.p = cn.CMRUParameters()  # plain tensors are copied: no buffer aliases the defaults
    assert cell.alpha is not cn.CMRUParameters().alpha and cell.p.alpha is cell.alpha
    with pytest.raises(TypeError, match="p: expected CMRUParameters, got LIFParameters"):
        cell.p = nt.LIFParameters()


def test_sequential_state_with_cells_and_with_sequences():
    cells = nt.SequentialState(
        nn.Linear(F_IN, 2 * H),
        cn.CMRUCell(cn.CMRUParameters(threshold=None)),
        nn.Linear(H, 2),
        nt.LIFBoxCell(),
    )
    x = torch.randn(T, B, F_IN)
    state = None
    for x_t in x:
        out, state = cells(x_t, state)
    assert out.shape == (B, 2) and isinstance(state[1], cn.CMRUState)
    sequences = nt.SequentialState(nn.Linear(F_IN, H), cn.CMRU(), nn.Linear(H, 2), nt.LI())
    out, state = sequences(x)
    assert out.shape == (T, B, 2) and isinstance(state[1], cn.CMRUState)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (
            lambda: cn.CMRUCell(cn.CMRUParameters(threshold=torch.ones(H)))(torch.randn(B, H + 1)),
            ValueError,
            ["input_tensor", "5", "6"],
        ),
        (
            lambda: cn.CMRUCell(cn.CMRUParameters(threshold=None))(torch.randn(B, 3)),
            ValueError,
            ["input_tensor", "multiple of 2", "3"],
        ),
        (lambda: cn.CMRU()(torch.randn(B)), ValueError, ["input_tensor", "2 axes", "(3,)"]),
        (
            lambda: cn.CMRUCell()(
                torch.randn(B, H), cn.CMRUState(torch.zeros(B, H + 1), torch.zeros(B, H + 1))
            ),
            ValueError,
            ["state.h", "(3, 5)", "(3, 6)", "another layer"],
        ),
        (
            lambda: cn.CMRUCell()(torch.randn(B, H), nt.LIFBoxCell()(torch.randn(B, H))[1]),
            TypeError,
            ["state", "CMRUState", "LIFBoxFeedForwardState"],
        ),
        (lambda: cn.CMRUCell()(torch.randn(B, H).long()), TypeError, ["input_tensor", "int64"]),
        (
            lambda: cn.CMRUCell(nt.LIFParameters()),
            TypeError,
            ["p", "CMRUParameters", "LIFParameters"],
        ),
        (
            lambda: cn.CMRU(cn.CMRUParameters(threshold=None), learn_threshold=True),
            ValueError,
            ["learn_threshold"],
        ),
        (lambda: cn.AlphaCMRUCell(learn_alpha=True), ValueError, ["learn_alpha", "AlphaCMRUCell"]),
        (lambda: cn.CMRU(mode="fast"), ValueError, ["mode", "'fast'"]),
        (
            lambda: cn.BMRUCell(cn.CMRUParameters(epsilon=0.5)),
            ValueError,
            ["p.epsilon", "BMRUCell", "BMRU", "0.5"],
        ),
        (lambda: cn.CMRU(cn.CMRUParameters(epsilon=0.0)), ValueError, ["p.epsilon", "CMRU", "0.0"]),
        (
            lambda: cn.BMRU(cn.CMRUParameters(step_from_input=True)),
            ValueError,
            ["p.step_from_input", "BMRU", "True"],
        ),
        (
            lambda: cn.MemoryCell(cn.CMRUParameters(epsilon=0.5)),
            ValueError,
            ["p", "epsilon", "0.5"],
        ),
    ],
)
def test_errors_name_argument_expectation_and_value(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_swapped_input_and_state_is_caught():
    cell = cn.CMRUCell()
    _, state = cell(torch.randn(B, H))
    with pytest.raises(TypeError, match="swap input_tensor and state"):
        cell(state, torch.randn(B, H))


def test_state_from_another_layer_is_caught_in_a_stack():
    stack = nt.SequentialState(cn.CMRUCell(), nn.Linear(H, H + 1), cn.CMRUCell())
    _, states = stack(torch.randn(B, H))
    with pytest.raises(ValueError, match="another layer"):
        stack(torch.randn(B, H), [states[2], None, states[0]])


# -- the memory task of test_snntorch.py, as a Norse SequentialState pipeline --


def train_pipeline(fit, middle: nn.Module, hidden: int = 16, steps: int = 50, iterations: int = 20) -> float:
    """Linear -> middle -> Linear -> LI over copy-first; the last LI voltage is the logit."""
    net = nt.SequentialState(nn.Linear(2, hidden), middle, nn.Linear(hidden, 2), nt.LI())
    return fit(net.parameters(), lambda x: 10 * net(x)[0][-1], length=steps, batch=32, iterations=iterations)


def test_sequential_state_pipeline_with_cmru_remembers_where_lif_recurrent_forgets(fit_copy_first):
    torch.manual_seed(0)
    cmru = train_pipeline(fit_copy_first, cn.CMRU(output_state=True))
    torch.manual_seed(0)
    recurrent = train_pipeline(fit_copy_first, nt.LIFRecurrent(16, 16))
    assert cmru >= 0.95, cmru
    assert recurrent <= 0.65, recurrent
