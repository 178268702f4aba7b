"""Training methods for unrolled ADMM, written once each as pure losses.

All four share the ADMM iteration ``f`` of :mod:`suppa_jax.admm` (``s = (x, u)``,
``f(s) = step(D_θ, A, y, s, ρ, σ)``) and differ only in how the gradient reaches ``θ``:

============== ================================================== =====================
method         gradient path                                      memory in K
============== ================================================== =====================
``suppa``      two differentiable steps from detached states      constant
``unrolled``   backprop through K steps (``lax.scan``)            linear
``unrolled_remat`` the same with ``jax.checkpoint`` on each step   linear, small slope
``deq``        implicit: adjoint fixed point ``g = J_fᵀ g + ∂ℓ/∂s*``  constant
``jfb``        one differentiable step at the fixed point         constant
============== ================================================== =====================

A method is built from the denoiser ``apply(params, x, sigma) -> x`` (for DRUNet:
``lambda p, x, s: model.apply({"params": p}, x, s)``), the operator and its settings, and
exposes ``init(denoiser_params) -> trainable`` and ``loss(trainable, batch, key) -> (scalar,
metrics)``. ``trainable`` is a dict: the denoiser's params under ``"denoiser"`` and the method's
learned scalars (``"sigma"``, ``"lam"``, ``"rho"``) beside them, raw (no reparametrisation), so an
optimiser can give the scalars their own group. ``batch`` holds measurements ``"y"``
``(B, h, w, C)`` and ground truth ``"gt"`` ``(B, H, W, C)``; ``mse`` is the mean over all
elements. ``metrics`` always has ``loss``, ``psnr`` (of the method's output), ``iterations``
(forward iterations per sample, mean over the batch) and the learned scalars.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from suppa_jax import admm
from suppa_jax.metrics import psnr
from suppa_jax.operators import Operator

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
Params = Any
Trainable = dict[str, Any]
Batch = dict[str, Array]
Metrics = dict[str, Array]
DenoiserApply = Callable[[Params, Array, ArrayLike], Array]

__all__ = [
    "METHODS",
    "Method",
    "denoiser",
    "deq",
    "jfb",
    "make",
    "noise_level",
    "suppa",
    "suppa_forward",
    "suppa_objective",
    "unrolled",
]


class Method(NamedTuple):
    """A training method: initial trainables, a pure loss, and inference with the trainables.

    ``predict(trainable, y, reference=None) -> admm.Solution`` restores ``y`` the way the method
    is meant to be used at test time (to convergence, or ``K`` steps for explicit unrolling),
    with the per-iteration PSNR curve when ``reference`` is given.
    """

    name: str
    init: Callable[[Params], Trainable]
    loss: Callable[[Trainable, Batch, Array], tuple[Array, Metrics]]
    predict: Callable[..., admm.Solution]


# ---------------------------------------------------------------------------------- shared


def _iteration(
    apply: DenoiserApply, op: Operator, y: Array, params: Params, rho: ArrayLike, sigma: ArrayLike
) -> Callable[[admm.State], admm.State]:
    """``s ↦ f(s)``: one ADMM iteration with the denoiser's params bound."""
    denoise = functools.partial(apply, params)
    return lambda state: admm.step(denoise, op, y, state, rho, sigma)


def _prepared(op: Operator, y: Array) -> Operator:
    return op.prepare(op.image_shape(y))


def _mse(a: Array, b: Array) -> Array:
    return jnp.mean((a - b) ** 2)


def _scalar(value: ArrayLike) -> Array:
    return jnp.asarray(value, jnp.float32)


def _metrics(
    loss: Array, estimate: Array, gt: Array, iterations: ArrayLike, trainable: Trainable
) -> Metrics:
    scalars = {name: jnp.mean(v) for name, v in trainable.items() if name != "denoiser"}
    return {
        "loss": loss,
        "psnr": jnp.mean(psnr(estimate, gt)),
        "iterations": jnp.mean(jnp.asarray(iterations, jnp.float32)),
        **scalars,
    }


