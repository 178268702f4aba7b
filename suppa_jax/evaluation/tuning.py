"""The baselines' one free parameter each, tuned on *training* images only.

Plug-and-play ADMM with a fixed denoiser has the denoiser's ``σ`` (``ρ`` is the reference
``0.1·s²``, :func:`suppa_jax.solvers.admm.reference_rho`); the Tikhonov baseline has ``μ``. Both
are searched on centre crops of the bundled *training* sample images (never the evaluation
images), and the results are stored per named task in :mod:`suppa_jax.tasks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp
import ml_collections
import numpy as np

from suppa_jax import build, classical, data, metrics, tasks
from suppa_jax.evaluation.tasks import task_config
from suppa_jax.physics import LinearOperator, degrade_batch
from suppa_jax.solvers import pnp
from suppa_jax.typing import Array, Params

__all__ = [
    "SIGMA_GRID",
    "centre_crops",
    "resolve_pnp_sigma",
    "tune_pnp_sigma",
    "tune_tikhonov_mu",
]

#: The noise levels :func:`tune_pnp_sigma` tries ([0, 1] scale).
SIGMA_GRID = (0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1)


def centre_crops(source: data.ImageSource, size: int) -> np.ndarray:
    """``size × size`` centre crops, float32 in [0, 1], of the images at least that large."""
    crops = []
    for index in range(len(source)):
        image = source[index]
        height, width = image.shape[:2]
        if min(height, width) >= size:
            top, left = (height - size) // 2, (width - size) // 2
            crops.append(image[top : top + size, left : left + size])
    if not crops:
        raise ValueError(f"no image of at least {size}×{size} pixels to tune on")
    return np.stack(crops).astype(np.float32) / 255.0


def _degrade_crops(
    op: LinearOperator, images: np.ndarray, noise_sigma: float, quantize: bool
) -> dict[str, Array]:
    """Measurements of ``(N, H, W, 3)`` tuning crops, as in evaluation (seeds ``0..N−1``)."""
    batch = {"hr": images, "seed": np.arange(len(images), dtype=np.uint32)}
    return degrade_batch(op, batch, noise_sigma, quantize)


def tune_pnp_sigma(
    params: Params,
    op: LinearOperator,
    images: np.ndarray,
    *,
    noise_sigma: float,
    quantize: bool = True,
    grid: Sequence[float] = SIGMA_GRID,
    max_iters: int = 50,
    tol: float = 1e-3,
) -> tuple[float, dict[float, float]]:
    """The ``σ`` of ``grid`` with the best mean PSNR of plug-and-play ADMM on ``images``
    (``(N, H, W, 3)``, degraded as in evaluation with seeds ``0..N−1``; ``ρ = 0.1·s²``).

    Returns the best ``σ`` and the mean PSNR of each. Tune on training images only.
    """
    measured = _degrade_crops(op, images, noise_sigma, quantize)
    scores = {}
    for sigma in grid:
        solution = pnp.restore(params, measured["y"], op, sigma=sigma, max_iters=max_iters, tol=tol)
        scores[float(sigma)] = float(jnp.mean(metrics.psnr(solution.x, measured["gt"])))
    return max(scores, key=scores.get), scores


def resolve_pnp_sigma(
    sigma: float | str | None,
    params: Params,
    task: str,
    task_cfg: ml_collections.ConfigDict,
    log: Callable[[str], None] | None = print,
) -> float:
    """A PnP noise level: ``sigma`` itself; with ``None`` or ``"default"``, the named task's
    stored ``pnp_sigma`` (:mod:`suppa_jax.tasks`); with ``"tune"``, :func:`tune_pnp_sigma` on
    192×192 centre crops of the training samples."""
    if sigma is None or sigma == "default":
        stored = tasks.get_task(task).pnp_sigma
        if stored is None:
            raise ValueError(f"task {task!r} has no stored PnP σ: give a number or 'tune'")
        return stored
    if sigma != "tune":
        return float(sigma)
    crops = centre_crops(data.build_source("samples", "train"), 192)
    best, scores = tune_pnp_sigma(
        params,
        build.build_operator(task_cfg),
        crops,
        noise_sigma=task_cfg.noise_sigma,
        quantize=task_cfg.quantize,
    )
    if log:
        table = ", ".join(f"{s:g}: {p:.2f} dB" for s, p in scores.items())
        log(f"PnP σ on {len(crops)} training crops ({task}): {table} → {best:g}")
    return best


def tune_tikhonov_mu(task: str) -> tuple[float, dict[float, float]]:
    """:func:`suppa_jax.classical.tune_mu` for ``task`` on 192×192 centre crops of the training
    sample images, degraded as in evaluation (seeds ``0..N−1``): how the stored
    ``tikhonov_mu`` of :mod:`suppa_jax.tasks` was made."""
    task_cfg = task_config(task)
    op = build.build_operator(task_cfg)
    crops = centre_crops(data.build_source("samples", "train"), 192)
    measured = _degrade_crops(op, crops, task_cfg.noise_sigma, task_cfg.quantize)
    return classical.tune_mu(op, measured["y"], measured["gt"])
