"""Baselines in the interface of the memory units: ``layer(x, h0=None) -> (outputs, h_last)``.

- :class:`LRU` (Orvieto et al. 2023): complex diagonal recurrence with ring initialisation.
- :class:`MinGRU`: Feng et al. 2024 (``form="log"``: ``g`` candidate, log-space scan) or
  the CMRU authors' (``form="linear"``: linear candidate, linear-space scan, learned h_0).

Both accept ``mode="parallel"`` (default) or ``"sequential"`` and ``batch_first``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from ._checks import check_choice, check_positive_int, check_sequence, check_state, require
from .functional import linear_scan
from .layers import MODES


class _SequenceLayer(nn.Module):
    """Shared plumbing: validation, layout, mode selection."""

    def __init__(self, input_size: int, hidden_size: int, batch_first: bool, mode: str):
        super().__init__()
        self.input_size = check_positive_int(input_size, "input_size")
        self.hidden_size = check_positive_int(hidden_size, "hidden_size")
        self.batch_first = bool(batch_first)
        self.mode = check_choice(mode, "mode", MODES)

    def forward(self, x: Tensor, h0: Optional[Tensor] = None, *, mode: Optional[str] = None):
        """``x`` (T, B, F) -> ``(outputs (T, B, H), h_last (B, state))``."""
        mode = self.mode if mode is None else check_choice(mode, "mode", MODES)
        x, batched = check_sequence(x, "x", self.input_size, self.batch_first, self.dtype)
        if h0 is not None:
            h0 = check_state(h0, "h0", x.shape[1], self.state_size, batched, self.state_dtype)
        outputs, h_last = self._run(x, h0, mode == "parallel")
        if not batched:
            return outputs.squeeze(1), h_last.squeeze(0)
        return (outputs.transpose(0, 1) if self.batch_first else outputs), h_last

    @property
    def state_size(self) -> int:
        return self.hidden_size

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype: what the input must be."""
        return next(self.parameters()).dtype

    @property
    def state_dtype(self):
        """What a given ``h0`` must be (None: any)."""
        return self.dtype

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, mode={self.mode!r}, batch_first={self.batch_first}"


class LRU(_SequenceLayer):
    """Linear recurrent unit: ``x_k = lambda * x_{k-1} + gamma * (B u_k)``,
    ``y_k = Re(C x_k) + D u_k``.

    ``lambda = exp(-exp(nu_log) + i exp(theta_log))`` with ``|lambda|`` uniform on the ring
    ``[r_min, r_max]`` and phase in ``[0, max_phase]``. The state is complex ``(B, H)``;
    outputs are ``output_size`` wide (default H: C is the output projection).
    init: ``"orvieto"`` (normal B, C, D as in Orvieto et al.) or ``"xavier"`` (the CMRU
    authors': Xavier-uniform complex B and C, real and imaginary parts each a half).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        batch_first: bool = False,
        mode: str = "parallel",
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        output_size: Optional[int] = None,
        init: str = "orvieto",
    ):
        super().__init__(input_size, hidden_size, batch_first, mode)
        self.output_size = hidden_size if output_size is None else check_positive_int(output_size, "output_size")
        self.init = check_choice(init, "init", ("orvieto", "xavier"))
        if not 0 <= r_min < r_max <= 1:
            raise ValueError(f"r_min, r_max: expected 0 <= r_min < r_max <= 1, got {r_min}, {r_max}")
        u1, u2 = torch.rand(hidden_size), torch.rand(hidden_size)
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2)))
        self.theta_log = nn.Parameter(torch.log(max_phase * u2 + 1e-8))
        modulus = torch.exp(-torch.exp(self.nu_log.detach()))
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1 - modulus**2)))
        out = self.output_size
        self.B_re = nn.Parameter(torch.empty(hidden_size, input_size))
        self.B_im = nn.Parameter(torch.empty(hidden_size, input_size))
        self.C_re = nn.Parameter(torch.empty(out, hidden_size))
        self.C_im = nn.Parameter(torch.empty(out, hidden_size))
        self.D = nn.Parameter(torch.empty(out, input_size))
        with torch.no_grad():
            if self.init == "xavier":
                for weight in (self.B_re, self.B_im, self.C_re, self.C_im):
                    nn.init.xavier_uniform_(weight, gain=1 / math.sqrt(2))
            else:
                for weight, fan in ((self.B_re, 2 * input_size), (self.B_im, 2 * input_size),
                                    (self.C_re, hidden_size), (self.C_im, hidden_size)):
                    nn.init.normal_(weight, 0.0, 1 / math.sqrt(fan))
            nn.init.normal_(self.D, 0.0, 1 / math.sqrt(input_size))

    @property
    def eigenvalues(self) -> Tensor:
        """lambda, complex ``(H,)``."""
        return _eigenvalues(self.nu_log, self.theta_log)

    #: a real h0 is accepted and made complex
    state_dtype = None

    def _run(self, u: Tensor, h0: Optional[Tensor], parallel: bool):
        # No complex half on CPU: 16-bit parameters run the recurrence in float32.
        work = torch.promote_types(u.dtype, torch.float32)
        nu_log, theta_log, gamma_log, B_re, B_im, C_re, C_im, D = (
            p.to(work) for p in (self.nu_log, self.theta_log, self.gamma_log, self.B_re,
                                 self.B_im, self.C_re, self.C_im, self.D)
        )
        u = u.to(work)
        lam = _eigenvalues(nu_log, theta_log)
        B = torch.complex(B_re, B_im) * torch.exp(gamma_log).unsqueeze(-1)
        drive = torch.complex(u, torch.zeros_like(u)) @ B.transpose(0, 1)  # (T, B, H)
        if h0 is None:
            h0 = drive.new_zeros(drive.shape[1:])
        elif not h0.is_complex():
            h0 = torch.complex(h0.to(work), torch.zeros_like(h0, dtype=work))
        if parallel:
            x, carry = linear_scan(lam.expand_as(drive), drive)
            x = x + carry * h0
        else:
            states, h = [], h0
            for t in range(drive.shape[0]):
                h = lam * h + drive[t]
                states.append(h)
            x = _stack(states, h0)
        y = (x @ torch.complex(C_re, C_im).transpose(0, 1)).real + u @ D.transpose(0, 1)
        return y.to(self.dtype), _last(x, h0)


def _eigenvalues(nu_log: Tensor, theta_log: Tensor) -> Tensor:
    """``lambda = exp(-exp(nu_log) + i exp(theta_log))``, complex ``(H,)``."""
    return torch.exp(torch.complex(-torch.exp(nu_log), torch.exp(theta_log)))


def _g(x: Tensor) -> Tensor:
    """minGRU's positive activation: x + 0.5 for x >= 0, sigmoid(x) below."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def _log_g(x: Tensor) -> Tensor:
    return torch.where(x >= 0, torch.log(nn.functional.relu(x) + 0.5), -nn.functional.softplus(-x))