def _fixed_point(
    f: Callable[[admm.State], admm.State],
    start: admm.State,
    max_iters: int,
    tol: ArrayLike,
    anderson_memory: int,
) -> tuple[admm.State, Array]:
    """Forward fixed point with per-sample stopping, detached: plain iteration, or Anderson
    acceleration over the last ``anderson_memory`` iterates when that is positive."""
    if anderson_memory:
        state, iterations = admm.anderson(
            f, start, max_iters=max_iters, tol=tol, memory=anderson_memory
        )
    else:
        state, iterations, _ = admm.iterate(f, start, max_iters=max_iters, tol=tol)
    return jax.lax.stop_gradient(state), iterations


def _uniform(key: Array, k: Array, batch_shape: tuple[int, ...]) -> Array:
    """One U[0, 1) draw per sample at iteration ``k``, from one key or from one key per sample.

    Per-sample keys (derived from each example's seed) make the draws independent of how the
    batch is split across devices.
    """
    if key.shape == ():
        return jax.random.uniform(jax.random.fold_in(key, k), batch_shape)
    draw = lambda sample_key: jax.random.uniform(jax.random.fold_in(sample_key, k))  # noqa: E731
    return jax.vmap(draw)(key.reshape(-1)).reshape(batch_shape)


def _solve(
    apply: DenoiserApply,
    op: Operator,
    params: Params,
    rho: ArrayLike,
    sigma: ArrayLike,
    max_iters: int,
    tol: ArrayLike,
) -> Callable[..., admm.Solution]:
    """``predict`` for the fixed-point methods: ADMM to convergence (:func:`admm.solve`)."""

    def predict(y: Array, reference: Array | None = None) -> admm.Solution:
        denoise = functools.partial(apply, params)
        return admm.solve(
            denoise, op, y, rho=rho, sigma=sigma, max_iters=max_iters, tol=tol, reference=reference
        )

    return predict


# ---------------------------------------------------------------------------------- SUPPA


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
        draw = _uniform(key, k, batch_shape)
        weakest = jnp.argmin(priorities, axis=0)
        replace = (slots == weakest) & updated & (draw > jnp.min(priorities, axis=0))
        priorities = jnp.where(replace, draw, priorities)
        states = jax.tree.map(
            lambda kept, s: admm.where_samples(replace, s[None], kept), states, state
        )
        return states, priorities

    empty = (
        jax.tree.map(lambda s: jnp.broadcast_to(s, (random_states, *s.shape)), start),
        jnp.full((random_states, *batch_shape), -1.0),
    )
    last, iterations, (sampled, _) = admm.iterate(
        f, start, max_iters=max_iters, tol=tol, observe=observe, observation=empty
    )
    return jax.lax.stop_gradient(sampled), jax.lax.stop_gradient(last), iterations


def suppa_objective(
    f: Callable[[admm.State], admm.State],
    lam: ArrayLike,
    sampled: admm.State,
    last: admm.State,
    gt: Array,
) -> tuple[Array, Array]:
    """``mean_j mse((1+λ)·f(s_kj).x − λ·s_kj.x, gt) + mse(f(s_K).x, gt)`` (paper Eqs. 20–22).

    The first term asks ``f`` to be the proximal map of ``g(x) = ‖x* − x‖²/2λ`` with ``x* = gt``
    at random visited states; the second fits the last estimate. The ``n + 1`` differentiable
    steps run as one vmapped call. Returns the loss and ``f(s_K).x``.
    """
    n = sampled.x.shape[0]
    stacked = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), sampled, last)
    stepped = jax.vmap(f)(stacked)
    random_term = _mse((1 + lam) * stepped.x[:n] - lam * sampled.x, gt)
    return random_term + _mse(stepped.x[n], gt), stepped.x[n]


