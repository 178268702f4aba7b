"""Gaussian-denoiser pre-training: the prior every method starts from."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from suppa_jax.methods.base import Method, mse, step_metrics
from suppa_jax.methods.registry import MethodSpec
from suppa_jax.metrics import psnr
from suppa_jax.physics.base import LinearOperator
from suppa_jax.solvers import admm
from suppa_jax.typing import Array, Batch, DenoiserApply, Metrics, Params, Trainable

__all__ = ["denoiser", "noise_level"]


def noise_level(
    key: Array, sigma_min: float, sigma_max: float, power: float = 1.0, dtype=jnp.float32
) -> Array:
    """A training noise level ``σ = σ_min + (σ_max − σ_min)·u^power``, ``u ~ U[0, 1]``.

    Its CDF is ``P(σ ≤ σ_min + q·(σ_max − σ_min)) = q^(1/power)``: ``power = 1`` is uniform,
    ``power = 2`` puts half of the levels in the lowest quarter of the range.
    """
    u = jax.random.uniform(key, (), dtype)
    return sigma_min + (sigma_max - sigma_min) * u**power


def denoiser(
    apply: DenoiserApply,
    op: LinearOperator | None = None,
    *,
    sigma_min: float = 0.0,
    sigma_max: float = 50 / 255,
    sigma_power: float = 1.0,
    eval_sigma: float = 25 / 255,
) -> Method:
    """Gaussian-denoiser pre-training of the prior every method starts from.

    ``loss = mse(D(x + σ·n, σ), x)`` with ``σ = σ_min + (σ_max − σ_min)·u^p`` per image,
    ``u ~ U[0, 1]``, ``p = sigma_power`` (1: uniform on ``[sigma_min, sigma_max]``; larger ``p``
    draws small σ more often, where a plug-and-play prior must stay close to the identity) and
    ``n ~ N(0, I)`` (no clipping, no quantisation); the measurements ``y`` of the batch are not
    used. ``predict`` denoises ``y`` at ``eval_sigma`` (the validation noise level). ``op`` is
    accepted for a uniform signature and ignored: the task is the identity.
    """
    del op

    def init(params: Params) -> Trainable:
        return {"denoiser": params}

    def loss(trainable: Trainable, batch: Batch, key: Array) -> tuple[Array, Metrics]:
        gt = batch["gt"]
        keys = key if key.shape == gt.shape[:1] else jax.random.split(key, gt.shape[0])

        def corrupt(sample_key: Array, x: Array) -> tuple[Array, Array]:
            level_key, noise_key = jax.random.split(sample_key)
            sigma = noise_level(level_key, sigma_min, sigma_max, sigma_power, x.dtype)
            return x + sigma * jax.random.normal(noise_key, x.shape, x.dtype), sigma

        noisy, sigmas = jax.vmap(corrupt)(keys, gt)
        estimate = apply(trainable["denoiser"], noisy, sigmas)
        value = mse(estimate, gt)
        return value, step_metrics(value, estimate, gt, 1, trainable)

    def predict(
        trainable: Trainable,
        y: Array,
        reference: Array | None = None,
        trace: bool = False,
        op: LinearOperator | None = None,
    ) -> admm.Solution:
        del op  # the identity
        x = apply(trainable["denoiser"], y, eval_sigma)
        curve = None if reference is None else jnp.stack([psnr(y, reference), psnr(x, reference)])
        estimates = jnp.stack([y, x]) if trace else None
        return admm.Solution(x, jnp.ones(y.shape[:-3], jnp.int32), estimates, curve)

    return Method("denoiser", init, loss, predict)


def _settings(config: Any) -> dict[str, Any]:
    d = config.denoiser
    return {
        "sigma_min": d.sigma_min,
        "sigma_max": d.sigma_max,
        "sigma_power": d.sigma_power,
        "eval_sigma": config.task.noise_sigma,
    }


SPEC = MethodSpec(
    "denoiser",
    denoiser,
    "Denoiser",
    _settings,
    task_kinds=("denoise",),
    iterations_setting=None,
    fixed_iterations=True,
)
