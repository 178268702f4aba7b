"""Plug-and-play half-quadratic splitting with DPIR's schedule, the baseline users know.

DPIR (Zhang, Li, Zuo, Zhang, Van Gool, Timofte, "Plug-and-play image restoration with deep
denoiser prior", TPAMI 2021) alternates, for ``k = 1 … K`` from ``z₀ = initial(y)``::

    x_k = argmin_x ½‖y − A x‖² + ρ_k/2 ‖x − z_{k−1}‖²     (op.data_prox: exact, or CG)
    z_k = D(x_k, σ_k)

with a fixed decreasing schedule instead of a stopping rule: the denoiser's level ``σ_k``
log-spaced from 49/255 down to the noise level ``σ_n``, and ``ρ_k = λ·σ_n²/σ_k²`` (``λ = 0.23``),
so that the data term gains weight as the prior's steps shrink. DPIR runs ``K = 8`` iterations
for deblurring and 24 for super-resolution. (Its minimiser of ``‖y − Ax‖² + α‖x − z‖²`` is this
module's with ``ρ = α``.) A noise-free task has ``σ_n = 0``, where the schedule has no end and
``ρ_k`` vanishes, so ``σ_n`` is floored at :data:`NOISE_FLOOR`, 0.255/255 (the floor DPIR's code
puts under the noise level of ``ρ_k``; about the standard deviation of 8-bit rounding,
``1/(255·√12)``). Not included: DPIR's ×8 geometric self-ensemble of the denoiser.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from suppa_jax.metrics import psnr
from suppa_jax.physics.base import LinearOperator
from suppa_jax.physics.families import OperatorFamily
from suppa_jax.solvers.admm import Solution
from suppa_jax.typing import Array, DenoiseFn

__all__ = ["NOISE_FLOOR", "Schedule", "dpir_iterations", "dpir_schedule", "solve"]

#: DPIR's noise level for a noise-free measurement: about 8-bit rounding's standard deviation.
NOISE_FLOOR = 0.255 / 255


def dpir_iterations(op: LinearOperator | OperatorFamily) -> int:
    """DPIR's iteration count: 8 for deblurring (``op.scale == 1``), 24 for super-resolution."""
    return 8 if op.scale == 1 else 24


class Schedule(NamedTuple):
    """One ``(ρ_k, σ_k)`` per iteration, ``(K,)`` each."""

    rho: Array
    sigma: Array


def dpir_schedule(
    noise_sigma: float,
    iterations: int,
    *,
    lam: float = 0.23,
    sigma_start: float = 49 / 255,
) -> Schedule:
    """DPIR's schedule: ``σ_k`` log-spaced from ``sigma_start`` to ``σ_n = max(noise_sigma,
    NOISE_FLOOR)``, ``ρ_k = lam·σ_n²/σ_k²`` (module docstring)."""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if noise_sigma < 0 or not sigma_start > 0:
        raise ValueError(
            f"noise_sigma must be >= 0 and sigma_start > 0, got {noise_sigma}, {sigma_start}"
        )
    noise = max(float(noise_sigma), NOISE_FLOOR)
    sigma = np.logspace(np.log10(sigma_start), np.log10(noise), iterations)
    return Schedule(
        jnp.asarray(lam * noise**2 / sigma**2, jnp.float32), jnp.asarray(sigma, jnp.float32)
    )


def solve(
    denoise: DenoiseFn,
    op: LinearOperator,
    y: Array,
    schedule: Schedule,
    reference: Array | None = None,
) -> Solution:
    """Run the ``K`` iterations of ``schedule`` (one ``lax.scan``) from ``z₀ = op.initial(y)``;
    returns ``z_K`` with ``K`` iterations per sample and, with ``reference``, the PSNR of
    ``z₀ … z_K`` (``(K + 1, ...)``). Pure and jittable."""
    op = op.prepare(op.image_shape(y))
    start = op.initial(y)

    def step(z: Array, rho_sigma: tuple[Array, Array]) -> tuple[Array, Array | None]:
        rho, sigma = rho_sigma
        z = denoise(op.data_prox(z, y, rho), sigma)
        return z, None if reference is None else psnr(z, reference)

    z, curve = jax.lax.scan(step, start, (schedule.rho, schedule.sigma))
    iterations = jnp.full(y.shape[:-3], schedule.rho.shape[0], jnp.int32)
    if reference is not None:
        curve = jnp.concatenate([psnr(start, reference)[None], curve])
    return Solution(z, iterations, psnr=curve)
