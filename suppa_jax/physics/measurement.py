"""The measurement model: ``y = clip(A x + σ·n, 0, 1)``, optionally on the 8-bit grid.

Separate from the operators: any :class:`~suppa_jax.physics.base.LinearOperator` is measured
the same way, in training (:func:`measure`, inside the jitted step) and in evaluation.

Each example's randomness comes from its seed (the input pipeline's): the noise ``n`` from
``key(seed)``, its operator (drawn from an :class:`~suppa_jax.physics.families.OperatorFamily`)
from ``fold_in(key(seed), 2)``, its noise level (drawn from a range) from
``fold_in(key(seed), 3)``. (``fold_in(key(seed), 1)`` is the training method's:
:func:`suppa_jax.training.example_keys`.) So a measurement depends on its example only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from suppa_jax.physics.base import LinearOperator, per_sample
from suppa_jax.physics.families import OperatorFamily
from suppa_jax.typing import Array, ArrayLike, Batch, ExampleBatch

__all__ = ["degrade", "degrade_batch", "measure", "noise_levels", "operator_keys"]


def _measured(clean: Array, noise: Array, sigma: Array, quantize: bool) -> Array:
    y = jnp.clip(clean + sigma * noise, 0.0, 1.0)
    return jnp.round(y * 255.0) / 255.0 if quantize else y


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
    noise = jax.random.normal(key, clean.shape, clean.dtype)
    return _measured(clean, noise, per_sample(noise_sigma, clean.dtype), quantize)


def degrade_batch(
    op: LinearOperator,
    batch: ExampleBatch,
    noise_sigma: ArrayLike = 0.0,
    quantize: bool = True,
) -> Batch:
    """Measurements of a batch: ``{"y": degrade(A, hr), "gt": hr}``.

    ``op`` is one operator, or a batched one (one per example, :mod:`~suppa_jax.physics.families`).
    Example ``i``'s noise is drawn with key ``jax.random.key(batch["seed"][i])``, so the result
    depends on the batch only and each example's ``y`` on that example only. ``noise_sigma`` is
    a scalar or one value per example, on the [0, 1] scale. Pure and jittable.
    """
    hr = jnp.asarray(batch["hr"])
    clean = op.forward(hr)
    keys = jax.vmap(jax.random.key)(jnp.asarray(batch["seed"]))
    noise = jax.vmap(lambda key: jax.random.normal(key, clean.shape[1:], clean.dtype))(keys)
    sigma = jnp.broadcast_to(jnp.asarray(noise_sigma, clean.dtype), hr.shape[:1])
    return {"y": _measured(clean, noise, per_sample(sigma, clean.dtype), quantize), "gt": hr}


def operator_keys(seeds: Array) -> Array:
    """Each example's key for drawing its operator: ``fold_in(key(seed), 2)``."""
    return jax.vmap(lambda seed: jax.random.fold_in(jax.random.key(seed), 2))(seeds)


def noise_levels(seeds: Array, low: float, high: float) -> Array:
    """Each example's noise level, uniform in ``[low, high]`` from ``fold_in(key(seed), 3)``."""
    draw = lambda seed: jax.random.uniform(  # noqa: E731
        jax.random.fold_in(jax.random.key(seed), 3), (), minval=low, maxval=high
    )
    return jax.vmap(draw)(seeds)


def measure(
    physics: OperatorFamily,
    batch: ExampleBatch,
    *,
    noise_sigma: float,
    quantize: bool,
    noise_sigma_max: float = 0.0,
) -> Batch:
    """A method's batch from clean examples ``{"hr", "seed"}``: each example's operator drawn
    from ``physics``, its noise level ``noise_sigma`` (or uniform in ``[noise_sigma,
    noise_sigma_max]`` when that is larger), then :func:`degrade_batch`: ``{"y", "gt", "op"}``,
    ``"op"`` the measurements' operator (batched, unless the family has only one). Pure and
    jittable."""
    hr, seeds = jnp.asarray(batch["hr"]), jnp.asarray(batch["seed"])
    op = physics.draw_batch(operator_keys(seeds), hr.shape[-3:-1])
    sigma = noise_sigma
    if noise_sigma_max > noise_sigma:
        sigma = noise_levels(seeds, noise_sigma, noise_sigma_max)
    return {**degrade_batch(op, {"hr": hr, "seed": seeds}, sigma, quantize), "op": op}