def suppa(
    apply: DenoiserApply,
    op: Operator,
    *,
    rho: float,
    max_iters: int = 50,
    tol: float = 1e-3,
    sigma: float = 0.1,
    lam: float = 1.0,
    random_states: int = 1,
) -> Method:
    """The Stochastic Unrolled Proximal Point Algorithm (the paper's method).

    Forward loop of at most ``max_iters`` iterations (per-sample tolerance ``tol``) under
    ``stop_gradient``, reservoir sampling of ``random_states`` visited states, then
    :func:`suppa_objective`. Learned: ``sigma`` (init 0.1) and ``λ`` (``lam``, init 1.0, raw);
    ``rho`` is fixed.
    """

    def init(denoiser: Params) -> Trainable:
        return {"denoiser": denoiser, "sigma": _scalar(sigma), "lam": _scalar(lam)}

    def loss(trainable: Trainable, batch: Batch, key: Array) -> tuple[Array, Metrics]:
        y, gt = batch["y"], batch["gt"]
        A = _prepared(op, y)
        frozen = jax.lax.stop_gradient(trainable)
        f_frozen = _iteration(apply, A, y, frozen["denoiser"], rho, frozen["sigma"])
        sampled, last, iterations = suppa_forward(
            f_frozen,
            admm.init(A, y),
            key,
            max_iters=max_iters,
            tol=tol,
            random_states=random_states,
        )
        f = _iteration(apply, A, y, trainable["denoiser"], rho, trainable["sigma"])
        value, estimate = suppa_objective(f, trainable["lam"], sampled, last, gt)
        return value, _metrics(value, estimate, gt, iterations, trainable)

    def predict(trainable: Trainable, y: Array, reference: Array | None = None) -> admm.Solution:
        solve = _solve(apply, op, trainable["denoiser"], rho, trainable["sigma"], max_iters, tol)
        return solve(y, reference)

    return Method("suppa", init, loss, predict)


# ---------------------------------------------------------------------------------- unrolled


def unrolled(
    apply: DenoiserApply,
    op: Operator,
    *,
    iters: int = 6,
    rho: float,
    sigma: float = 0.1,
    remat: bool = False,
) -> Method:
    """Explicit unrolling: ``loss = mse(x_K, gt)`` through ``K = iters`` steps (``lax.scan``).

    Shared denoiser weights; learned per-step ``rho_k`` and ``sigma_k`` (shape ``(K,)``). With
    ``remat`` each step is wrapped in ``jax.checkpoint``: only the states ``(x, u)`` between steps
    are stored, and each step's activations are recomputed on the way back.
    """

    def init(denoiser: Params) -> Trainable:
        return {
            "denoiser": denoiser,
            "rho": jnp.full((iters,), rho, jnp.float32),
            "sigma": jnp.full((iters,), sigma, jnp.float32),
        }

    def run(trainable: Trainable, y: Array, observe: Callable[[Array], Array]):
        """``K`` steps from ``init``; ``observe(x_k)`` is stacked for ``k = 1..K``."""
        A = _prepared(op, y)

        def body(state: admm.State, rho_sigma: tuple[Array, Array]):
            rho_k, sigma_k = rho_sigma
            state = _iteration(apply, A, y, trainable["denoiser"], rho_k, sigma_k)(state)
            return state, observe(state.x)

        body = jax.checkpoint(body) if remat else body
        start = admm.init(A, y)
        state, observed = jax.lax.scan(body, start, (trainable["rho"], trainable["sigma"]))
        return start, state, observed

    def loss(trainable: Trainable, batch: Batch, key: Array) -> tuple[Array, Metrics]:
        del key  # deterministic
        _, state, _ = run(trainable, batch["y"], lambda x: None)
        value = _mse(state.x, batch["gt"])
        return value, _metrics(value, state.x, batch["gt"], iters, trainable)

    def predict(trainable: Trainable, y: Array, reference: Array | None = None) -> admm.Solution:
        if reference is None:
            _, state, _ = run(trainable, y, lambda x: None)
            curve = None
        else:
            start, state, curve = run(trainable, y, lambda x: psnr(x, reference))
            curve = jnp.concatenate([psnr(start.x, reference)[None], curve])
        return admm.Solution(state.x, jnp.full(y.shape[:-3], iters, jnp.int32), None, curve)

    return Method("unrolled_remat" if remat else "unrolled", init, loss, predict)


