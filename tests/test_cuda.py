"""The layers on a CUDA device: the same outputs and gradients as on the CPU, and no host
sync in a training step (``torch.cuda.set_sync_debug_mode("error")`` turns one into an
error). Skipped without CUDA; ``benchmarks/device_check.sh`` runs them on a GPU machine.
Needs only torch (and Triton for the fused kernels), not the spiking front-ends."""

import pytest
import torch

from cmru_neuro import BMRU, CMRU, AlphaCMRU, MemoryNetwork, kernels

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

LAYERS = {"cmru": CMRU, "bmru": BMRU, "acmru": AlphaCMRU}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("fused", [True, False])
def test_a_layer_on_cuda_computes_what_it_computes_on_cpu(name, fused):
    torch.manual_seed(0)
    cpu = LAYERS[name](5, 7)
    gpu = LAYERS[name](5, 7).cuda()
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(40, 3, 5)
    results = []
    for layer, inputs in ((cpu, x), (gpu, x.cuda())):
        kernels.use_fused_kernels(fused)
        try:
            out, last, trace = layer(inputs, return_trace=True)
        finally:
            kernels.use_fused_kernels(True)
        loss = (out * torch.linspace(-1, 1, out.shape[-1], device=out.device)).sum() + last.square().sum()
        grads = torch.autograd.grad(loss, list(layer.parameters()))
        results.append([t.cpu() for t in (out, last, trace.events, trace.levels, *grads)])
    (out, last, events, levels, *grads), (out_gpu, last_gpu, events_gpu, levels_gpu, *grads_gpu) = results
    torch.testing.assert_close(out_gpu, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last_gpu, last, atol=1e-5, rtol=1e-5)
    assert torch.equal(events_gpu, events)
    torch.testing.assert_close(levels_gpu, levels, atol=1e-5, rtol=1e-5)
    for grad_gpu, grad in zip(grads_gpu, grads):
        torch.testing.assert_close(grad_gpu, grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("unit", ["cmru", "bmru", "acmru"])
def test_a_training_step_on_cuda_never_waits_for_the_device(unit):
    """Forward (input checks included) and backward of a deployable network queue without a
    host-device sync; the loss is read only after the sync-debug mode is off."""
    net = MemoryNetwork(5, (8, 8), 3, unit=unit).cuda()
    x = torch.randn(64, 4, 5, device="cuda")
    net(x).sum().backward()  # compile the kernels and allocate before checking
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = net(x).square().mean()
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss).item()
