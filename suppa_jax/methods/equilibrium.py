"""Deep equilibrium (implicit gradient) and Jacobian-free backpropagation at the fixed point."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from suppa_jax.methods.base import (
    Method,
    admm_iteration,
    detached_fixed_point,
    fixed_point_settings,
    mse,
    prepared,
    scalar,
    solve_predict,
    step_metrics,
)
from suppa_jax.methods.registry import MethodSpec
from suppa_jax.physics.base import LinearOperator
from suppa_jax.solvers import admm
from suppa_jax.solvers.fixed_point import iterate
from suppa_jax.typing import Array, Batch, DenoiserApply, Metrics, Params, Trainable

__all__ = ["deq", "jfb"]


def _admm_map(apply: DenoiserApply, params: Trainable, context: tuple, state: admm.State):
    """``f_θ(s)`` with ``θ = (denoiser, rho, sigma)`` and ``context = (op, y)``."""
    op, y = context
    return admm_iteration(apply, op, y, params["denoiser"], params["rho"], params["sigma"])(state)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _equilibrium(
    apply: DenoiserApply,
    max_iters: int,
    tol: float,
    params: Trainable,
    context: tuple,
    fixed_point: admm.State,
) -> admm.State:
    """The identity on a fixed point ``s* = f_θ(s*)``, differentiated implicitly in ``θ``."""
    return fixed_point


def _equilibrium_fwd(apply, max_iters, tol, params, context, fixed_point):
    return fixed_point, (params, context, fixed_point)


def _equilibrium_bwd(apply, max_iters, tol, residuals, cotangent):
    """``θ̄ = (∂f/∂θ)ᵀ g`` with ``g = J_fᵀ g + s̄``, solved by iterating VJPs over ``(x, u)``."""
    params, context, fixed_point = residuals
    _, vjp = jax.vjp(lambda p, s: _admm_map(apply, p, context, s), params, fixed_point)

    def adjoint_step(g: admm.State) -> admm.State:
        return jax.tree.map(jnp.add, vjp(g)[1], cotangent)

    g, _, _ = iterate(
        adjoint_step,
        cotangent,
        max_iters=max_iters,
        tol=tol,
        estimate=lambda g: jnp.concatenate([g.x, g.u], axis=-1),
    )
    zeros = functools.partial(jax.tree.map, jnp.zeros_like)
    return vjp(g)[0], zeros(context), zeros(fixed_point)


_equilibrium.defvjp(_equilibrium_fwd, _equilibrium_bwd)


def _fixed_point_method(
    name: str,
    apply: DenoiserApply,
    own: LinearOperator | None,
    head: Callable[[Trainable, tuple, admm.State], Array],
    *,
    rho: float,
    sigma: float,
    max_iters: int,
    tol: float,
    anderson_memory: int,
) -> Method:
    """DEQ and JFB: a detached forward fixed point ``s*``, then ``loss = mse(head(s*), gt)``.

    ``head(trainable, (op, y), s*)`` is the differentiable part that maps the fixed point to the
    estimate. ``own``: the method's operator (``None``: each batch brings its ``"op"``).
    Learned: the denoiser, a shared ``rho`` and ``sigma``; ``predict`` is ADMM to convergence
    with them.
    """

    def init(denoiser: Params) -> Trainable:
        return {"denoiser": denoiser, "rho": scalar(rho), "sigma": scalar(sigma)}

    def loss(trainable: Trainable, batch: Batch, key: Array) -> tuple[Array, Metrics]:
        del key  # deterministic
        y, gt = batch["y"], batch["gt"]
        context = (prepared(own, batch), y)
        frozen = jax.lax.stop_gradient(trainable)
        fixed, iterations = detached_fixed_point(
            lambda s: _admm_map(apply, frozen, context, s),
            admm.init(context[0], y),
            max_iters,
            tol,
            anderson_memory,
        )
        estimate = head(trainable, context, fixed)
        value = mse(estimate, gt)
        return value, step_metrics(value, estimate, gt, iterations, trainable)

    def predict(
        trainable: Trainable,
        y: Array,
        reference: Array | None = None,
        trace: bool = False,
        op: LinearOperator | None = None,
    ) -> admm.Solution:
        solve = solve_predict(
            apply, own, trainable["denoiser"], trainable["rho"], trainable["sigma"], max_iters, tol
        )
        return solve(y, reference, trace, op)

    return Method(name, init, loss, predict)


def deq(
    apply: DenoiserApply,
    op: LinearOperator | None,
    *,
    rho: float,
    max_iters: int = 50,
    tol: float = 1e-3,
    sigma: float = 0.1,
    backward_max_iters: int = 50,
    backward_tol: float = 1e-3,
    anderson_memory: int = 0,
) -> Method:
    """Deep equilibrium: ``loss = mse(s*.x, gt)`` with the implicit gradient at ``s* = f(s*)``.

    Forward: fixed-point iteration (at most ``max_iters``, tolerance ``tol``) under
    ``stop_gradient``, plain or Anderson-accelerated (``anderson_memory > 0``, see
    :func:`suppa_jax.solvers.fixed_point.anderson`). Backward (``jax.custom_vjp``):
    ``g = J_fᵀ g + ∂ℓ/∂s*`` over the whole state ``(x, u)``, iterated with VJPs of ``f`` at
    ``s*`` (at most ``backward_max_iters``, per-sample tolerance ``backward_tol``), then
    ``θ̄ = (∂f/∂θ)ᵀ g``.
    Memory: one step's residuals. Learned: the denoiser, a shared ``rho`` and ``sigma``.
    """

    def head(trainable: Trainable, context: tuple, fixed: admm.State) -> Array:
        return _equilibrium(apply, backward_max_iters, backward_tol, trainable, context, fixed).x

    return _fixed_point_method(
        "deq",
        apply,
        op,
        head,
        rho=rho,
        sigma=sigma,
        max_iters=max_iters,
        tol=tol,
        anderson_memory=anderson_memory,
    )


def jfb(
    apply: DenoiserApply,
    op: LinearOperator | None,
    *,
    rho: float,
    max_iters: int = 50,
    tol: float = 1e-3,
    sigma: float = 0.1,
    anderson_memory: int = 0,
) -> Method:
    """Jacobian-free backpropagation: ``loss = mse(f(s*).x, gt)``, one differentiable step.

    The fixed point ``s*`` is found as in :func:`deq` under ``stop_gradient``; the gradient is
    that of the last step only (the DEQ gradient with ``J_f`` taken as 0). Learned: the
    denoiser, a shared ``rho`` and ``sigma``.
    """

    def head(trainable: Trainable, context: tuple, fixed: admm.State) -> Array:
        return _admm_map(apply, trainable, context, fixed).x

    return _fixed_point_method(
        "jfb",
        apply,
        op,
        head,
        rho=rho,
        sigma=sigma,
        max_iters=max_iters,
        tol=tol,
        anderson_memory=anderson_memory,
    )


def _jfb_settings(config: Any) -> dict[str, Any]:
    return fixed_point_settings(config) | {"anderson_memory": config.admm.anderson_memory}


def _deq_settings(config: Any) -> dict[str, Any]:
    a = config.admm
    backward = {"backward_max_iters": a.backward_max_iters, "backward_tol": a.backward_tol}
    return _jfb_settings(config) | backward


DEQ_SPEC = MethodSpec("deq", deq, "DEQ", _deq_settings)
JFB_SPEC = MethodSpec("jfb", jfb, "JFB", _jfb_settings)
