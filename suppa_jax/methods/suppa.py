"""SUPPA, the Stochastic Unrolled Proximal Point Algorithm (the paper's method)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from suppa_jax.methods.base import (
    Method,
    admm_iteration,
    fixed_point_settings,
    mse,
    prepared,
    scalar,
    solve_predict,
    step_metrics,
    uniform_draw,
)
from suppa_jax.methods.registry import MethodSpec
from suppa_jax.physics.base import LinearOperator
from suppa_jax.solvers import admm
from suppa_jax.solvers.fixed_point import iterate, where_samples
from suppa_jax.typing import Array, ArrayLike, Batch, DenoiserApply, Metrics, Params, Trainable

__all__ = ["suppa", "suppa_forward", "suppa_objective"]


def suppa_forward(
    f: Callable[[admm.State], admm.State],
    start: admm.State,
    key: Array,
    *,
    max_iters: int,
    tol: ArrayLike,
    random_states: int = 1,
) -> tuple[admm.State, admm.State, Array]:
    """SUPPA's forward loop: iterate ``f`` and keep random visited states, by reservoir sampling.

    Each sample visits ``s_0 .. s_K`` (``K`` its own iteration count). Every visited state draws
    a uniform priority; the reservoir keeps the ``random_states`` states with the largest
    priorities, i.e. a uniform sample without replacement (with fewer visited states than
    slots, ``s_0`` fills the rest). Only the reservoir and the current state are kept, so memory
    does not grow with ``K``. Returns the sampled states (leaves with a leading axis of length
    ``random_states``), the last state ``s_K`` and the iterations per sample, all detached.
    ``key`` is one key, or one key per sample (batch-split invariant).
    """
    batch_shape = start.x.shape[:-3]
    if key.shape not in ((), batch_shape):
        raise ValueError(f"key must be one key or one per sample {batch_shape}, got {key.shape}")
    slots = jnp.arange(random_states).reshape((random_states,) + (1,) * len(batch_shape))

    def observe(reservoir, k, state, updated):
        states, priorities = reservoir
        draw = uniform_draw(key, k, batch_shape)
        weakest = jnp.argmin(priorities, axis=0)
        replace = (slots == weakest) & updated & (draw > jnp.min(priorities, axis=0))
        priorities = jnp.where(replace, draw, priorities)
        states = jax.tree.map(lambda kept, s: where_samples(replace, s[None], kept), states, state)
        return states, priorities

    empty = (
        jax.tree.map(lambda s: jnp.broadcast_to(s, (random_states, *s.shape)), start),
        jnp.full((random_states, *batch_shape), -1.0),
    )
    last, iterations, (sampled, _) = iterate(
        f, start, max_iters=max_iters, tol=tol, observe=observe, observation=empty
    )
    return jax.lax.stop_gradient(sampled), jax.lax.stop_gradient(last), iterations


def suppa_objective(
    f: Callable[[admm.State], admm.State],
    lam: ArrayLike,
    sampled: admm.State,
    last: admm.State,
    gt: Array,
    sequential: bool = False,
) -> tuple[Array, Array]:
    """``mean_j mse((1+λ)·f(s_kj).x − λ·s_kj.x, gt) + mse(f(s_K).x, gt)`` (paper Eqs. 20–22).

    The first term asks ``f`` to be the proximal map of ``g(x) = ‖x* − x‖²/2λ`` with ``x* = gt``
    at random visited states; the second fits the last estimate. The ``n + 1`` differentiable
    steps run as one vmapped call; with ``sequential``, one after the other (``lax.map``), each
    rematerialised (``jax.checkpoint``): the backward pass then holds one step's activations at
    a time instead of ``n + 1``, at the cost of running each step's forward twice. The loss and
    its gradient are the same. Returns the loss and ``f(s_K).x``.
    """
    n = sampled.x.shape[0]
    stacked = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), sampled, last)
    if sequential:
        stepped_x = jax.lax.map(jax.checkpoint(lambda state: f(state).x), stacked)
    else:
        stepped_x = jax.vmap(f)(stacked).x
    random_term = mse((1 + lam) * stepped_x[:n] - lam * sampled.x, gt)
    return random_term + mse(stepped_x[n], gt), stepped_x[n]


def suppa(
    apply: DenoiserApply,
    own: LinearOperator | None,
    *,
    rho: float,
    max_iters: int = 50,
    tol: float = 1e-3,
    sigma: float = 0.1,
    lam: float = 1.0,
    random_states: int = 1,
    sequential: bool = False,
) -> Method:
    """The Stochastic Unrolled Proximal Point Algorithm (the paper's method).

    Forward loop of at most ``max_iters`` iterations (per-sample tolerance ``tol``) under
    ``stop_gradient``, reservoir sampling of ``random_states`` visited states, then
    :func:`suppa_objective` (``sequential``: its differentiable steps one after the other,
    rematerialised, for less memory). Learned: ``sigma`` (init 0.1) and ``λ`` (``lam``, init
    1.0, raw); ``rho`` is fixed. ``own``: the operator (``None``: each batch brings its
    ``"op"``, and ``predict`` is given one).
    """

    def init(denoiser: Params) -> Trainable:
        return {"denoiser": denoiser, "sigma": scalar(sigma), "lam": scalar(lam)}

    def loss(trainable: Trainable, batch: Batch, key: Array) -> tuple[Array, Metrics]:
        y, gt = batch["y"], batch["gt"]
        A = prepared(own, batch)
        frozen = jax.lax.stop_gradient(trainable)
        f_frozen = admm_iteration(apply, A, y, frozen["denoiser"], rho, frozen["sigma"])
        sampled, last, iterations = suppa_forward(
            f_frozen,
            admm.init(A, y),
            key,
            max_iters=max_iters,
            tol=tol,
            random_states=random_states,
        )
        f = admm_iteration(apply, A, y, trainable["denoiser"], rho, trainable["sigma"])
        value, estimate = suppa_objective(f, trainable["lam"], sampled, last, gt, sequential)
        return value, step_metrics(value, estimate, gt, iterations, trainable)

    def predict(
        trainable: Trainable,
        y: Array,
        reference: Array | None = None,
        trace: bool = False,
        op: LinearOperator | None = None,
    ) -> admm.Solution:
        solve = solve_predict(
            apply, own, trainable["denoiser"], rho, trainable["sigma"], max_iters, tol
        )
        return solve(y, reference, trace, op)

    return Method("suppa", init, loss, predict)


def _settings(config: Any) -> dict[str, Any]:
    a = config.admm
    return fixed_point_settings(config) | {
        "lam": a.lam,
        "random_states": a.random_states,
        "sequential": a.sequential_steps,
    }


SPEC = MethodSpec("suppa", suppa, "SUPPA", _settings)