class MinGRU(_SequenceLayer):
    """minGRU: ``z = sigmoid(W_z x)``, ``h_t = (1 - z) h_{t-1} + z h~``.

    form ``"log"`` (Feng et al. 2024): ``h~ = g(W_h x)``, the log-space scan
    (``logcumsumexp``), states positive (a given ``h0`` must be positive), ``h_0 = 0``.
    form ``"linear"`` (the CMRU authors'): ``h~ = W_h x``, the linear-space scan
    (:func:`~cmru_neuro.functional.linear_scan`), learned ``h_0 ~ U[-1, 1]``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, batch_first: bool = False,
                 mode: str = "parallel", bias: bool = True, form: str = "log"):
        super().__init__(input_size, hidden_size, batch_first, mode)
        self.form = check_choice(form, "form", ("log", "linear"))
        self.projection = nn.Linear(input_size, 2 * hidden_size, bias=bias)
        if self.form == "linear":
            self.initial_state = nn.Parameter(torch.empty(hidden_size).uniform_(-1.0, 1.0))

    def _run(self, x: Tensor, h0: Optional[Tensor], parallel: bool):
        gate, hidden = self.projection(x).chunk(2, dim=-1)
        if self.form == "linear":
            return self._run_linear(gate, hidden, h0, parallel)
        if h0 is not None:
            require((h0 > 0).all(), "h0: expected positive values (minGRU states are positive)")
        start = gate.new_zeros(gate.shape[1:]) if h0 is None else h0
        if not parallel:
            return _loop(torch.sigmoid(gate), _g(hidden), start)
        log_z = -nn.functional.softplus(-gate)
        log_coeffs = -nn.functional.softplus(gate)  # log(1 - z)
        log_values = log_z + _log_g(hidden)
        if h0 is not None:
            log_values = torch.cat([h0.log().unsqueeze(0), log_values])
            log_coeffs = nn.functional.pad(log_coeffs, (0, 0, 0, 0, 1, 0))
        a_star = log_coeffs.cumsum(dim=0)
        out = torch.exp(a_star + torch.logcumsumexp(log_values - a_star, dim=0))
        if h0 is not None:
            out = out[1:]
        return out, _last(out, start)

    def _run_linear(self, gate: Tensor, candidate: Tensor, h0: Optional[Tensor], parallel: bool):
        z = torch.sigmoid(gate)
        h0 = self.initial_state.expand(z.shape[1:]) if h0 is None else h0
        if not parallel:
            return _loop(z, candidate, h0)
        states, carry = linear_scan(1 - z, z * candidate)
        out = states + carry * h0
        return out, _last(out, h0)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", form={self.form!r}"


def _loop(z: Tensor, candidate: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    """The step loop ``h = (1 - z_t) h + z_t h~_t`` over time-first ``(T, B, H)``."""
    start, states = h, []
    for t in range(z.shape[0]):
        h = (1 - z[t]) * h + z[t] * candidate[t]
        states.append(h)
    out = _stack(states, start)
    return out, _last(out, start)


def _stack(states: list[Tensor], start: Tensor) -> Tensor:
    """``(T, ...)`` from a step loop's states; ``(0, ...)`` for T = 0."""
    return torch.stack(states) if states else start.new_empty(0, *start.shape)


def _last(states: Tensor, start: Tensor) -> Tensor:
    """The final state: the last step's, or ``start`` for T = 0."""
    return states[-1] if states.shape[0] else start
