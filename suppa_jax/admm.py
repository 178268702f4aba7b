"""Plug-and-play ADMM with a learned denoiser, as pure jittable functions.

The problem is ``min_x ½‖y − A x‖² + r(x)`` split as ``x = v``; the proximal step of the prior
is a Gaussian denoiser ``D(·, σ)``. One iteration ``f`` maps the state ``(x, u)`` to (DESIGN §5;
this order produced the paper's numbers)::

    v  = D(x + u, σ)
    x⁺ = argmin_x ½‖y − A x‖² + ρ/2‖x − (v − u)‖²      (op.data_prox)
    u⁺ = u + x⁺ − v

from ``x₀ = A.initial(y)``, ``u₀ = 0``; the estimate is ``x``. It is scaled-form ADMM with the
prior's step first, so with a proximal denoiser it converges to the minimiser of the sum.

The denoiser is any callable ``denoise(x, sigma) -> x``. Inside a loss it is a closure over
traced parameters; to pass it across a ``jit`` boundary wrap it as
``jax.tree_util.Partial(model.apply, variables)``.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from suppa_jax.metrics import psnr
from suppa_jax.operators import Operator

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
Denoiser = Callable[[Array, ArrayLike], Array]

__all__ = [
    "AndersonState",
    "Solution",
    "State",
    "anderson",
    "init",
    "iterate",
    "reference_rho",
    "relative_change",
    "solve",
    "step",
    "where_samples",
]


class State(NamedTuple):
    """ADMM state: the estimate ``x`` and the scaled dual variable ``u``, both image-shaped."""

    x: Array
    u: Array


class Solution(NamedTuple):
    """Result of :func:`solve`.

    ``x``: the estimate ``(..., H, W, C)``. ``iterations``: iterations applied to each sample
    ``(...,)``. ``estimates``: with ``trace=True``, ``x₀..x_K`` stacked on a new leading axis of
    length ``max_iters + 1``, each sample's last estimate repeated after it stopped.
    ``psnr``: when a reference image is given, the PSNR of those estimates,
    ``(max_iters + 1, ...)`` in dB (the paper's Fig. 3 curves).
    """

    x: Array
    iterations: Array
    estimates: Array | None = None
    psnr: Array | None = None


def reference_rho(op: Operator) -> float:
    """``ρ = 0.1·s²``: the reference implementation's coupling weight, in this module's convention.

    Its code passed ``ρ = 0.1`` and scaled it by ``s²`` inside the super-resolution prox; in the
    convention ``½‖y − Ax‖² + ρ/2‖x − z‖²`` that is ``0.1·s²`` (0.1 for deblurring).
    """
    return 0.1 * op.scale**2


def init(op: Operator, y: Array) -> State:
    """``x₀ = A.initial(y)``, ``u₀ = 0``."""
    x = op.initial(y)
    return State(x, jnp.zeros_like(x))


def step(
    denoise: Denoiser, op: Operator, y: Array, state: State, rho: ArrayLike, sigma: ArrayLike
) -> State:
    """One ADMM iteration ``f(x, u)``: denoise, exact data step, dual update."""
    v = denoise(state.x + state.u, sigma)
    x = op.data_prox(v - state.u, y, rho)
    return State(x, state.u + x - v)


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

    The histories hold ``concat(x, u)`` along channels, ``(..., m, H, W, 2C)``; ``count`` is the
    number of pairs seen, per sample.
    """

    state: State
    inputs: Array
    outputs: Array
    count: Array


def _flat(state: State) -> Array:
    return jnp.concatenate([state.x, state.u], axis=-1)


def _unflat(z: Array) -> State:
    x, u = jnp.split(z, 2, axis=-1)
    return State(x, u)


def anderson(
    f: Callable[[State], State],
    state: State,
    *,
    max_iters: int,
    tol: ArrayLike,
    memory: int = 5,
    mixing: float = 1.0,
    regularization: float = 1e-4,
) -> tuple[State, Array]:
    """Fixed point of ``f`` by Anderson acceleration (type II), with :func:`iterate`'s stop rule.

    With the last ``m`` inputs ``s_i``, outputs ``f(s_i)`` and residuals ``g_i = f(s_i) − s_i``
    (over the whole state ``(x, u)``), per sample::

        α = argmin ‖Σ α_i g_i‖² + reg·‖α‖²  subject to  Σ α_i = 1
        s⁺ = β·Σ α_i f(s_i) + (1 − β)·Σ α_i s_i

    (``β`` = ``mixing``); with one pair this is the plain iteration ``s⁺ = f(s)``. Returns the
    last iterate and the iterations per sample.
    """
    batch_shape = state.x.shape[:-3]
    z = _flat(state)
    history = jnp.zeros((*batch_shape, memory, *z.shape[len(batch_shape) :]), z.dtype)
    start = AndersonState(state, history, history, jnp.zeros(batch_shape, jnp.int32))

    def accelerated(acc: AndersonState) -> AndersonState:
        z, fz = _flat(acc.state), _flat(f(acc.state))
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
        return AndersonState(_unflat(z_next), inputs, outputs, acc.count + 1)

    final, iterations, _ = iterate(
        accelerated, start, max_iters=max_iters, tol=tol, estimate=lambda acc: acc.state.x
    )
    return final.state, iterations


def solve(
    denoise: Denoiser,
    op: Operator,
    y: Array,
    *,
    rho: ArrayLike,
    sigma: ArrayLike,
    max_iters: int = 50,
    tol: ArrayLike = 1e-3,
    trace: bool = False,
    reference: Array | None = None,
) -> Solution:
    """Iterate :func:`step` from :func:`init` until each sample has converged.

    A sample stops when ``‖x_{k+1} − x_k‖ / (1e-5 + ‖x_{k+1}‖) < tol``: from then on its state is
    frozen (its later iterations are computed and discarded), while the others go on; the loop
    ends when every sample has stopped or after ``max_iters`` iterations. ``y`` has shape
    ``(..., h, w, C)`` (any batch dimensions, including none). ``rho`` and ``sigma`` are scalars
    or one value per sample; ``tol`` may be traced, ``max_iters`` and ``trace`` are static. With
    ``reference`` (ground truth, image-shaped) the per-iteration PSNR is recorded; with
    ``trace=True`` every estimate is.

    Pure and jittable; the kernel spectra are computed once, before the loop.
    """
    op = op.prepare(op.image_shape(y))
    steps = max_iters + 1
    start = init(op, y)

    def observe(buffers, k, state, _updated):
        estimates, curve = buffers
        if estimates is not None:
            estimates = estimates.at[k].set(state.x)
        if curve is not None:
            curve = curve.at[k].set(psnr(state.x, reference))
        return estimates, curve

    empty = (
        jnp.zeros((steps, *start.x.shape), start.x.dtype) if trace else None,
        None if reference is None else jnp.zeros((steps, *y.shape[:-3]), start.x.dtype),
    )
    state, iterations, (estimates, curve) = iterate(
        lambda s: step(denoise, op, y, s, rho, sigma),
        start,
        max_iters=max_iters,
        tol=tol,
        observe=observe if trace or reference is not None else None,
        observation=empty,
    )
    # Rows after the loop ended were never written: they repeat the final values.
    unwritten = jnp.arange(steps) > jnp.max(iterations)
    if estimates is not None:
        estimates = where_samples(unwritten, state.x[None], estimates)
    if curve is not None:
        curve = where_samples(unwritten, psnr(state.x, reference)[None], curve)
    return Solution(state.x, iterations, estimates, curve)
