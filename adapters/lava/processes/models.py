"""ProcessModels (``floating_pt`` and ``fixed_pt``) for the memory-unit Processes.

Both call :func:`cmru_neuro.golden.unit_step` / :func:`cmru_neuro.golden.readout_step`, the
step of the numpy golden model, so fixed point here equals the reference bit for bit.
Absolute imports only: Lava executes this file on its own during model discovery.
"""

import numpy as np
from cmru_neuro.adapters.lava.processes.process import BMRU, CMRU, FirstQuadrantBMRU, Readout
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from cmru_neuro.golden import readout_step, unit_step


def sequence_phase(model) -> tuple[bool, bool]:
    """``(idle, reset)`` of a model with the timing proc_params of the Processes: idle
    before its first input and after its sequences; reset at each sequence's first step."""
    elapsed = model.time_step - model.proc_params["reset_offset"]  # steps since the first input
    length, sequences = model.proc_params["sequence_length"], model.proc_params["sequences"]
    idle = elapsed < 0 or (sequences is not None and elapsed >= sequences * length)
    return idle, elapsed % length == 0


class AbstractMemoryUnitModel(PyLoihiProcessModel):
    """One step of :func:`cmru_neuro.golden.unit_step` per time step; resets between sequences."""

    fixed_point = False

    @property
    def kind(self) -> str:
        return self.implements_process.kind

    @property
    def output(self) -> str:
        return self.proc_params["output"]

    def run_spk(self) -> None:
        dendrite = self.a_in.recv()
        idle, reset = sequence_phase(self)
        if idle:
            self.s_out.send(np.zeros_like(self.level))  # no input reaches it
            return
        step = unit_step(self, self.sigma, self.level, dendrite, reset, self.fixed_point,
                         self.proc_params["accumulate"])
        self.sigma[:] = step.sigma
        self.level[:] = step.level
        self.saturations[:] += np.array(step[3:])
        self.messages_sent[:] += np.count_nonzero(step.message)
        self.s_out.send(step.message.astype(self.level.dtype))


class AbstractMemoryUnitFloat(AbstractMemoryUnitModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    threshold: np.ndarray = LavaPyType(np.ndarray, float)
    initial_level: np.ndarray = LavaPyType(np.ndarray, float)
    sigma: np.ndarray = LavaPyType(np.ndarray, float)
    level: np.ndarray = LavaPyType(np.ndarray, float)
    saturations: np.ndarray = LavaPyType(np.ndarray, np.int64)
    messages_sent: np.ndarray = LavaPyType(np.ndarray, np.int64)


class AbstractMemoryUnitFixed(AbstractMemoryUnitModel):
    fixed_point = True
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    threshold: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    initial_level: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    sigma: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    level: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    saturations: np.ndarray = LavaPyType(np.ndarray, np.int64)
    messages_sent: np.ndarray = LavaPyType(np.ndarray, np.int64)


@implements(proc=CMRU, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyCMRUModelFloat(AbstractMemoryUnitFloat):
    """CMRU in floating_pt."""


@implements(proc=CMRU, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyCMRUModelFixed(AbstractMemoryUnitFixed):
    """CMRU in fixed_pt."""


@implements(proc=BMRU, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyBMRUModelFloat(AbstractMemoryUnitFloat):
    """BMRU in floating_pt."""


@implements(proc=BMRU, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyBMRUModelFixed(AbstractMemoryUnitFixed):
    """BMRU in fixed_pt."""


@implements(proc=FirstQuadrantBMRU, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyFirstQuadrantBMRUModelFloat(AbstractMemoryUnitFloat):
    """FirstQuadrantBMRU in floating_pt (its own Var: ``threshold_low``)."""

    threshold_low: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=FirstQuadrantBMRU, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFirstQuadrantBMRUModelFixed(AbstractMemoryUnitFixed):
    """FirstQuadrantBMRU in fixed_pt (its own Var: ``threshold_low``)."""

    threshold_low: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)


class AbstractReadoutModel(PyLoihiProcessModel):
    """One step of :func:`cmru_neuro.golden.readout_step` per time step; resets between sequences."""

    fixed_point = False

    @property
    def reset_mechanism(self) -> str:
        return self.proc_params["reset_mechanism"]

    def run_spk(self) -> None:
        dendrite = self.a_in.recv()
        idle, reset = sequence_phase(self)
        if idle:
            self.s_out.send(np.zeros_like(self.membrane))
            return
        step = readout_step(self, self.sigma, self.synapse, self.membrane, dendrite, reset, self.fixed_point,
                            self.proc_params["accumulate"])
        self.sigma[:] = step.sigma
        self.synapse[:] = step.synapse
        self.membrane[:] = step.output
        self.saturations[:] += np.array(step[3:])
        self.s_out.send(step.output.astype(self.membrane.dtype))


@implements(proc=Readout, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyReadoutModelFloat(AbstractReadoutModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    synapse_decay: np.ndarray = LavaPyType(np.ndarray, float)
    membrane_decay: np.ndarray = LavaPyType(np.ndarray, float)
    membrane_bias: np.ndarray = LavaPyType(np.ndarray, float)
    threshold: np.ndarray = LavaPyType(np.ndarray, float)
    sigma: np.ndarray = LavaPyType(np.ndarray, float)
    synapse: np.ndarray = LavaPyType(np.ndarray, float)
    membrane: np.ndarray = LavaPyType(np.ndarray, float)
    saturations: np.ndarray = LavaPyType(np.ndarray, np.int64)


@implements(proc=Readout, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyReadoutModelFixed(AbstractReadoutModel):
    fixed_point = True
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    synapse_decay: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    membrane_decay: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    membrane_bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    threshold: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    sigma: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    synapse: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    membrane: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    saturations: np.ndarray = LavaPyType(np.ndarray, np.int64)
