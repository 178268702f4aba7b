"""suppa_jax: learned unrolled ADMM for linear image inverse problems, in JAX.

Modules: :mod:`~suppa_jax.operators` (forward models with exact adjoints and data steps),
:mod:`~suppa_jax.drunet` (the DRUNet denoiser prior and its PyTorch weight layout),
:mod:`~suppa_jax.admm` (the ADMM iteration and solver), :mod:`~suppa_jax.methods` (SUPPA and
its rivals as pure training losses), :mod:`~suppa_jax.training` (one optimiser step).

The one-line entry point is :func:`restore`.
"""

import functools
import os
from collections.abc import Mapping, MutableMapping
from typing import Any

import jax
import jaxlib

from suppa_jax import admm, drunet, methods, metrics, operators
from suppa_jax.admm import Solution
from suppa_jax.operators import Operator

XLA_CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=",)
"""XLA:CPU flags that :func:`use_fast_xla_cpu_flags` adds to ``XLA_FLAGS`` on import.

jaxlib 0.10 hands convolutions to YNNPACK by default; for DRUNet its convolutions are slower
than XLA's own (Eigen) ones. Turning that fusion off made the small DRUNet's forward 19% and
its forward+backward 13% faster on a 2-core AVX-512 CPU, and the paper-size one's 21% and 12%
(``benchmarks/NOTES.md``). The flag only changes CPU compilation; GPU and TPU are untouched.
"""


def use_fast_xla_cpu_flags(environ: MutableMapping[str, str] | None = None) -> bool:
    """Append :data:`XLA_CPU_FLAGS` to ``XLA_FLAGS``; returns whether it did.

    Skipped when ``SUPPA_JAX_XLA_CPU_FLAGS=0``, when ``XLA_FLAGS`` already names the flag (the
    user's choice wins), and for jaxlib other than 0.10.x, where it was measured (XLA aborts the
    process on a flag it does not know). XLA reads ``XLA_FLAGS`` when JAX starts its backends,
    so this takes effect only if ``suppa_jax`` is imported before the first JAX computation.
    """
    environ = os.environ if environ is None else environ
    flags = environ.get("XLA_FLAGS", "")
    if (
        environ.get("SUPPA_JAX_XLA_CPU_FLAGS") == "0"
        or not jaxlib.__version__.startswith("0.10.")
        or any(flag.split("=")[0] in flags for flag in XLA_CPU_FLAGS)
    ):
        return False
    environ["XLA_FLAGS"] = " ".join([flags, *XLA_CPU_FLAGS]).strip()
    return True


use_fast_xla_cpu_flags()

__all__ = ["admm", "drunet", "methods", "metrics", "operators", "restore"]
__version__ = "0.1.0"


@functools.partial(jax.jit, static_argnames=("model", "max_iters", "trace"))
def _restore(
    model: drunet.DRUNet,
    params: Mapping[str, Any],
    y: jax.Array,
    op: Operator,
    sigma: jax.typing.ArrayLike,
    rho: jax.typing.ArrayLike,
    tol: jax.typing.ArrayLike,
    max_iters: int,
    trace: bool,
    reference: jax.Array | None,
) -> Solution:
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
    y: jax.typing.ArrayLike,
    op: Operator,
    *,
    sigma: jax.typing.ArrayLike = 0.1,
    rho: jax.typing.ArrayLike | None = None,
    max_iters: int = 50,
    tol: jax.typing.ArrayLike = 1e-3,
    trace: bool = False,
    reference: jax.typing.ArrayLike | None = None,
) -> Solution:
    """Restore measurements ``y = A x + e`` with ADMM and the DRUNet whose weights are ``params``.

    ``params``: DRUNet parameters (the ``params`` collection, or ``{"params": ...}``); the
    architecture is read off their shapes. ``y``: ``(..., h, w, 3)`` in [0, 1]. ``op``: the
    forward operator (e.g. ``SuperResolution(2)``). ``sigma``: the denoiser's noise level (a
    trained model's learned ``σ``; 0.1 is the training initialisation). ``rho``: the ADMM
    coupling weight, by default :func:`suppa_jax.admm.reference_rho` (``0.1·s²``). Iterates to
    convergence (``max_iters``, per-sample ``tol``) under one compiled ``jit``; returns a
    :class:`~suppa_jax.admm.Solution` (``.x``, ``.iterations``, and the per-iteration trace or
    PSNR curve when ``trace`` or ``reference`` is given). The image size need not be a multiple
    of 8, but must be one of the operator's scale.
    """
    params = params.get("params", params)
    rho = admm.reference_rho(op) if rho is None else rho
    model = drunet.model_from_params(params)
    return _restore(model, params, y, op, sigma, rho, tol, max_iters, trace, reference)