# ---------------------------------------------------------------------------------- DEQ / JFB


def _admm_map(apply: DenoiserApply, params: Trainable, context: tuple, state: admm.State):
    """``f_θ(s)`` with ``θ = (denoiser, rho, sigma)`` and ``context = (op, y)``."""
    op, y = context
    return _iteration(apply, op, y, params["denoiser"], params["rho"], params["sigma"])(state)


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

    g, _, _ = admm.iterate(
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
    op: Operator,
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
    estimate. Learned: the denoiser, a shared ``rho`` and ``sigma``; ``predict`` is ADMM to
    convergence with them.
    """

    def init(denoiser: Params) -> Trainable:
        return {"denoiser": denoiser, "rho": _scalar(rho), "sigma": _scalar(sigma)}

    def loss(trainable: Trainable, batch: Batch, key: Array) -> tuple[Array, Metrics]:
        del key  # deterministic
        y, gt = batch["y"], batch["gt"]
        context = (_prepared(op, y), y)
        frozen = jax.lax.stop_gradient(trainable)
        fixed, iterations = _fixed_point(
            lambda s: _admm_map(apply, frozen, context, s),
            admm.init(context[0], y),
            max_iters,
            tol,
            anderson_memory,
        )
        estimate = head(trainable, context, fixed)
        value = _mse(estimate, gt)
        return value, _metrics(value, estimate, gt, iterations, trainable)

    def predict(trainable: Trainable, y: Array, reference: Array | None = None) -> admm.Solution:
        solve = _solve(
            apply, op, trainable["denoiser"], trainable["rho"], trainable["sigma"], max_iters, tol
        )
        return solve(y, reference)

    return Method(name, init, loss, predict)


def deq(
    apply: DenoiserApply,
    op: Operator,
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
    :func:`suppa_jax.admm.anderson`). Backward (``jax.custom_vjp``): ``g = J_fᵀ g + ∂ℓ/∂s*``
    over the whole state ``(x, u)``, iterated with VJPs of ``f`` at ``s*`` (at most
    ``backward_max_iters``, per-sample tolerance ``backward_tol``), then ``θ̄ = (∂f/∂θ)ᵀ g``.
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
    op: Operator,
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


# ---------------------------------------------------------------------------------- pre-training


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
    op: Operator | None = None,
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
        value = _mse(estimate, gt)
        return value, _metrics(value, estimate, gt, 1, trainable)

    def predict(trainable: Trainable, y: Array, reference: Array | None = None) -> admm.Solution:
        x = apply(trainable["denoiser"], y, eval_sigma)
        curve = None if reference is None else jnp.stack([psnr(y, reference), psnr(x, reference)])
        return admm.Solution(x, jnp.ones(y.shape[:-3], jnp.int32), None, curve)

    return Method("denoiser", init, loss, predict)


METHODS: dict[str, Callable[..., Method]] = {
    "suppa": suppa,
    "unrolled": unrolled,
    "unrolled_remat": functools.partial(unrolled, remat=True),
    "deq": deq,
    "jfb": jfb,
    "denoiser": denoiser,
}


def make(name: str, apply: DenoiserApply, op: Operator, **settings: Any) -> Method:
    """The method called ``name`` (a key of :data:`METHODS`) with keyword ``settings``."""
    if name not in METHODS:
        raise ValueError(f"unknown training method {name!r}; choose one of {sorted(METHODS)}")
    try:
        return METHODS[name](apply, op, **settings)
    except TypeError as error:  # an unknown or missing setting
        raise ValueError(f"method {name!r}: {error}") from None
