"""What every training method is made of: the :class:`Method` triple and shared pieces.

A method is built from the denoiser ``apply(params, x, sigma) -> x`` (for DRUNet:
``lambda p, x, s: model.apply({"params": p}, x, s)``), the operator and its settings, and
exposes ``init(denoiser_params) -> trainable``, ``loss(trainable, batch, key) -> (scalar,
metrics)`` and ``predict``. ``trainable`` (:class:`suppa_jax.typing.Trainable`) holds the
denoiser's params under ``"denoiser"`` and the method's learned scalars beside them, raw (no
reparametrisation), so an optimiser can give the scalars their own group. ``batch``
(:class:`suppa_jax.typing.Batch`) holds measurements ``"y"`` ``(B, h, w, C)``, ground truth
``"gt"`` ``(B, H, W, C)`` and, optionally, their operator ``"op"`` (drawn per example by
:func:`suppa_jax.physics.measure`), which replaces the method's own: a method built with
``op=None`` restores whatever operator each batch (or ``predict(..., op=)``) brings. ``mse`` is
the mean over all elements. ``metrics`` always has
``loss``, ``psnr`` (of the method's output), ``iterations`` (forward iterations per sample,
mean over the batch) and the learned scalars.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from suppa_jax.metrics import psnr
from suppa_jax.physics.base import LinearOperator
from suppa_jax.solvers import admm
from suppa_jax.solvers.fixed_point import anderson, iterate
from suppa_jax.typing import Array, ArrayLike, Batch, DenoiserApply, Metrics, Params, Trainable

__all__ = [
    "Method",
    "admm_iteration",
    "detached_fixed_point",
    "fixed_point_settings",
    "mse",
    "operator",
    "prepared",
    "scalar",
    "solve_predict",
    "step_metrics",
    "uniform_draw",
]


class Method(NamedTuple):
    """A training method: initial trainables, a pure loss, and inference with the trainables.

    ``predict(trainable, y, reference=None, trace=False, op=None) -> admm.Solution`` restores
    ``y`` the way the method is meant to be used at test time (to convergence, or ``K`` steps
    for explicit unrolling), with the per-iteration PSNR curve when ``reference`` is given,
    every iterate (``Solution.estimates``) when ``trace`` is true (static), and ``y``'s
    operator ``op`` when it is not the method's own.
    """

    name: str
    init: Callable[[Params], Trainable]
    loss: Callable[[Trainable, Batch, Array], tuple[Array, Metrics]]
    predict: Callable[..., admm.Solution]


# ---------------------------------------------------------------------------------- shared


def admm_iteration(
    apply: DenoiserApply,
    op: LinearOperator,
    y: Array,
    params: Params,
    rho: ArrayLike,
    sigma: ArrayLike,
) -> Callable[[admm.State], admm.State]:
    """``s ↦ f(s)``: one ADMM iteration with the denoiser's params bound."""
    denoise = functools.partial(apply, params)
    return lambda state: admm.step(denoise, op, y, state, rho, sigma)


def operator(own: LinearOperator | None, given: LinearOperator | None) -> LinearOperator:
    """The operator of some measurements: ``given`` (the batch's or ``predict``'s), else the
    method's ``own``; an error when neither is there."""
    if given is not None:
        return given
    if own is None:
        raise ValueError(
            "this method was built without an operator (op=None): the batch must carry its "
            "'op', and predict needs op="
        )
    return own


def prepared(op: LinearOperator | None, batch: Batch) -> LinearOperator:
    """The batch's operator (:func:`operator`) with its spectra computed for its images."""
    A = operator(op, batch.get("op"))
    return A.prepare(A.image_shape(batch["y"]))


def mse(a: Array, b: Array) -> Array:
    return jnp.mean((a - b) ** 2)


def scalar(value: ArrayLike) -> Array:
    return jnp.asarray(value, jnp.float32)


def step_metrics(
    loss: Array, estimate: Array, gt: Array, iterations: ArrayLike, trainable: Trainable
) -> Metrics:
    scalars = {name: jnp.mean(v) for name, v in trainable.items() if name != "denoiser"}
    return {
        "loss": loss,
        "psnr": jnp.mean(psnr(estimate, gt)),
        "iterations": jnp.mean(jnp.asarray(iterations, jnp.float32)),
        **scalars,
    }


def detached_fixed_point(
    f: Callable[[admm.State], admm.State],
    start: admm.State,
    max_iters: int,
    tol: ArrayLike,
    anderson_memory: int,
) -> tuple[admm.State, Array]:
    """Forward fixed point with per-sample stopping, detached: plain iteration, or Anderson
    acceleration over the last ``anderson_memory`` iterates when that is positive."""
    if anderson_memory:
        state, iterations = anderson(f, start, max_iters=max_iters, tol=tol, memory=anderson_memory)
    else:
        state, iterations, _ = iterate(f, start, max_iters=max_iters, tol=tol)
    return jax.lax.stop_gradient(state), iterations


def uniform_draw(key: Array, k: Array, batch_shape: tuple[int, ...]) -> Array:
    """One U[0, 1) draw per sample at iteration ``k``, from one key or from one key per sample.

    Per-sample keys (derived from each example's seed) make the draws independent of how the
    batch is split across devices.
    """
    if key.shape == ():
        return jax.random.uniform(jax.random.fold_in(key, k), batch_shape)
    draw = lambda sample_key: jax.random.uniform(jax.random.fold_in(sample_key, k))  # noqa: E731
    return jax.vmap(draw)(key.reshape(-1)).reshape(batch_shape)


def solve_predict(
    apply: DenoiserApply,
    op: LinearOperator | None,
    params: Params,
    rho: ArrayLike,
    sigma: ArrayLike,
    max_iters: int,
    tol: ArrayLike,
) -> Callable[..., admm.Solution]:
    """``predict`` for the fixed-point methods: ADMM to convergence (:func:`admm.solve`)."""

    def predict(
        y: Array,
        reference: Array | None = None,
        trace: bool = False,
        given: LinearOperator | None = None,
    ) -> admm.Solution:
        denoise = functools.partial(apply, params)
        return admm.solve(
            denoise,
            operator(op, given),
            y,
            rho=rho,
            sigma=sigma,
            max_iters=max_iters,
            tol=tol,
            trace=trace,
            reference=reference,
        )

    return predict


def fixed_point_settings(config: Any) -> dict[str, Any]:
    """The settings every fixed-point method reads from ``config.admm``: ``rho``, ``max_iters``,
    ``tol`` and the initial ``sigma``."""
    a = config.admm
    return {"rho": a.rho, "max_iters": a.max_iters, "tol": a.tol, "sigma": a.sigma}
