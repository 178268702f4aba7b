"""Classical baselines: Tikhonov restoration with a gradient penalty.

    x̂ = argmin_x ½‖y − A x‖² + μ/2 ‖∇x‖²,    ∇ = circular forward differences along H and W

``‖∇x‖² = xᵀ DᵀD x`` with ``DᵀD`` circulant of spectrum ``|D|²[k, l] = 4 sin²(πk/H) +
4 sin²(πl/W)``, so :meth:`suppa_jax.physics.CirculantOperator.quadratic_solve` gives ``x̂`` exactly
for every operator here (a Wiener-type filter for deblurring, its aliasing-aware counterpart
for super-resolution). ``DᵀD`` is singular at DC only, where the data term decides; a floor of
``1e-6·μ`` there keeps the division finite and moves ``x̂`` by a relative ``≈ 1e-6``. For an
operator with a non-circular boundary (:class:`suppa_jax.physics.ConjugateGradientOperator`)
the same normal equations are solved by conjugate gradients, to the operator's ``cg_tol``.

``μ`` is the one free parameter: :func:`tune_mu` picks it from a grid by mean PSNR on training
images, and :mod:`suppa_jax.tasks` stores the values tuned for each named task.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from suppa_jax import metrics
from suppa_jax.physics.circulant import CirculantOperator
from suppa_jax.physics.matrix_free import ConjugateGradientOperator

#: The operators with a ``quadratic_solve``: closed form, or conjugate gradients.
QuadraticSolvable = CirculantOperator | ConjugateGradientOperator

__all__ = ["MU_GRID", "gradient_power", "tikhonov", "tune_mu"]

#: The penalty weights :func:`tune_mu` tries: 4 per decade from 1e-4 to 1.
MU_GRID = tuple(float(m) for m in np.round(np.geomspace(1e-4, 1.0, 17), 8))

_DC_FLOOR = 1e-6


def gradient_power(shape: tuple[int, int], dtype: jnp.dtype = jnp.float32) -> jax.Array:
    """``|D|²``: the spectrum of ``DᵀD`` for circular forward differences, ``(H, W)``."""
    height, width = shape
    rows = 4 * jnp.sin(jnp.pi * jnp.arange(height, dtype=dtype) / height) ** 2
    cols = 4 * jnp.sin(jnp.pi * jnp.arange(width, dtype=dtype) / width) ** 2
    return rows[:, None] + cols[None, :]


def tikhonov(op: QuadraticSolvable, y: jax.Array, mu: float | jax.Array) -> jax.Array:
    """``argmin_x ½‖y − A x‖² + μ/2‖∇x‖²`` for measurements ``y`` of shape ``(..., h, w, C)``.

    Pure and jittable; ``mu > 0`` a scalar.
    """
    y = jnp.asarray(y)
    shape = op.image_shape(y)
    penalty = mu * (gradient_power(shape, y.dtype) + _DC_FLOOR)
    return op.quadratic_solve(y, penalty)


def tune_mu(
    op: QuadraticSolvable, y: jax.Array, gt: jax.Array, grid: Sequence[float] = MU_GRID
) -> tuple[float, dict[float, float]]:
    """The ``μ`` of ``grid`` with the best mean PSNR of :func:`tikhonov` on ``(y, gt)``
    (a batch of training images and their measurements), and the mean PSNR of each."""
    solve = jax.jit(tikhonov)
    scores = {float(mu): float(jnp.mean(metrics.psnr(solve(op, y, mu), gt))) for mu in grid}
    return max(scores, key=scores.get), scores
