"""The SUPPA pipeline in plain PyTorch: the reference ``suppa_jax`` is checked and timed against.

Everything here is written from the formulas (forward model, closed-form data step, ADMM, losses:
the docstrings of suppa_jax.physics, solvers and methods state them), independently of the JAX
code, the way a careful PyTorch user would write it for a CPU: NCHW tensors (or channels-last
memory format, an option), no autograd graph where none is needed (``torch.inference_mode`` /
``torch.no_grad``), loop-invariant spectra computed once per problem, and the thread count set by
the caller (``torch.set_num_threads(os.cpu_count())``). It is a test and benchmark dependency
only; the library does not import it.

Contents (all tensors float32, images ``(N, C, H, W)``):

* :class:`TorchDRUNet`: DPIR's ``UNetRes``; its ``state_dict()`` keys are those of
  ``drunet_color.pth``, so :func:`suppa_jax.weights.params_to_torch` loads into it.
* :class:`FourierOperator`: ``A x = (k ⊛ x)[s·i, s·j]`` with circular convolution; its exact data
  step ``argmin_x ½‖y − A x‖² + ρ/2‖x − z‖²`` in closed form (Zhao et al. 2016 for ``s > 1``;
  a real FFT for ``s = 1``), and the initial estimate (bicubic upsampling, or ``y``).
* :func:`admm_step`, :func:`restore`: one ADMM iteration ``v = D(x + u, σ)``,
  ``x⁺ = prox(v − u)``, ``u⁺ = u + x⁺ − v``, and the loop with per-sample stopping.
* :class:`Suppa`, :func:`suppa_forward`, :func:`suppa_loss`, :func:`make_optimizer`,
  :func:`suppa_step`: one SUPPA training step — a no-grad forward loop to ``K`` with reservoir
  sampling of one visited state, two differentiable ADMM steps (the sampled and the last
  state, as one batch), ``L = mse((1+λ)·f(s_k).x − λ·s_k.x, gt) + mse(f(s_K).x, gt)``, and Adam
  with two parameter groups (network; ``σ`` and ``λ``). The reservoir's uniform draws can be
  passed in, so a test can reproduce the JAX run's random choice exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

Tensor = torch.Tensor

__all__ = [
    "FourierOperator",
    "ResBlock",
    "State",
    "Suppa",
    "TorchDRUNet",
    "admm_step",
    "initial_state",
    "make_optimizer",
    "relative_change",
    "restore",
    "suppa_forward",
    "suppa_loss",
    "suppa_step",
]

# --------------------------------------------------------------------------------------------
# DRUNet
# --------------------------------------------------------------------------------------------


class ResBlock(nn.Module):
    """``x + conv3(relu(conv3(x)))``, no biases."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.res = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res(x)


def _blocks(width: int, num_blocks: int) -> list[nn.Module]:
    return [ResBlock(width) for _ in range(num_blocks)]


