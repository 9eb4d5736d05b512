"""Cumulative Memory Recurrent Units (CMRU, alpha-CMRU, BMRU) for the neuromorphic toolchain.

The math is in :mod:`cmru_neuro.functional`; the layers here wrap it with the interface of
``torch.nn.GRU``. Front-ends: :mod:`cmru_neuro.snntorch`, :mod:`cmru_neuro.norse`,
:mod:`cmru_neuro.nir`, :mod:`cmru_neuro.energy`, :mod:`cmru_neuro.quant` and
:mod:`cmru_neuro.adapters.lava`.
"""

import warnings

from . import baselines, functional
from .layers import BMRU, CMRU, AlphaCMRU, FirstQuadrantBMRU, MemoryTrace, MemoryUnit
from .network import MemoryNetwork
from .reset import reset
from .schedule import EpsilonSchedule

with warnings.catch_warnings():
    # Norse decorates functions with torch.jit.script at import, which torch now flags as
    # deprecated: library noise on every import (and on the CLI's one-line errors).
    warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=FutureWarning)
    try:  # registers the CMRU node with nir.read (NIR is the optional 'nir' extra)
        from . import nir  # noqa: F401 (imported for its registration)
    except ImportError:  # pragma: no cover - without the extra
        pass

__version__ = "0.1.0"

__all__ = [
    "AlphaCMRU",
    "BMRU",
    "CMRU",
    "EpsilonSchedule",
    "FirstQuadrantBMRU",
    "MemoryNetwork",
    "MemoryTrace",
    "MemoryUnit",
    "baselines",
    "functional",
    "reset",
]
