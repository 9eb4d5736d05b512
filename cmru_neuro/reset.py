"""Reset the state of every stateful neuron inside one network.

``snntorch.utils.reset`` only knows a fixed list of snnTorch classes, only looks at top-level
children and resets every registered neuron in the process. :func:`reset` walks
``net.modules()`` (nested ones included) and touches nothing outside ``net``.
"""

from __future__ import annotations

import snntorch
from torch import nn


def reset(net: nn.Module) -> int:
    """Zero (and detach) the hidden state of every snnTorch-style neuron in ``net``: ours
    (:mod:`cmru_neuro.snntorch`) and snnTorch's (anything with ``reset_mem``). Norse
    modules and the core layers keep no state between calls and need none.

    Returns how many neurons were reset.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"net: expected a torch.nn.Module, got {type(net).__name__}")
    count = 0
    for module in net.modules():
        if isinstance(module, snntorch.SpikingNeuron) and callable(
            getattr(module, "reset_mem", None)
        ):
            module.reset_mem()
            count += 1
    return count


__all__ = ["reset"]
