"""Run memory-unit networks on Lava's simulators (``Loihi2SimCfg``).

:func:`to_lava` builds the process graph of a :class:`~cmru_neuro.golden.NetworkSpec` (or a
float :class:`~cmru_neuro.network.MemoryNetwork`)::

    Dense(W_1) -> CMRU/BMRU/FirstQuadrantBMRU -> Dense(W_2) -> ... -> Dense(W_r) -> Readout

The spec comes from a MemoryNetwork or from an snnTorch / Norse pipeline
(:func:`cmru_neuro.quant.pipeline_spec`). A float spec runs the ``floating_pt`` ProcessModels,
an integer spec (from :func:`cmru_neuro.quant.quantize`) the ``fixed_pt`` ones, which equal
the numpy golden model bit for bit. :func:`run_on_lava` adds RingBuffer source and sink,
runs a batch of sequences back to back, and returns outputs aligned with the torch model.

This file is the package's front; the code is in :mod:`.build` (:func:`check_spec`,
:func:`to_lava`, :func:`check_graph`), :mod:`.run` (:func:`run_on_lava`,
:func:`source_data`) and :mod:`.processes` (the Processes and their ProcessModels). Lava is
imported only inside the functions: ``import cmru_neuro`` never imports it (it sets the
multiprocessing start method on import and exists only on Python 3.10).
"""

from cmru_neuro.adapters.lava.build import LavaNetwork, check_graph, check_spec, import_lava, to_lava
from cmru_neuro.adapters.lava.run import LavaRun, run_on_lava, source_data

__all__ = ["LavaNetwork", "LavaRun", "check_graph", "check_spec", "import_lava", "run_on_lava", "source_data",
           "to_lava"]
