"""Plug-and-play ADMM with a learned denoiser, as pure jittable functions.

The problem is ``min_x ½‖y − A x‖² + r(x)`` split as ``x = v``; the proximal step of the prior
is a Gaussian denoiser ``D(·, σ)``. One iteration ``f`` maps the state ``(x, u)`` to (the order
of the reference code, which produced the paper's numbers)::

    v  = D(x + u, σ)
    x⁺ = argmin_x ½‖y − A x‖² + ρ/2‖x − (v − u)‖²      (op.data_prox)
    u⁺ = u + x⁺ − v

from ``x₀ = A.initial(y)``, ``u₀ = 0``; the estimate is ``x``. It is scaled-form ADMM with the
prior's step first, so with a proximal denoiser it converges to the minimiser of the sum.

The denoiser is any callable ``denoise(x, sigma) -> x`` (the convention of
:mod:`suppa_jax.models.base`). Inside a loss it is a closure over traced parameters; across a
``jit`` boundary pass a :class:`suppa_jax.models.Denoiser`, a pytree whose leaves are its params
(``Denoiser.of(module, params)``, or ``prior.denoiser`` of a weight file).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from suppa_jax.metrics import psnr
from suppa_jax.physics.base import LinearOperator
from suppa_jax.physics.families import OperatorFamily
from suppa_jax.solvers.fixed_point import iterate, where_samples
from suppa_jax.typing import Array, ArrayLike, DenoiseFn

__all__ = ["Solution", "State", "init", "reference_rho", "solve", "step"]


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


def reference_rho(op: LinearOperator | OperatorFamily) -> float:
    """``ρ = 0.1·s²``: the reference implementation's coupling weight, in this module's convention.

    Its code passed ``ρ = 0.1`` and scaled it by ``s²`` inside the super-resolution prox; in the
    convention ``½‖y − Ax‖² + ρ/2‖x − z‖²`` that is ``0.1·s²`` (0.1 for deblurring).
    """
    return 0.1 * op.scale**2


def init(op: LinearOperator, y: Array) -> State:
    """``x₀ = A.initial(y)``, ``u₀ = 0``."""
    x = op.initial(y)
    return State(x, jnp.zeros_like(x))


def step(
    denoise: DenoiseFn, op: LinearOperator, y: Array, state: State, rho: ArrayLike, sigma: ArrayLike
) -> State:
    """One ADMM iteration ``f(x, u)``: denoise, exact data step, dual update."""
    v = denoise(state.x + state.u, sigma)
    x = op.data_prox(v - state.u, y, rho)
    return State(x, state.u + x - v)


def solve(
    denoise: DenoiseFn,
    op: LinearOperator,
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
