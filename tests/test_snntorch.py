"""snnTorch neurons: equal to the core layers, snnTorch's calling conventions, surrogates,
errors, and a pipeline that remembers where snn.RLeaky forgets."""

import pytest
import snntorch as snn
import torch
from hypothesis import given
from hypothesis import strategies as st
from snntorch import surrogate
from snntorch.functional import quant
from torch import nn

from cmru_neuro import layers
from cmru_neuro import snntorch as cs
from cmru_neuro.reset import reset

T, B, F_IN, H = 12, 3, 4, 5
FAMILY = [(layers.CMRU, cs.CMRU), (layers.BMRU, cs.BMRU), (layers.AlphaCMRU, cs.AlphaCMRU)]


def neuron_like(core: layers.MemoryUnit, cls, **options):
    """The snnTorch neuron with the core layer's per-unit parameters."""
    fixed = core.threshold_mode == "fixed"
    kwargs = dict(size=H, threshold_from_input=not fixed, **options)
    if fixed:
        kwargs["threshold"] = core.threshold.detach()
    if not cls.step_from_input:
        kwargs["alpha"] = core.alpha.detach()
    return cls(**kwargs)


@pytest.mark.parametrize("threshold", ["input", "fixed"])
@pytest.mark.parametrize("core_cls, cls", FAMILY)
def test_step_loop_equals_core_layer(core_cls, cls, threshold):
    core = core_cls(F_IN, H, threshold=threshold)
    x = 2 * torch.randn(T, B, F_IN)
    out, _, trace = core(x, return_trace=True)
    neuron = neuron_like(core, cls)
    mem = core.initial_state(B)
    spikes, mems = [], []
    for t in range(T):
        spk, mem = neuron(core.projection(x[t]), mem)
        spikes.append(spk)
        mems.append(mem)
    torch.testing.assert_close(torch.stack(mems), out, rtol=1e-6, atol=1e-6)  # one rounding
    assert torch.equal(torch.stack(spikes), trace.events)


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
@pytest.mark.parametrize("core_cls, cls", FAMILY)
def test_sequence_mode_equals_core_layer(core_cls, cls, mode):
    core = core_cls(F_IN, H)
    x = 2 * torch.randn(T, B, F_IN)
    out, h_last, trace = core(x, return_trace=True)
    neuron = neuron_like(core, cls, sequence=True, mode=mode)
    spk, mem = neuron(core.projection(x), core.initial_state(B))
    torch.testing.assert_close(mem, out, rtol=0, atol=1e-5)
    assert torch.equal(spk, trace.events)
    torch.testing.assert_close(neuron.mem, h_last, rtol=0, atol=1e-5)


@given(
    steps=st.integers(1, 40),
    width=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    epsilon_cls=st.sampled_from([cs.CMRU, cs.BMRU]),
)
def test_parallel_sequence_equals_streaming_steps(steps, width, seed, epsilon_cls):
    torch.manual_seed(seed)
    currents = 2 * torch.randn(steps, 2, width)
    alpha = torch.rand(width) + 0.5
    streaming = epsilon_cls(threshold=0.7, size=width, alpha=alpha)
    whole = epsilon_cls(threshold=0.7, size=width, alpha=alpha, sequence=True)
    stepped = torch.stack([streaming(c)[1] for c in currents])
    spk, mem = whole(currents)
    torch.testing.assert_close(mem, stepped, rtol=0, atol=1e-5)
    assert set(spk.unique().tolist()) <= {-1.0, 0.0, 1.0}
    if epsilon_cls is cs.CMRU:  # on the lattice alpha * Z
        levels = mem / alpha
        torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-4)
    else:  # bistable once set
        assert torch.all((mem == 0) | torch.isclose(mem.abs(), alpha.expand_as(mem)))


def test_parallel_gradients_equal_step_loop():
    currents = (2 * torch.randn(T, B, 2 * H)).requires_grad_()
    for mode in ("parallel", "sequential"):
        neuron = cs.CMRU(
            size=H, threshold_from_input=True, sequence=True, mode=mode, learn_alpha=True
        )
        spk, mem = neuron(currents)
        (spk.sum() + mem.pow(2).sum()).backward()
        if mode == "parallel":
            grads = (currents.grad.clone(), neuron.alpha.grad.clone())
            currents.grad = None
    torch.testing.assert_close(currents.grad, grads[0])
    torch.testing.assert_close(neuron.alpha.grad, grads[1])


def test_init_hidden_and_output_semantics():
    x = torch.randn(B, H)
    plain = cs.CMRU()
    spk, mem = plain(x)
    assert spk.shape == mem.shape == (B, H)
    hidden = cs.CMRU(init_hidden=True)
    assert isinstance(hidden(x), torch.Tensor)
    with pytest.raises(TypeError, match="mem: should not be passed"):
        hidden(x, torch.zeros(B, H))
    spk, mem = cs.CMRU(init_hidden=True, output=True)(x)
    assert mem.shape == (B, H)


