"""The rows of an evaluation: each a ``restore(y, gt, op) -> Solution``, ``op`` y's operator.

The starting estimate ``initial(y)`` (``bicubic`` upsampling for super-resolution, ``y`` itself
for deblurring); the classical Tikhonov restoration with a gradient penalty
(:func:`tikhonov_restorer`, ``μ`` stored per named task in :mod:`suppa_jax.tasks`); plug-and-play
ADMM with a pre-trained, not fine-tuned, denoiser (:func:`pnp_restorer`); DPIR's plug-and-play
half-quadratic splitting with the same denoiser (:func:`dpir_restorer`); and a model trained by
``train.py`` (:func:`method_restorer`), run as its method is used at test time
(``Method.predict``: ADMM to convergence, at most ``max_iters = 50`` iterations, per-image
tolerance ``tol = 1e-3``, the paper's stopping rule; ``K`` steps for explicit unrolling).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from suppa_jax import build, classical, methods
from suppa_jax.models.base import as_denoiser
from suppa_jax.physics.base import LinearOperator
from suppa_jax.physics.families import OperatorFamily
from suppa_jax.solvers import admm, hqs, pnp
from suppa_jax.typing import Array, DenoiseFn

__all__ = [
    "Restorer",
    "dpir_restorer",
    "initial_restorer",
    "jitted_predict",
    "method_restorer",
    "pnp_restorer",
    "tikhonov_restorer",
]


@dataclasses.dataclass(frozen=True)
class Restorer:
    """One row of the tables: ``restore(y, gt, op) -> admm.Solution`` for measurements ``y``
    of ``op`` (each image's own, when the task draws one per image), with the per-iteration PSNR
    curve in ``.psnr`` for iterative methods. ``slug`` names its files."""

    label: str
    slug: str
    restore: Callable[[Array, Array, LinearOperator], admm.Solution]
    iterative: bool = True
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _one_shot_restorer(
    label: str,
    slug: str,
    estimate: Callable[[Array, LinearOperator], Array],
    info: Mapping[str, Any] | None = None,
) -> Restorer:
    """A non-iterative row: ``x = estimate(y, op)`` (jitted), zero iterations, no PSNR curve."""
    estimate = jax.jit(estimate)

    def run(y: Array, gt: Array, op: LinearOperator) -> admm.Solution:
        del gt
        return admm.Solution(estimate(y, op), jnp.zeros(y.shape[:-3], jnp.int32))

    return Restorer(label, slug, run, iterative=False, info=info or {})


def initial_restorer(physics: LinearOperator | OperatorFamily) -> Restorer:
    """The starting estimate ``x₀ = A.initial(y)``: ``bicubic`` upsampling (the task's
    ``physics`` has a scale > 1), or ``initial(y)`` (``y`` itself for deblurring)."""
    label, slug = ("bicubic", "bicubic") if physics.scale > 1 else ("initial(y)", "initial")
    return _one_shot_restorer(label, slug, lambda y, op: op.initial(y))


def tikhonov_restorer(mu: float) -> Restorer:
    """The classical baseline ``argmin_x ½‖y − Ax‖² + μ/2‖∇x‖²`` (closed form,
    :func:`suppa_jax.classical.tikhonov`)."""
    return _one_shot_restorer(
        "Tikhonov", "tikhonov", lambda y, op: classical.tikhonov(op, y, mu), {"mu": mu}
    )


def pnp_restorer(
    denoiser: DenoiseFn,
    physics: LinearOperator | OperatorFamily,
    *,
    sigma: float,
    rho: float | None = None,
    max_iters: int = 50,
    tol: float = 1e-3,
    label: str = "PnP-ADMM (pre-trained)",
    slug: str = "pnp",
) -> Restorer:
    """Plug-and-play ADMM with a fixed ``denoiser`` (a :class:`~suppa_jax.models.Denoiser` such
    as ``prior.denoiser``, or any ``(x, σ) → x``; ``suppa_jax.restore``: jitted, to
    convergence) at noise level ``sigma``, ``rho`` by default ``0.1·s²`` (``s``: the scale of
    the task's ``physics``)."""
    rho = admm.reference_rho(physics) if rho is None else rho

    def run(y: Array, gt: Array, op: LinearOperator) -> admm.Solution:
        return pnp.restore(
            denoiser, y, op, sigma=sigma, rho=rho, max_iters=max_iters, tol=tol, reference=gt
        )

    info = {"sigma": sigma, "rho": rho, "max_iters": max_iters, "tol": tol}
    return Restorer(label, slug, run, info=info)


_dpir_solve = jax.jit(hqs.solve)


def dpir_restorer(
    denoiser: DenoiseFn,
    physics: LinearOperator | OperatorFamily,
    *,
    noise_sigma: float,
    iterations: int | None = None,
    lam: float = 0.23,
    label: str = "DPIR-HQS (pre-trained)",
    slug: str = "dpir",
) -> Restorer:
    """DPIR's plug-and-play HQS with a fixed ``denoiser`` (:mod:`suppa_jax.solvers.hqs`): its
    schedule from 49/255 down to the measurements' ``noise_sigma``, ``ρ_k = λ·σ_n²/σ_k²``,
    ``iterations`` by default DPIR's (8 for deblurring, 24 for super-resolution)."""
    iterations = hqs.dpir_iterations(physics) if iterations is None else iterations
    schedule = hqs.dpir_schedule(noise_sigma, iterations, lam=lam)
    denoiser = as_denoiser(denoiser)

    def run(y: Array, gt: Array, op: LinearOperator) -> admm.Solution:
        return _dpir_solve(denoiser, op, y, schedule, gt)

    info = {"noise_sigma": noise_sigma, "iterations": iterations, "lam": lam}
    return Restorer(label, slug, run, info=info)


def method_restorer(
    config: ml_collections.ConfigDict,
    trainable: Mapping[str, Any],
    predict: Callable[..., admm.Solution],
) -> Restorer:
    """A ``train.py`` model: ``predict(trainable, y, gt, op=op)``, the jitted ``Method.predict`` of
    ``config.method`` (the fixed-point methods iterate to ``config.admm.max_iters`` / ``tol``).
    Its label and the settings it reports come from the method's registry entry."""
    spec = methods.get(config.method)
    scalars = {
        k: np.asarray(v, np.float64).round(6).tolist()
        for k, v in trainable.items()
        if k != "denoiser"
    }
    info: dict[str, Any] = {"method": config.method, **scalars}
    settings = build.method_settings(config)
    if spec.fixed_iterations and spec.iterations_setting:
        info["iterations"] = settings[spec.iterations_setting]
    elif spec.iterations_setting:
        info.update(max_iters=settings[spec.iterations_setting], tol=settings.get("tol"))

    def restore(y: Array, gt: Array, op: LinearOperator) -> admm.Solution:
        return predict(trainable, y, gt, op=op)

    return Restorer(spec.label, config.method, restore, info=info)


def jitted_predict(config: ml_collections.ConfigDict, op: LinearOperator | None) -> Callable:
    """``jit(method.predict)`` of ``config.method`` around ``config.model`` and ``op`` (``None``:
    no operator of its own, give ``op=``): compile once, call with any trainables of that
    method."""
    return jax.jit(build.build_method(config, build.build_model(config), op).predict)