class TorchDRUNet(nn.Module):
    """DRUNet (DPIR's ``UNetRes``) with widths ``(c0, c1, c2, c3)``, ``num_blocks`` per stage.

    ``forward(x, sigma)``: ``x`` of shape ``(N, C, H, W)``; ``sigma`` a number, a per-image
    ``(N,)`` tensor or an ``(N, 1, H, W)`` map. The input is padded to a multiple of 8 by
    replicating the bottom/right border and the output is cropped back.
    """

    def __init__(
        self,
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
        num_blocks: int = 4,
        channels: int = 3,
    ) -> None:
        super().__init__()
        c0, c1, c2, c3 = widths
        nb = num_blocks
        self.m_head = nn.Conv2d(channels + 1, c0, 3, padding=1, bias=False)
        self.m_down1 = nn.Sequential(*_blocks(c0, nb), nn.Conv2d(c0, c1, 2, 2, bias=False))
        self.m_down2 = nn.Sequential(*_blocks(c1, nb), nn.Conv2d(c1, c2, 2, 2, bias=False))
        self.m_down3 = nn.Sequential(*_blocks(c2, nb), nn.Conv2d(c2, c3, 2, 2, bias=False))
        self.m_body = nn.Sequential(*_blocks(c3, nb))
        self.m_up3 = nn.Sequential(nn.ConvTranspose2d(c3, c2, 2, 2, bias=False), *_blocks(c2, nb))
        self.m_up2 = nn.Sequential(nn.ConvTranspose2d(c2, c1, 2, 2, bias=False), *_blocks(c1, nb))
        self.m_up1 = nn.Sequential(nn.ConvTranspose2d(c1, c0, 2, 2, bias=False), *_blocks(c0, nb))
        self.m_tail = nn.Conv2d(c0, channels, 3, padding=1, bias=False)

    def network(self, x: Tensor) -> Tensor:
        """The U-Net on ``(N, channels + 1, H, W)`` input, H and W multiples of 8."""
        x1 = self.m_head(x)
        x2 = self.m_down1(x1)
        x3 = self.m_down2(x2)
        x4 = self.m_down3(x3)
        h = self.m_body(x4)
        h = self.m_up3(h + x4)
        h = self.m_up2(h + x3)
        h = self.m_up1(h + x2)
        return self.m_tail(h + x1)

    def forward(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        n, _, height, width = x.shape
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.ndim != 4:
            sigma = sigma.expand(n).reshape(n, 1, 1, 1)
        noise_map = sigma.expand(n, 1, height, width)
        h = torch.cat([x, noise_map], dim=1)
        if height % 8 or width % 8:
            h = nn.functional.pad(h, (0, -width % 8, 0, -height % 8), mode="replicate")
        return self.network(h)[..., :height, :width]


# --------------------------------------------------------------------------------------------
# The forward model and its data step
# --------------------------------------------------------------------------------------------


def _otf(kernel: Tensor, shape: tuple[int, int]) -> Tensor:
    """psf2otf: zero-pad the centred kernel to ``shape``, roll its centre to (0, 0), FFT2."""
    kh, kw = kernel.shape
    padded = torch.zeros(shape, dtype=kernel.dtype, device=kernel.device)
    padded[:kh, :kw] = kernel
    return torch.fft.fft2(torch.roll(padded, (-(kh // 2), -(kw // 2)), dims=(0, 1)))


def _fold(spectrum: Tensor, scale: int) -> Tensor:
    """Mean over the ``s × s`` aliases ``X[q + l·H/s, r + m·W/s]`` of the last two axes."""
    *lead, height, width = spectrum.shape
    blocks = spectrum.reshape(*lead, scale, height // scale, scale, width // scale)
    return blocks.mean(dim=(-4, -2))


class FourierOperator:
    """``A x = (k ⊛ x)[s·i, s·j]``: circular convolution with a centred kernel, then decimation.

    ``kernel``: ``(kh, kw)``, centred at ``(kh // 2, kw // 2)``; ``scale``: ``s ≥ 1`` (1 is a
    blur); ``image_shape``: the HR size ``(H, W)`` its spectra are computed for; ``device``: where
    they live (that of the images). For ``s > 1``
    :meth:`initial` is ``F.interpolate(y, scale_factor=s, mode="bicubic",
    align_corners=False)`` (Keys ``a = −0.75``, the bicubic of the default kernel).
    """

    def __init__(
        self,
        kernel: np.ndarray | Tensor,
        scale: int,
        image_shape: tuple[int, int],
        device: torch.device | str = "cpu",
    ) -> None:
        self.scale = scale
        self.image_shape = tuple(image_shape)
        kernel64 = torch.tensor(np.array(kernel), dtype=torch.float64, device=device)
        otf = _otf(kernel64, self.image_shape)
        self.otf = otf.to(torch.complex64)
        power = otf.real**2 + otf.imag**2
        self.aliased_power = _fold(power, scale).to(torch.float32)
        if scale == 1:  # a real FFT suffices: the step is one division per frequency
            self.half_otf = self.otf[:, : self.image_shape[1] // 2 + 1]
            self.half_power = self.aliased_power[:, : self.image_shape[1] // 2 + 1]

    def forward(self, x: Tensor) -> Tensor:
        """``A x``: ``(N, C, H, W) → (N, C, H/s, W/s)``."""
        blurred = torch.fft.ifft2(self.otf * torch.fft.fft2(x)).real
        return blurred[..., :: self.scale, :: self.scale]

    def initial(self, y: Tensor) -> Tensor:
        """``x₀``: bicubic upsampling (``s > 1``, clamped border) or ``y`` itself (blur)."""
        if self.scale == 1:
            return y.clone()
        return nn.functional.interpolate(
            y, scale_factor=self.scale, mode="bicubic", align_corners=False
        )

    def measurement_term(self, y: Tensor) -> Tensor:
        """``conj(K)·F(Sᵀ y)``: the part of the data step's right-hand side fixed by ``y``.

        The spectrum of the zero-filled ``Sᵀ y`` is the LR spectrum tiled ``s × s``. Computed
        once per problem and passed to :meth:`data_prox` inside loops. For ``s = 1`` it is a
        half (``rfft2``) spectrum.
        """
        if self.scale == 1:
            return self.half_otf.conj() * torch.fft.rfft2(y)
        return self.otf.conj() * torch.fft.fft2(y).repeat(1, 1, self.scale, self.scale)

    def data_prox(
        self, z: Tensor, y: Tensor, rho: float | Tensor, term: Tensor | None = None
    ) -> Tensor:
        """Exact ``argmin_x ½‖y − A x‖² + ρ/2‖x − z‖²`` by the closed form in the Fourier domain.

        ``R = conj(K)·F(Sᵀy) + ρ·F(z)``; with ``⟨·⟩`` the alias mean,
        ``F x = (R − conj(K)·tile(⟨K·R⟩ / (⟨|K|²⟩ + ρ))) / ρ``, and ``F x = R / (|K|² + ρ)``
        for ``s = 1``. ``rho``: a number or one value per sample ``(N,)``. ``term``:
        :meth:`measurement_term` of ``y``, when the caller has it already.
        """
        term = self.measurement_term(y) if term is None else term
        if isinstance(rho, Tensor) and rho.ndim:
            rho = rho.reshape(-1, 1, 1, 1)
        if self.scale == 1:
            rhs = term + rho * torch.fft.rfft2(z)
            return torch.fft.irfft2(rhs / (self.half_power + rho), s=self.image_shape)
        rhs = term + rho * torch.fft.fft2(z)
        folded = _fold(self.otf * rhs, self.scale) / (self.aliased_power + rho)
        correction = self.otf.conj() * folded.repeat(1, 1, self.scale, self.scale)
        return torch.fft.ifft2((rhs - correction) / rho).real


# --------------------------------------------------------------------------------------------
# ADMM
# --------------------------------------------------------------------------------------------


class State(NamedTuple):
    """ADMM state ``(x, u)``: the estimate and the scaled dual variable."""

    x: Tensor
    u: Tensor


def initial_state(op: FourierOperator, y: Tensor) -> State:
    """``x₀ = A.initial(y)``, ``u₀ = 0``."""
    x = op.initial(y)
    return State(x, torch.zeros_like(x))


def admm_step(
    denoiser: nn.Module,
    op: FourierOperator,
    y: Tensor,
    state: State,
    rho: float | Tensor,
    sigma: float | Tensor,
    term: Tensor | None = None,
) -> State:
    """One iteration: ``v = D(x + u, σ)``, ``x⁺ = prox(v − u)``, ``u⁺ = u + x⁺ − v``."""
    v = denoiser(state.x + state.u, sigma)
    x = op.data_prox(v - state.u, y, rho, term)
    return State(x, state.u + x - v)


def relative_change(new: Tensor, old: Tensor) -> Tensor:
    """``‖new − old‖ / (1e-5 + ‖new‖)`` per image."""
    norm = lambda a: torch.linalg.vector_norm(a, dim=(1, 2, 3))  # noqa: E731
    return norm(new - old) / (1e-5 + norm(new))


def _select(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    return torch.where(mask.reshape(-1, 1, 1, 1), new, old)


def _iterate(
    denoiser: nn.Module,
    op: FourierOperator,
    y: Tensor,
    rho: float | Tensor,
    sigma: float | Tensor,
    max_iters: int,
    tol: float,
    draws: Tensor | None = None,
) -> tuple[State, Tensor, State | None]:
    """The forward loop with per-sample stopping; optionally reservoir-samples one state.

    A sample stops once ``relative_change(x_{k+1}, x_k) < tol`` (that last step still applies);
    a stopped sample's state is frozen. With ``draws`` (``(max_iters + 1, N)`` uniforms), visited
    state ``s_k`` gets priority ``draws[k]`` and the state of largest priority is kept.
    Returns the last state, the iterations per sample and the sampled state.
    """
    state = initial_state(op, y)
    term = op.measurement_term(y)
    n = y.shape[0]
    active = torch.ones(n, dtype=torch.bool, device=y.device)
    iterations = torch.zeros(n, dtype=torch.int64, device=y.device)
    sampled, best = (state, draws[0].clone()) if draws is not None else (None, None)
    for k in range(1, max_iters + 1):
        if not bool(active.any()):
            break
        new = admm_step(denoiser, op, y, state, rho, sigma, term)
        converged = relative_change(new.x, state.x) < tol
        state = State(_select(active, new.x, state.x), _select(active, new.u, state.u))
        if draws is not None:
            replace = active & (draws[k] > best)
            best = torch.where(replace, draws[k], best)
            sampled = State(
                _select(replace, state.x, sampled.x), _select(replace, state.u, sampled.u)
            )
        iterations += active
        active &= ~converged
    return state, iterations, sampled


def restore(
    denoiser: nn.Module,
    op: FourierOperator,
    y: Tensor,
    *,
    rho: float | Tensor,
    sigma: float | Tensor,
    max_iters: int = 50,
    tol: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """Plug-and-play ADMM from ``x₀ = A.initial(y)`` until every sample has converged.

    Per-sample stopping (see :func:`_iterate`), at most ``max_iters`` iterations; no autograd.
    Returns the estimate and the iterations applied to each sample.
    """
    with torch.inference_mode():
        state, iterations, _ = _iterate(denoiser, op, y, rho, sigma, max_iters, tol)
    return state.x, iterations


# --------------------------------------------------------------------------------------------
# SUPPA
# --------------------------------------------------------------------------------------------


class Suppa(nn.Module):
    """SUPPA's trainables: the denoiser, the noise level ``σ`` (init 0.1) and ``λ`` (init 1)."""

    def __init__(self, denoiser: nn.Module, sigma: float = 0.1, lam: float = 1.0) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.sigma = nn.Parameter(torch.tensor(sigma, dtype=torch.float32))
        self.lam = nn.Parameter(torch.tensor(lam, dtype=torch.float32))


def make_optimizer(model: Suppa, lr: float = 1e-4, scalar_lr: float = 0.1) -> torch.optim.Adam:
    """Adam in two groups: the network at ``lr``, the scalars ``σ``, ``λ`` at ``scalar_lr``."""
    groups = [
        {"params": list(model.denoiser.parameters()), "lr": lr},
        {"params": [model.sigma, model.lam], "lr": scalar_lr},
    ]
    return torch.optim.Adam(groups, foreach=True)


def suppa_forward(
    model: Suppa,
    op: FourierOperator,
    y: Tensor,
    *,
    rho: float,
    max_iters: int,
    tol: float,
    draws: Tensor | None = None,
) -> tuple[State, State, Tensor]:
    """The detached forward loop: ``(s_k, s_K, iterations)``, ``s_k`` chosen uniformly.

    ``draws``: ``(max_iters + 1, N)`` uniform priorities of the visited states ``s_0..s_K``
    (reservoir sampling: the largest wins); drawn with ``torch.rand`` when not given.
    """
    if draws is None:
        draws = torch.rand(max_iters + 1, y.shape[0], device=y.device)
    with torch.no_grad():
        last, iterations, sampled = _iterate(
            model.denoiser, op, y, rho, model.sigma, max_iters, tol, draws
        )
    return sampled, last, iterations


def suppa_loss(
    model: Suppa,
    op: FourierOperator,
    y: Tensor,
    gt: Tensor,
    rho: float,
    sampled: State,
    last: State,
) -> tuple[Tensor, Tensor]:
    """``mse((1+λ)·f(s_k).x − λ·s_k.x, gt) + mse(f(s_K).x, gt)``; both steps as one batch.

    Returns the loss and ``f(s_K).x``.
    """
    n = y.shape[0]
    stacked = State(torch.cat([sampled.x, last.x]), torch.cat([sampled.u, last.u]))
    v = model.denoiser(stacked.x + stacked.u, model.sigma)
    x = op.data_prox(v - stacked.u, torch.cat([y, y]), rho)
    lam = model.lam
    random_term = nn.functional.mse_loss((1 + lam) * x[:n] - lam * sampled.x, gt)
    return random_term + nn.functional.mse_loss(x[n:], gt), x[n:]


def suppa_step(
    model: Suppa,
    optimizer: torch.optim.Optimizer,
    op: FourierOperator,
    y: Tensor,
    gt: Tensor,
    *,
    rho: float,
    max_iters: int,
    tol: float,
    draws: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One training step: forward loop, two differentiable steps, backward, Adam.

    Returns the loss (detached) and the forward iterations per sample.
    """
    sampled, last, iterations = suppa_forward(
        model, op, y, rho=rho, max_iters=max_iters, tol=tol, draws=draws
    )
    optimizer.zero_grad(set_to_none=True)
    loss, _ = suppa_loss(model, op, y, gt, rho, sampled, last)
    loss.backward()
    optimizer.step()
    return loss.detach(), iterations
