"""Plug-and-play restoration with a DRUNet prior: :func:`restore`, the one-line entry point."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax

from suppa_jax.models import drunet, weights
from suppa_jax.physics.base import LinearOperator
from suppa_jax.solvers import admm
from suppa_jax.typing import Array, ArrayLike

__all__ = ["restore"]


@functools.partial(jax.jit, static_argnames=("model", "max_iters", "trace"))
def _restore(
    model: drunet.DRUNet,
    params: Mapping[str, Any],
    y: Array,
    op: LinearOperator,
    sigma: ArrayLike,
    rho: ArrayLike,
    tol: ArrayLike,
    max_iters: int,
    trace: bool,
    reference: Array | None,
) -> admm.Solution:
    denoise = functools.partial(model.apply, {"params": params})
    return admm.solve(
        denoise,
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
    params: Mapping[str, Any],
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
    """Restore measurements ``y = A x + e`` with ADMM and the DRUNet whose weights are ``params``.

    ``params``: DRUNet parameters (the ``params`` collection, or ``{"params": ...}``); the
    architecture is read off their shapes. ``y``: ``(..., h, w, 3)`` in [0, 1]. ``op``: the
    forward operator (e.g. ``SuperResolution(2)``). ``sigma``: the denoiser's noise level, no
    default: the level tuned for a prior is stored with it (``weights.load_prior(path)
    .pnp_sigma["sr2"]``), a trained model's is its learned ``σ``. ``rho``: the ADMM
    coupling weight, by default :func:`suppa_jax.solvers.admm.reference_rho` (``0.1·s²``).
    Iterates to convergence (``max_iters``, per-sample ``tol``) under one compiled ``jit``;
    returns a :class:`~suppa_jax.solvers.admm.Solution` (``.x``, ``.iterations``, and the
    per-iteration trace or PSNR curve when ``trace`` or ``reference`` is given). The image size
    need not be a multiple of 8, but must be one of the operator's scale.
    """
    params = params.get("params", params)
    rho = admm.reference_rho(op) if rho is None else rho
    model = weights.model_from_params(params)
    return _restore(model, params, y, op, sigma, rho, tol, max_iters, trace, reference)
