"""Explicit unrolling: backpropagation through ``K`` ADMM steps, optionally rematerialised."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from suppa_jax.methods.base import Method, admm_iteration, mse, prepared, step_metrics
from suppa_jax.methods.registry import MethodSpec
from suppa_jax.metrics import psnr
from suppa_jax.physics.base import LinearOperator
from suppa_jax.solvers import admm
from suppa_jax.typing import Array, Batch, DenoiserApply, Metrics, Params, Trainable

__all__ = ["unrolled"]


def unrolled(
    apply: DenoiserApply,
    own: LinearOperator | None,
    *,
    iters: int = 6,
    rho: float,
    sigma: float = 0.1,
    remat: bool = False,
) -> Method:
    """Explicit unrolling: ``loss = mse(x_K, gt)`` through ``K = iters`` steps (``lax.scan``).

    Shared denoiser weights; learned per-step ``rho_k`` and ``sigma_k`` (shape ``(K,)``). With
    ``remat`` each step is wrapped in ``jax.checkpoint``: only the states ``(x, u)`` between steps
    are stored, and each step's activations are recomputed on the way back. ``own``: the
    operator (``None``: each batch brings its ``"op"``, and ``predict`` is given one).
    """

    def init(denoiser: Params) -> Trainable:
        return {
            "denoiser": denoiser,
            "rho": jnp.full((iters,), rho, jnp.float32),
            "sigma": jnp.full((iters,), sigma, jnp.float32),
        }

    def run(trainable: Trainable, batch: Batch, observe: Callable[[Array], Array]):
        """``K`` steps from ``init``; ``observe(x_k)`` is stacked for ``k = 1..K``."""
        A, y = prepared(own, batch), batch["y"]

        def body(state: admm.State, rho_sigma: tuple[Array, Array]):
            rho_k, sigma_k = rho_sigma
            state = admm_iteration(apply, A, y, trainable["denoiser"], rho_k, sigma_k)(state)
            return state, observe(state.x)

        body = jax.checkpoint(body) if remat else body
        start = admm.init(A, y)
        state, observed = jax.lax.scan(body, start, (trainable["rho"], trainable["sigma"]))
        return start, state, observed

    def loss(trainable: Trainable, batch: Batch, key: Array) -> tuple[Array, Metrics]:
        del key  # deterministic
        _, state, _ = run(trainable, batch, lambda x: None)
        value = mse(state.x, batch["gt"])
        return value, step_metrics(value, state.x, batch["gt"], iters, trainable)

    def predict(
        trainable: Trainable,
        y: Array,
        reference: Array | None = None,
        trace: bool = False,
        op: LinearOperator | None = None,
    ) -> admm.Solution:
        def observe(x: Array) -> tuple[Array | None, Array | None]:
            return (x if trace else None), (None if reference is None else psnr(x, reference))

        measured = {"y": y} if op is None else {"y": y, "op": op}
        start, state, (estimates, curve) = run(trainable, measured, observe)
        first = observe(start.x)
        if trace:
            estimates = jnp.concatenate([first[0][None], estimates])
        if reference is not None:
            curve = jnp.concatenate([first[1][None], curve])
        iterations = jnp.full(y.shape[:-3], iters, jnp.int32)
        return admm.Solution(state.x, iterations, estimates, curve)

    return Method("unrolled_remat" if remat else "unrolled", init, loss, predict)


def _settings(config: Any) -> dict[str, Any]:
    return {"iters": config.admm.unrolled_iters, "rho": config.admm.rho, "sigma": config.admm.sigma}


SPEC = MethodSpec(
    "unrolled", unrolled, "Unrolled", _settings, iterations_setting="iters", fixed_iterations=True
)
REMAT_SPEC = MethodSpec(
    "unrolled_remat",
    functools.partial(unrolled, remat=True),
    "Unrolled (remat)",
    _settings,
    iterations_setting="iters",
    fixed_iterations=True,
)
