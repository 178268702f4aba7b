"""The measurement model: ``y = clip(A x + σ·n, 0, 1)``, optionally on the 8-bit grid.

Separate from the operators: any :class:`~suppa_jax.physics.base.LinearOperator` is measured
the same way, in training (:func:`degrade_batch`, inside the jitted step) and in evaluation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from suppa_jax.physics.base import LinearOperator, per_sample
from suppa_jax.typing import Array, ArrayLike, Batch, ExampleBatch

__all__ = ["degrade", "degrade_batch"]


def degrade(
    op: LinearOperator,
    x: ArrayLike,
    key: Array,
    noise_sigma: ArrayLike = 0.0,
    quantize: bool = True,
) -> Array:
    """Simulated measurements ``clip(A x + σ·n, 0, 1)``, ``n ~ N(0, I)``.

    With ``quantize`` the result is rounded to the 8-bit grid ``round(255·y)/255`` (the paper's
    measurements were stored as 8-bit images). ``noise_sigma`` is on the [0, 1] scale (0.01 for
    the paper's deblurring), a scalar or one value per sample.
    """
    clean = op.forward(x)
    sigma = per_sample(noise_sigma, clean.dtype)
    noisy = clean + sigma * jax.random.normal(key, clean.shape, clean.dtype)
    y = jnp.clip(noisy, 0.0, 1.0)
    return jnp.round(y * 255.0) / 255.0 if quantize else y


def degrade_batch(
    op: LinearOperator,
    batch: ExampleBatch,
    noise_sigma: ArrayLike = 0.0,
    quantize: bool = True,
) -> Batch:
    """Measurements of a batch: ``{"y": degrade(A, hr), "gt": hr}``.

    Example ``i`` is degraded with key ``jax.random.key(batch["seed"][i])``, so the result
    depends on the batch only and each example's ``y`` on that example only. ``noise_sigma`` is
    a scalar or one value per example, on the [0, 1] scale. Pure and jittable.
    """
    hr = jnp.asarray(batch["hr"])
    keys = jax.vmap(jax.random.key)(jnp.asarray(batch["seed"]))
    sigma = jnp.broadcast_to(jnp.asarray(noise_sigma, hr.dtype), hr.shape[:1])
    y = jax.vmap(lambda x, key, s: degrade(op, x, key, s, quantize))(hr, keys, sigma)
    return {"y": y, "gt": hr}