def test_state_is_carried_like_leaky_and_reset_mem_forgets_it():
    neuron = cs.CMRU(threshold=0.1)
    _, mem = neuron(torch.ones(B, H))
    _, mem2 = neuron(torch.ones(B, H))  # mem omitted: continues from the neuron's state
    torch.testing.assert_close(mem2, 2 * mem)
    assert neuron.reset_mem().shape == (0,) and "mem" not in neuron.state_dict()
    _, mem3 = neuron(torch.ones(B, H))
    assert torch.equal(mem3, mem)


@pytest.mark.parametrize(
    "cls, init", [(cs.CMRU, "init_cmru"), (cs.BMRU, "init_bmru"), (cs.AlphaCMRU, "init_alpha_cmru")]
)
def test_reset_mem_and_init_return_a_state_the_neuron_accepts_at_any_batch_size(cls, init):
    """snnTorch's class-style idiom: ``mem = neuron.init_leaky()`` / ``reset_mem()``, then
    ``spk, mem = neuron(x, mem)``; the batch size may change between calls."""
    neuron = cls(threshold=0.1, size=H, h0=0.5)
    streams = neuron.streams
    for initialise, batch in ((getattr(neuron, init), B), (neuron.reset_mem, B + 2)):
        mem = initialise()
        for _ in range(2):
            _spk, mem = neuron(torch.ones(batch, streams * H), mem)
        expected, _ = cls(threshold=0.1, size=H, h0=0.5, sequence=True, output_state=True)(
            torch.ones(2, batch, streams * H)
        )
        assert torch.equal(mem, expected[-1])


def test_outputs_events_graded_and_state_option():
    x = torch.tensor([[2.0, -2.0, 0.1]])
    spk, mem = cs.CMRU(graded_spikes_factor=0.5)(x)
    assert torch.equal(spk, torch.tensor([[0.5, -0.5, 0.0]]))
    out, mem = cs.CMRU(alpha=3.0, output_state=True)(x)
    assert torch.equal(out, mem) and torch.equal(mem, torch.tensor([[3.0, -3.0, 0.0]]))


def test_learnable_threshold_and_alpha_get_gradients():
    neuron = cs.CMRU(threshold=1.0, size=H, learn_threshold=True, learn_alpha=True)
    params = dict(neuron.named_parameters())
    assert set(params) == {"threshold", "alpha"}
    spk, mem = neuron(torch.randn(B, H) * 2)
    (spk.sum() + mem.sum()).backward()
    assert params["threshold"].grad.abs().sum() > 0 and params["alpha"].grad.abs().sum() > 0


SURROGATES = [
    surrogate.atan(),
    surrogate.fast_sigmoid(slope=10),
    surrogate.sigmoid(),
    surrogate.triangular(),
    surrogate.spike_rate_escape(),
    surrogate.straight_through_estimator(),
]


@pytest.mark.parametrize(
    "spike_grad", SURROGATES, ids=lambda s: getattr(s, "__name__", type(s).__name__)
)
def test_any_snntorch_surrogate_works_as_spike_grad(spike_grad):
    # |x| < 3: snnTorch's own sigmoid surrogate overflows to NaN beyond |25 x| ~ 88
    currents = torch.randn(T, B, 2 * H).clamp(-3, 3).requires_grad_()
    reference = cs.CMRU(threshold_from_input=True, sequence=True)(currents.detach())
    spk, mem = cs.CMRU(spike_grad=spike_grad, threshold_from_input=True, sequence=True)(currents)
    assert torch.equal(spk, reference[0]) and torch.equal(mem, reference[1])
    mem.sum().backward()
    assert torch.isfinite(currents.grad).all() and currents.grad.abs().sum() > 0


