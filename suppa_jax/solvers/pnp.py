"""Plug-and-play restoration with any denoiser: :func:`restore`, the one-line entry point."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

from suppa_jax.models.base import Denoiser, as_denoiser
from suppa_jax.physics.base import LinearOperator
from suppa_jax.solvers import admm
from suppa_jax.typing import Array, ArrayLike

__all__ = ["restore"]


@functools.partial(jax.jit, static_argnames=("max_iters", "trace"))
def _restore(
    denoiser: Denoiser,
    y: Array,
    op: LinearOperator,
    sigma: ArrayLike,
    rho: ArrayLike,
    tol: ArrayLike,
    max_iters: int,
    trace: bool,
    reference: Array | None,
) -> admm.Solution:
    return admm.solve(
        denoiser,
        op,
        y,
        rho=rho,
        sigma=sigma,
        max_iters=max_iters,
        tol=tol,
        trace=trace,
        reference=reference,
    )


def restore(
    denoiser: Denoiser | Callable[[Array, ArrayLike], Array],
    y: ArrayLike,
    op: LinearOperator,
    *,
    sigma: ArrayLike,
    rho: ArrayLike | None = None,
    max_iters: int = 50,
    tol: ArrayLike = 1e-3,
    trace: bool = False,
    reference: ArrayLike | None = None,
) -> admm.Solution:
    """Restore measurements ``y = A x + e`` with plug-and-play ADMM and ``denoiser``.

    ``denoiser``: a :class:`~suppa_jax.models.Denoiser` (``prior.denoiser`` of a weight file,
    ``Denoiser.of(module, params)``), or any callable ``(x, σ) → x`` (compiled once per
    callable). ``y``: ``(..., h, w, C)`` in [0, 1], ``C`` the denoiser's channels. ``op``: the
    forward operator (e.g. ``SuperResolution(2)``). ``sigma``: the denoiser's noise level, no
    default: the level tuned for a prior is stored with it (``weights.load_prior(path)
    .pnp_sigma["sr2"]``), a trained model's is its learned ``σ``. ``rho``: the ADMM
    coupling weight, by default :func:`suppa_jax.solvers.admm.reference_rho` (``0.1·s²``).
    Iterates to convergence (``max_iters``, per-sample ``tol``) under one compiled ``jit``;
    returns a :class:`~suppa_jax.solvers.admm.Solution` (``.x``, ``.iterations``, and the
    per-iteration trace or PSNR curve when ``trace`` or ``reference`` is given). The image size
    need not be a multiple of 8, but must be one of the operator's scale.
    """
    rho = admm.reference_rho(op) if rho is None else rho
    return _restore(as_denoiser(denoiser), y, op, sigma, rho, tol, max_iters, trace, reference)
