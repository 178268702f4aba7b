"""Fixed-point iteration with per-sample stopping, plain or Anderson-accelerated.

:func:`iterate` is the one ``lax.while_loop`` behind every solver and method here: ADMM to
convergence, SUPPA's forward pass with its reservoir, DEQ's forward and adjoint fixed points.
A *state* is any pytree whose leaves are image-shaped, ``(..., H, W, C_leaf)``, with the same
leading batch dimensions; each sample stops on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from suppa_jax.typing import Array, ArrayLike

__all__ = ["AndersonState", "anderson", "iterate", "relative_change", "where_samples"]

State = Any  # a pytree of image-shaped arrays


def relative_change(new: Array, old: Array) -> Array:
    """``‖new − old‖ / (1e-5 + ‖new‖)`` per image (norms over ``(H, W, C)``)."""
    norm = lambda a: jnp.sqrt(jnp.sum(a**2, axis=(-3, -2, -1)))  # noqa: E731
    return norm(new - old) / (1e-5 + norm(new))


def where_samples(mask: Array, new: Array, old: Array) -> Array:
    """Per-sample select: ``mask`` has the batch shape, ``new``/``old`` are image-shaped."""
    return jnp.where(mask.reshape(mask.shape + (1,) * (new.ndim - mask.ndim)), new, old)


def iterate(
    f: Callable[[State], State],
    state: State,
    *,
    max_iters: int,
    tol: ArrayLike,
    observe: Callable[[Any, Array, State, Array], Any] | None = None,
    observation: Any = None,
    estimate: Callable[[State], Array] = lambda state: state.x,
) -> tuple[State, Array, Any]:
    """Apply ``f`` until every sample has converged: the one loop behind every solver here.

    A sample stops when ``relative_change(estimate(f(s)), estimate(s)) < tol``; from then on its
    state is frozen while the others go on. The ``lax.while_loop`` ends when every sample has
    stopped or after ``max_iters`` iterations. The batch shape is that of
    ``estimate(state).shape[:-3]``, and every leaf of the state starts with it.

    ``observe(observation, k, state, updated)`` is called on the start state (``k = 0``, every
    sample updated) and after each iteration ``k`` with the mask of samples that moved, and
    returns the new observation (traces, reservoir samples, ...).

    Returns the final state, the iterations applied to each sample, and the observation.
    """
    batch_shape = estimate(state).shape[:-3]
    if observe is not None:
        observation = observe(observation, jnp.asarray(0), state, jnp.ones(batch_shape, bool))

    def cond(carry):
        k, _, active, *_ = carry
        return (k < max_iters) & jnp.any(active)

    def body(carry):
        k, state, active, iterations, observation = carry
        new = f(state)
        converged = relative_change(estimate(new), estimate(state)) < tol
        state = jax.tree.map(lambda n, o: where_samples(active, n, o), new, state)
        if observe is not None:
            observation = observe(observation, k + 1, state, active)
        return k + 1, state, active & ~converged, iterations + active, observation

    carry = (
        jnp.asarray(0, jnp.int32),
        state,
        jnp.ones(batch_shape, bool),
        jnp.zeros(batch_shape, jnp.int32),
        observation,
    )
    _, state, _, iterations, observation = jax.lax.while_loop(cond, body, carry)
    return state, iterations, observation


class AndersonState(NamedTuple):
    """Anderson-accelerated iteration: the current iterate and the last ``m`` pairs ``(s, f(s))``.

    The histories hold the state's leaves concatenated along channels, ``(..., m, H, W, ΣC)``;
    ``count`` is the number of pairs seen, per sample.
    """

    state: State
    inputs: Array
    outputs: Array
    count: Array


def _flattener(state: State) -> tuple[Callable[[State], Array], Callable[[Array], State]]:
    """``flat(s)``: the leaves of ``s`` concatenated along channels, and its inverse."""
    leaves, treedef = jax.tree.flatten(state)
    splits = np.cumsum([leaf.shape[-1] for leaf in leaves])[:-1].tolist()

    def flat(s: State) -> Array:
        return jnp.concatenate(jax.tree.leaves(s), axis=-1)

    def unflat(z: Array) -> State:
        return jax.tree.unflatten(treedef, jnp.split(z, splits, axis=-1))

    return flat, unflat


def anderson(
    f: Callable[[State], State],
    state: State,
    *,
    max_iters: int,
    tol: ArrayLike,
    memory: int = 5,
    mixing: float = 1.0,
    regularization: float = 1e-4,
    estimate: Callable[[State], Array] = lambda state: state.x,
) -> tuple[State, Array]:
    """Fixed point of ``f`` by Anderson acceleration (type II), with :func:`iterate`'s stop rule.

    With the last ``m`` inputs ``s_i``, outputs ``f(s_i)`` and residuals ``g_i = f(s_i) − s_i``
    (over the whole state, e.g. ADMM's ``(x, u)``), per sample::

        α = argmin ‖Σ α_i g_i‖² + reg·‖α‖²  subject to  Σ α_i = 1
        s⁺ = β·Σ α_i f(s_i) + (1 − β)·Σ α_i s_i

    (``β`` = ``mixing``); with one pair this is the plain iteration ``s⁺ = f(s)``. Returns the
    last iterate and the iterations per sample.
    """
    flat, unflat = _flattener(state)
    batch_shape = estimate(state).shape[:-3]
    z = flat(state)
    history = jnp.zeros((*batch_shape, memory, *z.shape[len(batch_shape) :]), z.dtype)
    start = AndersonState(state, history, history, jnp.zeros(batch_shape, jnp.int32))

    def accelerated(acc: AndersonState) -> AndersonState:
        z, fz = flat(acc.state), flat(f(acc.state))
        slot = jax.nn.one_hot(acc.count % memory, memory, dtype=bool)[..., None, None, None]
        inputs = jnp.where(slot, z[..., None, :, :, :], acc.inputs)
        outputs = jnp.where(slot, fz[..., None, :, :, :], acc.outputs)
        valid = jnp.arange(memory) < jnp.minimum(acc.count + 1, memory)[..., None]
        residuals = outputs - inputs
        gram = jnp.einsum("...ihwc,...jhwc->...ij", residuals, residuals)
        gram = jnp.where(valid[..., :, None] & valid[..., None, :], gram, 0.0)
        # Ridge relative to the largest residual; an empty slot gets a unit diagonal (α_i = 0).
        largest = jnp.max(jnp.diagonal(gram, axis1=-2, axis2=-1), axis=-1, keepdims=True)
        ridge = jnp.where(valid, regularization * largest + 1e-20, 1.0)
        gram = gram + jnp.eye(memory) * ridge[..., None, :]
        weights = jnp.linalg.solve(gram, valid.astype(z.dtype)[..., None])[..., 0]
        weights = weights / jnp.sum(weights, axis=-1, keepdims=True)
        mix = lambda h: jnp.einsum("...i,...ihwc->...hwc", weights, h)  # noqa: E731
        z_next = mixing * mix(outputs) + (1 - mixing) * mix(inputs)
        return AndersonState(unflat(z_next), inputs, outputs, acc.count + 1)

    final, iterations, _ = iterate(
        accelerated, start, max_iters=max_iters, tol=tol, estimate=lambda acc: estimate(acc.state)
    )
    return final.state, iterations