def test_default_surrogate_matches_snntorch_atan_gradient():
    grads = []
    for spike_grad in (None, surrogate.atan()):
        currents = torch.linspace(-2, 2, 2 * H).reshape(1, 2 * H).requires_grad_()
        cs.CMRU(spike_grad=spike_grad, threshold_from_input=True)(currents)[1].sum().backward()
        grads.append(currents.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_surrogate_disable_keeps_values_and_blocks_gradient():
    currents = 2 * torch.randn(B, H).requires_grad_()
    _spk, mem = cs.CMRU(surrogate_disable=True)(currents)
    assert torch.equal(mem, cs.CMRU()(currents)[1]) and not mem.requires_grad


def test_state_quant_quantizes_the_kept_state():
    quantizer = quant.state_quant(num_bits=2, uniform=True, threshold=1.0)
    neuron = cs.CMRU(threshold=0.1, alpha=0.3, state_quant=quantizer)
    for _ in range(3):
        _, mem = neuron(torch.ones(B, H))
    assert torch.equal(neuron.mem, mem) and torch.equal(mem, quantizer(mem))


def test_hidden_state_helpers_do_not_crash_after_state_quant():
    quantizer = quant.state_quant(num_bits=8, uniform=True)
    neuron = cs.CMRU(init_hidden=True, state_quant=quantizer)
    neuron(torch.randn(B, H, requires_grad=True))
    cs.CMRU.detach_hidden()
    assert not neuron.mem.requires_grad
    cs.CMRU.reset_hidden()
    assert neuron.mem.numel() == 0
    neuron(torch.zeros(B, H))  # the next step starts from zeros
    assert torch.equal(neuron.mem, quantizer(torch.zeros(B, H)))
    cs.BMRU.detach_hidden()
    cs.AlphaCMRU.reset_hidden()


def test_conv_shaped_input_and_dtype():
    _spk, mem = cs.CMRU()(torch.randn(2, 3, 4, 4, dtype=torch.float64))
    assert mem.shape == (2, 3, 4, 4) and mem.dtype == torch.float64


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: cs.CMRU(size=H)(torch.randn(B, H + 1)), ValueError, ["input_", "5", "6"]),
        (
            lambda: cs.CMRU(threshold_from_input=True)(torch.randn(B, 3)),
            ValueError,
            ["input_", "multiple of 2", "3"],
        ),
        (
            lambda: cs.CMRU(size=H)(torch.randn(B, H), torch.zeros(B, H + 2)),
            ValueError,
            ["mem", "(3, 5)", "(3, 7)"],
        ),
        (
            lambda: cs.CMRU()(torch.randn(B, H), (torch.zeros(B, H), torch.zeros(B, H))),
            TypeError,
            ["mem", "tuple"],
        ),
        (lambda: cs.CMRU()([1.0, 2.0]), TypeError, ["input_", "list"]),
        (lambda: cs.CMRU()(torch.ones(B, H, dtype=torch.long)), TypeError, ["input_", "int64"]),
        (
            lambda: cs.CMRU(threshold_from_input=True, learn_threshold=True),
            ValueError,
            ["learn_threshold"],
        ),
        (lambda: cs.AlphaCMRU(alpha=2.0), TypeError, ["alpha", "AlphaCMRU"]),
        (
            lambda: cs.CMRU(size=H, threshold=torch.ones(H + 1)),
            ValueError,
            ["threshold", "(5,)", "(6,)"],
        ),
        (lambda: cs.CMRU(mode="scan"), ValueError, ["mode", "'scan'"]),
        (lambda: cs.CMRU(size=0), ValueError, ["size", "0"]),
        (
            lambda: cs.CMRU(sequence=True, state_quant=quant.state_quant(4)),
            ValueError,
            ["state_quant", "sequence"],
        ),
        (lambda: cs.CMRU(1.0, None, False, True), TypeError, ["positional"]),
    ],
)
def test_errors_name_argument_expectation_and_value(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_swapped_input_and_mem_is_caught():
    neuron = cs.CMRU(size=H, threshold_from_input=True)
    currents, mem = torch.randn(B, 2 * H), torch.zeros(B, H)
    with pytest.raises(ValueError, match="swap input_ and mem"):
        neuron(mem, currents)


def test_state_from_another_layer_is_caught():
    first, second = cs.CMRU(size=H), cs.CMRU(size=H + 1)
    _, mem = first(torch.randn(B, H))
    with pytest.raises(ValueError, match="another layer"):
        second(torch.randn(B, H + 1), mem)


# -- a memory task: the class is a cue at t = 0, read out T steps later through noise --


def train_pipeline(fit, middle: nn.Module, hidden: int = 16, steps: int = 60, iterations: int = 30) -> float:
    """Linear -> middle -> Linear -> Leaky on copy-first, BPTT through a time loop."""
    net = nn.Sequential(
        nn.Linear(2, hidden),
        middle,
        nn.Linear(hidden, 2),
        snn.Leaky(beta=0.5, init_hidden=True, output=True),
    )

    def logits(inputs):
        reset(net)
        for x_t in inputs:
            _, mem = net(x_t)
        return mem

    return fit(net.parameters(), logits, length=steps, batch=64, iterations=iterations)


def test_pipeline_with_cmru_remembers_where_rleaky_forgets(fit_copy_first):
    torch.manual_seed(0)
    cmru = train_pipeline(fit_copy_first, cs.CMRU(init_hidden=True, output_state=True))
    torch.manual_seed(0)
    rleaky = train_pipeline(fit_copy_first, snn.RLeaky(beta=0.9, linear_features=16, init_hidden=True))
    assert cmru >= 0.95, cmru
    assert rleaky <= 0.65, rleaky


def test_failed_construction_leaves_the_global_helpers_working():
    with pytest.raises(ValueError):
        cs.CMRU(mode="scan")
    with pytest.raises(ValueError):
        cs.CMRU(size=H, alpha=torch.ones(H + 1))
    cs.CMRU.detach_hidden()
    cs.CMRU.reset_hidden()
