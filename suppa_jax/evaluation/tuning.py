"""The baselines' one free parameter each, tuned on *training* images only.

Plug-and-play ADMM with a fixed denoiser has the denoiser's ``σ`` (``ρ`` is the reference
``0.1·s²``, :func:`suppa_jax.solvers.admm.reference_rho`); the Tikhonov baseline has ``μ``. Both
are searched on centre crops of the bundled *training* sample images (never the evaluation
images). ``μ`` is stored per named task in :mod:`suppa_jax.tasks`; ``σ`` belongs to a denoiser
and is stored in its weight file (:class:`suppa_jax.models.weights.Prior`,
``python -m suppa_jax.convert IN OUT --pnp_sigma=sr2=…``). A task or a denoiser with no stored
level is tuned when it is needed, and the log says so.

The shipped prior's levels (``weights/drunet_cpu_denoiser.msgpack``), from :func:`tune_pnp_sigma`
on 192×192 centre crops of the 13 training samples (``ρ = 0.1·s²``, 50 iterations, tol 1e-3):
sr2 over σ ∈ {0.01, 0.015, 0.02, 0.03, 0.05}: 32.95, 33.27, 33.41, 33.41, 33.08 dB (bicubic
35.00) → 0.03; deblur over {0.02, 0.03, 0.05, 0.075, 0.1}: 31.87, 32.18, 32.10, 31.66, 31.23 dB
(y 27.56) → 0.03; sr3 over {0.01, 0.015, 0.02, 0.03, 0.05, 0.075}: 29.05, 29.13, 29.09, 29.05,
28.37, 27.61 dB → 0.015; sr4 over the same: 27.31, 27.31, 27.14, 26.68, 25.65, 24.44 dB → 0.015
(a tie with 0.01, kept as for sr3); demosaic → 0.03; inpaint_pixels over {0.005, 0.01, 0.015, 0.02,
0.03, 0.05, 0.075, 0.1}: 27.25, 29.35, 31.13, 31.98, 32.80, 33.36, 33.13, 32.86 dB → 0.05.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import ml_collections
import numpy as np

from suppa_jax import build, classical, data, metrics, tasks
from suppa_jax.evaluation.tasks import task_config, task_label, task_name
from suppa_jax.models.weights import Prior
from suppa_jax.physics import LinearOperator, OperatorFamily, as_family, measure
from suppa_jax.solvers import admm, pnp
from suppa_jax.typing import DenoiseFn

__all__ = [
    "SIGMA_GRID",
    "Measurement",
    "centre_crops",
    "measurement",
    "parse_pnp_sigma",
    "resolve_pnp_sigma",
    "resolve_tikhonov_mu",
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
    return data.to_unit(np.stack(crops))


def _degrade_crops(
    physics: LinearOperator | OperatorFamily,
    images: np.ndarray,
    noise_sigma: float,
    quantize: bool,
) -> dict[str, Any]:
    """Measurements of ``(N, H, W, 3)`` tuning crops and their operator (batched when drawn per
    crop), as in evaluation (seeds ``0..N−1``)."""
    batch = {"hr": images, "seed": np.arange(len(images), dtype=np.uint32)}
    return measure(as_family(physics), batch, noise_sigma=noise_sigma, quantize=quantize)


def tune_pnp_sigma(
    denoiser: DenoiseFn,
    op: LinearOperator | OperatorFamily,
    images: np.ndarray,
    *,
    noise_sigma: float,
    quantize: bool = True,
    grid: Sequence[float] = SIGMA_GRID,
    max_iters: int = 50,
    tol: float = 1e-3,
) -> tuple[float, dict[float, float]]:
    """The ``σ`` of ``grid`` with the best mean PSNR of plug-and-play ADMM with ``denoiser`` on
    ``images`` (``(N, H, W, C)``, ``C`` the denoiser's channels, degraded as in evaluation with
    seeds ``0..N−1``, each with its own operator when ``op`` is a family; ``ρ = 0.1·s²``).

    Returns the best ``σ`` and the mean PSNR of each. Tune on training images only.
    """
    measured = _degrade_crops(op, images, noise_sigma, quantize)
    scores = {}
    for sigma in grid:
        solution = pnp.restore(
            denoiser,
            measured["y"],
            measured["op"],
            sigma=sigma,
            rho=admm.reference_rho(op),
            max_iters=max_iters,
            tol=tol,
        )
        scores[float(sigma)] = float(jnp.mean(metrics.psnr(solution.x, measured["gt"])))
    return max(scores, key=scores.get), scores


def _training_crops() -> np.ndarray:
    return centre_crops(data.build_source("samples", "train"), 192)


class Measurement(NamedTuple):
    """How measurements are made, as tuning needs it: the operator, the noise level, 8-bit
    quantisation, the named task they are (``None``: none) and a label for the logs."""

    op: LinearOperator | OperatorFamily
    noise_sigma: float
    quantize: bool
    name: str | None
    label: str


def measurement(task_cfg: ml_collections.ConfigDict) -> Measurement:
    """The :class:`Measurement` of a ``config.task`` section."""
    return Measurement(
        build.build_physics(task_cfg),
        task_cfg.noise_sigma,
        task_cfg.quantize,
        task_name(task_cfg),
        task_label(task_cfg),
    )


def parse_pnp_sigma(value: str, option: str) -> float | str:
    """A PnP-level command-line value: ``"default"``, ``"tune"`` or a noise level in (0, 1];
    a ``ValueError`` naming ``option`` otherwise."""
    if value in ("default", "tune"):
        return value
    try:
        sigma = float(value)
    except ValueError:
        raise ValueError(f"{option} must be a number, 'default' or 'tune', got {value!r}") from None
    if not 0 < sigma <= 1:
        raise ValueError(f"{option} must be in (0, 1] (the [0, 1] scale: 0.03, not 8), got {sigma}")
    return sigma


def resolve_pnp_sigma(
    sigma: float | str | None,
    prior: Prior,
    task: ml_collections.ConfigDict | Measurement,
    log: Callable[[str], None] | None = print,
) -> float:
    """A PnP noise level for ``prior`` on ``task`` (a ``config.task`` section or a
    :class:`Measurement`): ``sigma`` itself when it is a number; with ``None`` or
    ``"default"``, the level stored with the prior for this named task, else (a denoiser or task
    with none stored) as ``"tune"``; with ``"tune"``, :func:`tune_pnp_sigma` on 192×192 centre
    crops of the training samples."""
    if sigma not in (None, "default", "tune"):
        return float(sigma)
    task = task if isinstance(task, Measurement) else measurement(task)
    if sigma != "tune" and task.name in prior.pnp_sigma:
        return prior.pnp_sigma[task.name]
    if sigma != "tune" and log:
        log(f"no PnP σ is stored with {prior.path or 'the denoiser'} for {task.label}: tuning it")
    crops = data.to_channels(_training_crops(), prior.model.channels)
    best, scores = tune_pnp_sigma(
        prior.denoiser, task.op, crops, noise_sigma=task.noise_sigma, quantize=task.quantize
    )
    if log:
        table = ", ".join(f"{s:g}: {p:.2f} dB" for s, p in scores.items())
        log(f"PnP σ on {len(crops)} training crops ({task.label}): {table} → {best:g}")
    return best


def tune_tikhonov_mu(
    task: str | ml_collections.ConfigDict, grid: Sequence[float] = classical.MU_GRID
) -> tuple[float, dict[float, float]]:
    """:func:`suppa_jax.classical.tune_mu` over ``grid`` for ``task`` (a named task or a
    ``config.task`` section) on 192×192 centre crops of the training sample images, degraded as
    in evaluation (seeds ``0..N−1``): how the stored ``tikhonov_mu`` of :mod:`suppa_jax.tasks`
    was made."""
    task_cfg = task_config(task) if isinstance(task, str) else task
    physics = build.build_physics(task_cfg)
    measured = _degrade_crops(physics, _training_crops(), task_cfg.noise_sigma, task_cfg.quantize)
    return classical.tune_mu(measured["op"], measured["y"], measured["gt"], grid)


def resolve_tikhonov_mu(
    task_cfg: ml_collections.ConfigDict, log: Callable[[str], None] | None = print
) -> float:
    """The Tikhonov weight of a named task as stored in :mod:`suppa_jax.tasks`; for any other
    task (or one with none stored), :func:`tune_tikhonov_mu` now, logged."""
    name = task_name(task_cfg)
    stored = tasks.get_task(name).tikhonov_mu if name else None
    if stored is not None:
        return stored
    best, scores = tune_tikhonov_mu(task_cfg)
    if log:
        table = ", ".join(f"{m:g}: {p:.2f} dB" for m, p in scores.items())
        log(f"Tikhonov μ on the training crops ({task_label(task_cfg)}): {table} → {best:g}")
    return best
