"""Reset the state of every stateful neuron inside one network.

For its own classes ``snntorch.utils.reset`` only knows a fixed list, only looks at top-level
children and resets every registered neuron in the process (:mod:`cmru_neuro.snntorch`
wraps it so that it also resets ours inside ``net``). :func:`reset` walks ``net.modules()``
(nested ones included) for ours and snnTorch's alike and touches nothing outside ``net``.
"""

from __future__ import annotations

import snntorch
from torch import nn


def reset(net: nn.Module) -> int:
    """Reset (and detach) the hidden state of every snnTorch-style neuron in ``net``: ours
    (:mod:`cmru_neuro.snntorch`: the next step starts from ``h0``) and snnTorch's (anything
    with ``reset_mem``: zeros). Norse modules and the core layers keep no state between calls
    and need none.

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
