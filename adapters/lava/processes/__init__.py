"""Lava Processes for memory units and their readout, and their ProcessModels.

``process.py`` declares what each Process is (ports, Vars); ``models.py`` says how it runs
(``floating_pt`` and ``fixed_pt``; both call :func:`cmru_neuro.golden.unit_step`). Those
files are side-effect free: Lava's model discovery executes every ``.py`` file here.
Importing this package imports lava.
"""

import multiprocessing


def _import_lava_runtime() -> None:
    """Import Lava's runtime, which calls ``multiprocessing.set_start_method("fork")`` and
    fails if any start method was set before (even implicitly, to the default ``fork``)."""
    try:
        import lava.magma.runtime.message_infrastructure.multiprocessing
    except RuntimeError:
        method = multiprocessing.get_start_method(allow_none=True)
        if method != "fork":
            raise RuntimeError(
                f"lava needs the multiprocessing start method 'fork'; this process set {method!r}"
            ) from None
        multiprocessing.set_start_method(None, force=True)  # forget the (same) choice; lava sets it again
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401


_import_lava_runtime()

from cmru_neuro.adapters.lava.processes.process import (
    BMRU,
    CMRU,
    FirstQuadrantBMRU,
    GradedOutPort,
    MemoryUnitProcess,
    Readout,
    check_receivers,
)

__all__ = ["BMRU", "CMRU", "FirstQuadrantBMRU", "GradedOutPort", "MemoryUnitProcess", "Readout", "check_receivers"]
