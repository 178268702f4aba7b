"""Evaluation: restore every image of a dataset with the baselines and a model, measure, report.

``python evaluate.py --checkpoint=… --task=… --data=…`` (see :func:`main`) and ``make demo``
(:mod:`suppa_jax.demo`) are built on these pieces:

* **Rows** (:class:`Restorer`): the starting estimate ``initial(y)`` (``bicubic`` upsampling for
  super-resolution, ``y`` itself for deblurring); the classical Tikhonov restoration with a
  gradient penalty (:func:`tikhonov_restorer`, ``μ`` of :data:`TIKHONOV_MU`, tuned on the
  training samples); plug-and-play ADMM with a pre-trained, not
  fine-tuned, denoiser (:func:`pnp_restorer`); and a model trained by ``train.py``
  (:func:`method_restorer`), run as its method is used at test time (``Method.predict``:
  ADMM to convergence, at most ``max_iters = 50`` iterations, per-image tolerance
  ``tol = 1e-3``, DESIGN §5; ``K`` steps for explicit unrolling).
* **Images**: each full image of the dataset, cropped at the top left to a multiple of the scale
  (:func:`suppa_jax.data.eval_images`; images are never resized), degraded as in training (the
  task's operator, noise and 8-bit quantisation, with the image's index as seed). Any size
  works; every distinct size compiles each restorer once.
* **Metrics** (:mod:`suppa_jax.metrics`), on the float estimates as computed (not clipped, not
  quantised, as the per-iteration curves): PSNR on RGB without border crop (the paper's
  protocol), PSNR of the BT.601 luma with a border of ``scale`` pixels (the SR literature's),
  and SSIM (``dm_pix``, RGB); means over the images of a dataset, plus the mean number of
  iterations. The saved PNGs are the estimates clipped to [0, 1] and rounded to 8 bits.
* **Outputs** (:func:`write_report`): ``results.md`` (a table shaped like the paper's Tables I–II,
  and one table per dataset with every metric), ``results.csv`` and ``results.json`` (per-image
  values too), ``images/<dataset>/`` (ground truth, measurement and every restoration as PNG),
  ``grid_<dataset>.png`` (side by side, with PSNR labels) and ``psnr_per_iteration.png`` (mean
  PSNR per iteration, the paper's Fig. 3).

**The plug-and-play noise level.** ADMM with a fixed denoiser has one free parameter, the
denoiser's ``σ`` (``ρ`` is the reference ``0.1·s²``, :func:`suppa_jax.admm.reference_rho`). By
default it is :data:`PNP_SIGMA`, chosen for the shipped small denoiser by :func:`tune_pnp_sigma`
on centre crops of the *training* sample images (never the evaluation images); pass another
value, or ``tune`` to rerun that search for another denoiser (minutes per task on a CPU).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from suppa_jax import admm, classical, data, drunet, metrics, restore
from suppa_jax import config as config_lib
from suppa_jax.operators import Operator

Array = jax.Array
Params = Any

__all__ = [
    "COLUMNS",
    "METHOD_LABELS",
    "METRICS_NOTE",
    "PNP_SIGMA",
    "SIGMA_GRID",
    "TASKS",
    "TIKHONOV_MU",
    "Dataset",
    "DatasetResult",
    "Model",
    "Report",
    "Restorer",
    "centre_crops",
    "check_task",
    "evaluate",
    "format_tables",
    "image_metrics",
    "initial_restorer",
    "load_denoiser",
    "load_model",
    "main",
    "method_restorer",
    "operator",
    "parse_data",
    "plot_curves",
    "plot_grid",
    "pnp_restorer",
    "resolve_pnp_sigma",
    "run",
    "task_config",
    "task_name",
    "tikhonov_restorer",
    "tune_pnp_sigma",
    "tune_tikhonov_mu",
    "write_report",
]

#: The tasks of the paper: bicubic super-resolution ×2, ×3, ×4 (no noise) and Gaussian
#: deblurring (σ 2, 11×11, noise 0.01); 8-bit measurements (:func:`task_config`).
TASKS = ("sr2", "sr3", "sr4", "deblur")

#: The denoiser noise level of plug-and-play ADMM per task, for the shipped prior
#: (``weights/drunet_cpu_denoiser.msgpack``): the best mean PSNR of :func:`tune_pnp_sigma` on
#: 192×192 centre crops of the 13 *training* sample images (``ρ = 0.1·s²``, 50 iterations,
#: tol 1e-3), over σ ∈ {0.01, 0.015, 0.02, 0.03, 0.05} for sr2 (32.95, 33.27, 33.41, 33.41,
#: 33.08 dB; bicubic 35.00) and {0.02, 0.03, 0.05, 0.075, 0.1} for deblur (31.87, 32.18, 32.10,
#: 31.66, 31.23 dB; ``y`` 27.56). sr3 and sr4 keep the levels tuned for the previous prior
#: (0.05, 0.075): not yet re-tuned. Plug-and-play with this prior stays below bicubic at sr2.
PNP_SIGMA = {"sr2": 0.03, "sr3": 0.05, "sr4": 0.075, "deblur": 0.03}

#: The gradient-penalty weight ``μ`` of the Tikhonov baseline per task
#: (:func:`suppa_jax.classical.tikhonov`): the best mean PSNR of ``classical.MU_GRID`` on the
#: same 192×192 centre crops of the 13 *training* sample images (:func:`tune_tikhonov_mu`).
#: There: deblur 29.93 dB (``y``: 27.56). For noise-free super-resolution the PSNR rises as
#: ``μ`` falls and flattens below 1e-3 (sr2 34.68, sr3 29.21, sr4 27.97 dB), under bicubic:
#: a quadratic prior cannot undo the aliasing that the interpolation kernel hides.
TIKHONOV_MU = {"sr2": 1e-4, "sr3": 1e-4, "sr4": 1e-4, "deblur": 0.03162278}

#: The noise levels :func:`tune_pnp_sigma` tries ([0, 1] scale).
SIGMA_GRID = (0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1)

#: Row labels of the trained methods (the paper's names).
METHOD_LABELS = {
    "suppa": "SUPPA",
    "unrolled": "Unrolled",
    "unrolled_remat": "Unrolled (remat)",
    "deq": "DEQ",
    "jfb": "JFB",
}

#: Metric keys and their column titles, in table order.
COLUMNS = {
    "psnr_rgb": "PSNR RGB (dB)",
    "psnr_y": "PSNR-Y (dB)",
    "ssim": "SSIM",
    "iterations": "iterations",
    "drop": "worst drop (dB)",
}

METRICS_NOTE = (
    "psnr_rgb: RGB, no border crop; psnr_y: BT.601 luma, border = scale; ssim: dm_pix on RGB; "
    "all on the float estimates, unclipped; means over images; drop: how far the PSNR falls "
    "below the starting estimate's at the worst iteration (0 if never), largest over images"
)

_PARAMS_SUFFIXES = (".msgpack", ".pth", ".pt")
_ROOT = Path(__file__).resolve().parents[1]


# ============================================================================================
# Tasks
# ============================================================================================


def task_config(task: str) -> ml_collections.ConfigDict:
    """The ``config.task`` section of ``task`` (one of :data:`TASKS`)."""
    if task == "deblur":
        return config_lib.experiment("deblur").task
    match = re.fullmatch(r"sr(\d)", task)
    if match and task in TASKS:
        return config_lib.experiment("sr", scale=int(match.group(1))).task
    raise ValueError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")


def _task_fields(task: ml_collections.ConfigDict) -> dict[str, Any]:
    """The fields of a task config that define its measurements (the kernel's own only)."""
    fields = {
        "kind": task.kind,
        "scale": task.scale,
        "kernel": task.kernel,
        "noise_sigma": task.noise_sigma,
        "quantize": task.quantize,
    }
    if task.kernel == "bicubic":
        fields["bicubic_a"] = task.bicubic_a
    elif task.kernel == "gaussian":
        fields.update(blur_sigma=task.blur_sigma, blur_size=task.blur_size)
    return fields


def _same(a: Any, b: Any) -> bool:
    """Equal, floats up to rounding (``0.1·s²`` computed two ways); ``None`` = absent."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def task_name(task: ml_collections.ConfigDict) -> str | None:
    """The name in :data:`TASKS` of a task config, or ``None`` if it is none of them."""
    fields = _task_fields(task)
    for name in TASKS:
        reference = _task_fields(task_config(name))
        if fields.keys() == reference.keys() and all(
            _same(fields[k], reference[k]) for k in fields
        ):
            return name
    return None


def _describe(fields: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in fields.items())


def check_task(requested: str, trained: ml_collections.ConfigDict, where: str) -> None:
    """Raise a ``ValueError`` naming both tasks unless ``trained`` is the task ``requested``."""
    asked, found = _task_fields(task_config(requested)), _task_fields(trained)
    differ = [
        f"task.{k} {asked.get(k)!r} vs {found.get(k)!r}"
        for k in dict.fromkeys([*asked, *found])
        if not _same(asked.get(k), found.get(k))
    ]
    if differ:
        trained_name = task_name(trained) or _describe(found)
        raise ValueError(
            f"task mismatch: --task={requested} but {where} was trained for {trained_name} "
            f"({'; '.join(differ)})"
        )


def operator(task: ml_collections.ConfigDict) -> Operator:
    """The forward model of a task config (``trainer.build_operator``)."""
    from suppa_jax.trainer import build_operator  # the trainer imports orbax, optax, grain

    return build_operator(task)


# ============================================================================================
# Restorers
# ============================================================================================


@dataclasses.dataclass(frozen=True)
class Restorer:
    """One row of the tables: ``restore(y, gt) -> admm.Solution`` (with the per-iteration PSNR
    curve in ``.psnr`` for iterative methods). ``slug`` names its files."""

    label: str
    slug: str
    restore: Callable[[Array, Array], admm.Solution]
    iterative: bool = True
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _one_shot_restorer(
    label: str, slug: str, estimate: Callable[[Array], Array], info: Mapping[str, Any] | None = None
) -> Restorer:
    """A non-iterative row: ``x = estimate(y)`` (jitted), zero iterations, no PSNR curve."""
    estimate = jax.jit(estimate)

    def run(y: Array, gt: Array) -> admm.Solution:
        del gt
        return admm.Solution(estimate(y), jnp.zeros(y.shape[:-3], jnp.int32))

    return Restorer(label, slug, run, iterative=False, info=info or {})


def initial_restorer(op: Operator) -> Restorer:
    """The starting estimate ``x₀ = A.initial(y)``: ``bicubic`` upsampling, or ``initial(y)``
    (``y`` itself) for deblurring."""
    if op.scale > 1:
        return _one_shot_restorer("bicubic", "bicubic", op.initial)
    return _one_shot_restorer("initial(y)", "initial", op.initial)


def tikhonov_restorer(op: Operator, mu: float) -> Restorer:
    """The classical baseline ``argmin_x ½‖y − Ax‖² + μ/2‖∇x‖²`` (closed form,
    :func:`suppa_jax.classical.tikhonov`)."""
    return _one_shot_restorer(
        "Tikhonov", "tikhonov", lambda y: classical.tikhonov(op, y, mu), {"mu": mu}
    )


def pnp_restorer(
    params: Params,
    op: Operator,
    *,
    sigma: float,
    rho: float | None = None,
    max_iters: int = 50,
    tol: float = 1e-3,
    label: str = "PnP-ADMM (pre-trained)",
    slug: str = "pnp",
) -> Restorer:
    """Plug-and-play ADMM with a fixed DRUNet (``suppa_jax.restore``: jitted, to convergence),
    denoiser noise level ``sigma``, ``rho`` by default ``0.1·s²``."""
    rho = admm.reference_rho(op) if rho is None else rho

    def run(y: Array, gt: Array) -> admm.Solution:
        return restore(
            params, y, op, sigma=sigma, rho=rho, max_iters=max_iters, tol=tol, reference=gt
        )

    info = {"sigma": sigma, "rho": rho, "max_iters": max_iters, "tol": tol}
    return Restorer(label, slug, run, info=info)


def method_restorer(
    config: ml_collections.ConfigDict, trainable: Mapping[str, Any], op: Operator
) -> Restorer:
    """A ``train.py`` model: ``Method.predict`` of ``config.method`` with its trainables (the
    fixed-point methods iterate to ``config.admm.max_iters`` / ``tol``), jitted once."""
    from suppa_jax.trainer import build_method, build_model

    method = build_method(config, build_model(config), op)
    predict = jax.jit(method.predict)
    scalars = {
        k: np.asarray(v, np.float64).round(6).tolist()
        for k, v in trainable.items()
        if k != "denoiser"
    }
    info = {"method": config.method, **scalars}
    if config.method in ("unrolled", "unrolled_remat"):
        info["iterations"] = config.admm.unrolled_iters
    else:
        info.update(max_iters=config.admm.max_iters, tol=config.admm.tol)
    return Restorer(
        METHOD_LABELS.get(config.method, config.method),
        config.method,
        lambda y, gt: predict(trainable, y, gt),
        info=info,
    )


# ============================================================================================
# Checkpoints
# ============================================================================================


def _resolve(path: str, what: str) -> Path:
    """``path`` as given, else relative to the repository root (configs name ``weights/…``)."""
    candidate = Path(path)
    if candidate.exists():
        return candidate
    if not candidate.is_absolute() and (_ROOT / candidate).exists():
        return _ROOT / candidate
    raise ValueError(f"{what} {path!r} does not exist")


def load_denoiser(path: str | Path) -> Params:
    """DRUNet params from a ``.msgpack`` (``drunet.save_params``) or PyTorch ``.pth`` file.

    Raises ``ValueError`` naming the file when it is missing, of another type or not a DRUNet.
    """
    path = _resolve(str(path), "params file")
    if path.is_dir() or path.suffix.lower() not in _PARAMS_SUFFIXES:
        raise ValueError(
            f"{path}: not a params file (expected {', '.join(_PARAMS_SUFFIXES)} or a train.py "
            "workdir)"
        )
    if path.suffix.lower() == ".msgpack":
        return drunet.load_params(path)[1]
    from suppa_jax.convert import read_state_dict

    try:
        return drunet.params_from_torch(read_state_dict(str(path)))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def _config_from_json(workdir: Path) -> ml_collections.ConfigDict:
    """The run's configuration from ``config.json`` (lists back to tuples), validated."""
    path = workdir / "config.json"
    if not path.is_file():
        raise ValueError(f"{workdir} is a directory but not a train.py workdir (no config.json)")
    try:
        values = config_lib.flatten(json.loads(path.read_text()))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    schema = config_lib.flatten(config_lib.base())
    values = {
        k: tuple(v) if isinstance(schema.get(k), tuple) and isinstance(v, list) else v
        for k, v in values.items()
    }
    try:
        config = config_lib.apply_overrides(config_lib.base(), values)
        config_lib.validate(config)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err.args[0] if err.args else err}") from err
    return config


def _check_trainable(
    config: ml_collections.ConfigDict, trainable: Mapping[str, Any], workdir: Path
) -> None:
    """The trainables fit ``config``: the DRUNet architecture and the method's scalars."""
    from suppa_jax.trainer import build_method, build_model

    if not isinstance(trainable, Mapping) or "denoiser" not in trainable:
        raise ValueError(f"{workdir}: the best checkpoint holds no denoiser params")
    expected = build_model(config)
    try:
        found = drunet.model_from_params(trainable["denoiser"])
    except ValueError as err:
        raise ValueError(f"{workdir}: the checkpoint's denoiser is not a DRUNet ({err})") from err
    if found != expected:
        raise ValueError(
            f"architecture mismatch: {workdir} holds a DRUNet with {drunet.describe(found)}, "
            f"but its config.json says {drunet.describe(expected)}"
        )
    method = build_method(config, expected, operator(config.task))
    shapes = jax.eval_shape(method.init, trainable["denoiser"])
    want = {k: tuple(v.shape) for k, v in shapes.items() if k != "denoiser"}
    have = {k: tuple(np.shape(v)) for k, v in trainable.items() if k != "denoiser"}
    if want != have:
        raise ValueError(
            f"method mismatch: {workdir} holds the scalars {have} but its method "
            f"{config.method!r} needs {want}"
        )


@dataclasses.dataclass(frozen=True)
class Model:
    """What ``--checkpoint`` resolves to: the model's row, the task, and the pre-trained
    denoiser it started from (the PnP baseline's; ``None`` when unknown)."""

    restorer: Restorer
    task: str
    task_config: ml_collections.ConfigDict
    pretrained: str | None
    info: Mapping[str, Any]


def load_model(
    checkpoint: str,
    task: str | None,
    *,
    max_iters: int = 50,
    tol: float = 1e-3,
    pnp_sigma: float | str | None = None,
    log: Callable[[str], None] | None = print,
) -> Model:
    """Resolve ``checkpoint``: a ``train.py`` workdir (its best validation checkpoint, run as its
    method with the evaluation's ``max_iters``/``tol``) or a params file (plug-and-play ADMM
    with that denoiser and ``pnp_sigma``, see :func:`resolve_pnp_sigma`).

    ``task`` must be the workdir's task (``None``: take the workdir's); a params file needs one.
    Raises ``ValueError`` with a one-line message naming the mismatch: a missing checkpoint, a
    directory that is not a workdir, an architecture or method that does not fit the run's
    config, a task other than the run's.
    """
    path = Path(checkpoint)
    if not path.exists():
        raise ValueError(f"checkpoint {checkpoint!r} does not exist")
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    if path.is_dir():
        config = _config_from_json(path)
        if config.method != "denoiser":
            return _load_run(path, config, task, max_iters, tol)
        from suppa_jax.trainer import best_trainable

        params = best_trainable(path)[1]["denoiser"]
        source = f"{path} (best denoiser)"
    else:
        params, source = load_denoiser(path), str(path)
    if task is None:
        raise ValueError(f"--task is needed with a denoiser checkpoint ({checkpoint})")
    task_cfg = task_config(task)
    op = operator(task_cfg)
    sigma = resolve_pnp_sigma(pnp_sigma, params, task, task_cfg, log)
    row = pnp_restorer(
        params,
        op,
        sigma=sigma,
        max_iters=max_iters,
        tol=tol,
        label=f"PnP-ADMM ({path.stem or path.name})",
        slug="pnp_model",
    )
    info = {"kind": "denoiser", "checkpoint": source, **row.info}
    return Model(row, task, task_cfg, None, info)


def _load_run(
    workdir: Path,
    config: ml_collections.ConfigDict,
    task: str | None,
    max_iters: int,
    tol: float,
) -> Model:
    from suppa_jax.trainer import best_trainable

    trained = task_name(config.task)
    if task is None:
        if trained is None:
            raise ValueError(
                f"{workdir} was trained on a task that is none of {', '.join(TASKS)} "
                f"({_describe(_task_fields(config.task))})"
            )
        task = trained
    check_task(task, config.task, str(workdir))
    try:
        step, trainable = best_trainable(workdir)
    except FileNotFoundError as err:
        raise ValueError(str(err)) from err
    _check_trainable(config, trainable, workdir)
    config.admm.max_iters, config.admm.tol = max_iters, tol
    op = operator(config.task)
    row = method_restorer(config, trainable, op)
    info = {"kind": "train.py workdir", "checkpoint": str(workdir), "step": step, **row.info}
    return Model(row, task, config.task, config.model.init or None, info)


# ============================================================================================
# Plug-and-play noise level
# ============================================================================================


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
    op: Operator, images: np.ndarray, noise_sigma: float, quantize: bool
) -> dict[str, Array]:
    """Measurements of ``(N, H, W, 3)`` tuning crops, as in evaluation (seeds ``0..N−1``)."""
    batch = {"hr": images, "seed": np.arange(len(images), dtype=np.uint32)}
    return data.degrade_batch(op, batch, noise_sigma, quantize)


def tune_pnp_sigma(
    params: Params,
    op: Operator,
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
        solution = restore(params, measured["y"], op, sigma=sigma, max_iters=max_iters, tol=tol)
        scores[float(sigma)] = float(jnp.mean(metrics.psnr(solution.x, measured["gt"])))
    return max(scores, key=scores.get), scores


def resolve_pnp_sigma(
    sigma: float | str | None,
    params: Params,
    task: str,
    task_cfg: ml_collections.ConfigDict,
    log: Callable[[str], None] | None = print,
) -> float:
    """A PnP noise level: ``sigma`` itself, :data:`PNP_SIGMA` (``None`` or ``"default"``), or
    with ``"tune"`` :func:`tune_pnp_sigma` on 192×192 centre crops of the training samples."""
    if sigma is None or sigma == "default":
        return PNP_SIGMA[task]
    if sigma != "tune":
        return float(sigma)
    crops = centre_crops(data.build_source("samples", "train"), 192)
    best, scores = tune_pnp_sigma(
        params,
        operator(task_cfg),
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
    sample images, degraded as in evaluation (seeds ``0..N−1``): how :data:`TIKHONOV_MU` was
    made."""
    task_cfg = task_config(task)
    op = operator(task_cfg)
    crops = centre_crops(data.build_source("samples", "train"), 192)
    measured = _degrade_crops(op, crops, task_cfg.noise_sigma, task_cfg.quantize)
    return classical.tune_mu(op, measured["y"], measured["gt"])


# ============================================================================================
# Evaluation
# ============================================================================================


@functools.partial(jax.jit, static_argnames="border")
def image_metrics(x: Array, gt: Array, border: int) -> dict[str, Array]:
    """``psnr_rgb`` (no crop), ``psnr_y`` (``border`` cropped) and ``ssim`` per image."""
    return {
        "psnr_rgb": metrics.psnr(x, gt),
        "psnr_y": metrics.psnr_y(x, gt, border),
        "ssim": metrics.ssim(x, gt),
    }


class Dataset(NamedTuple):
    """A dataset's display name and its images."""

    name: str
    source: data.ImageSource


def parse_data(spec: str, split: str | None = None) -> Dataset:
    """A dataset from ``samples``, ``photos`` (:func:`suppa_jax.data.held_out_photos`),
    ``folder:PATH`` or a bare folder path, or ``tfds:NAME``.

    ``split``: the sample split or TFDS split (default ``validation``), or a sub-folder
    (default: the folder itself).
    """
    spec = spec.strip()
    kind, colon, location = spec.partition(":")
    if spec == "samples":
        split = split or "validation"
        return Dataset(f"samples/{split}", data.build_source("samples", split))
    if spec == "photos":
        return Dataset("photos", data.held_out_photos())
    if kind == "tfds" and location:
        split = split or "validation"
        return Dataset(f"{location}[{split}]", data.build_source(spec, split))
    folder = location if kind == "folder" and colon else spec
    if not folder or not Path(folder).is_dir():
        raise ValueError(
            f"--data {spec!r}: not 'samples', 'tfds:NAME' or an existing folder ('folder:PATH')"
        )
    name = Path(folder).resolve().name + (f"/{split}" if split else "")
    return Dataset(name, data.build_source(f"folder:{folder}", split or ""))


@dataclasses.dataclass
class DatasetResult:
    """Per-image values ``rows`` (``dataset``, ``image``, ``method`` + :data:`COLUMNS`), the
    mean of each metric per method, and the mean PSNR per iteration of the iterative ones."""

    name: str
    rows: list[dict[str, Any]]
    means: dict[str, dict[str, float]]
    curves: dict[str, list[float]]
    images: int


@dataclasses.dataclass
class Report:
    """An evaluation: the task (name and scale), the row labels in order, the results per
    dataset and the settings recorded with them."""

    task: str
    scale: int
    methods: list[str]
    datasets: list[DatasetResult]
    settings: dict[str, Any]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "image"


def _image_slug(index: int, name: str) -> str:
    return f"{index:03d}_{_slug(Path(name.rpartition(':')[2]).stem)}"


def _to_uint8(x: Array | np.ndarray) -> np.ndarray:
    return np.round(np.clip(np.asarray(x, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def _save_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _measure(
    restorer: Restorer, y: Array, gt: Array, scale: int
) -> tuple[dict[str, Any], np.ndarray | None, np.ndarray]:
    """Restore one image: its metrics (:data:`COLUMNS`), PSNR curve (or ``None``) and the
    estimate as 8-bit RGB."""
    solution = restorer.restore(y, gt)
    values = jax.device_get(image_metrics(solution.x, gt, scale))
    row = {k: float(v[0]) for k, v in values.items()}
    row["iterations"] = int(np.asarray(solution.iterations).reshape(-1)[0])
    curve = None
    if restorer.iterative and solution.psnr is not None:
        curve = np.asarray(solution.psnr)[:, 0]
    row["drop"] = 0.0 if curve is None else max(0.0, float(curve[0] - np.min(curve)))
    return row, curve, _to_uint8(solution.x[0])


def _means(rows: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> dict[str, dict]:
    """Per method, over the images: the mean of every column of :data:`COLUMNS`, except
    ``drop``, the largest."""

    def summary(key: str, values: list[float]) -> float:
        return float(np.max(values) if key == "drop" else np.mean(values))

    return {
        m: {k: summary(k, [r[k] for r in rows if r["method"] == m]) for k in COLUMNS}
        for m in methods
    }


def evaluate(
    datasets: Sequence[Dataset],
    restorers: Sequence[Restorer],
    task: ml_collections.ConfigDict,
    *,
    out: Path | None = None,
    max_images: int = 0,
    grid_images: int = 4,
    log: Callable[[str], None] | None = print,
) -> list[DatasetResult]:
    """Restore every image of every dataset with every restorer and measure the results.

    With ``out``, writes ``images/<dataset>/`` (PNGs) and ``grid_<dataset>.png`` (the first
    ``grid_images`` images). ``max_images`` > 0 keeps that many images per dataset. Raises
    ``ValueError`` for a dataset without images. Each restorer compiles once per image size.
    """
    op = operator(task)
    degrade = jax.jit(
        functools.partial(
            data.degrade_batch, op, noise_sigma=task.noise_sigma, quantize=task.quantize
        )
    )
    methods = [r.label for r in restorers]
    results = []
    for dataset in datasets:
        count = len(dataset.source) if not max_images else min(len(dataset.source), max_images)
        if count == 0:
            raise ValueError(f"dataset {dataset.name!r} has no images")
        rows: list[dict[str, Any]] = []
        curves: dict[str, list[np.ndarray]] = {m: [] for m in methods}
        panels = []
        folder = None if out is None else out / "images" / _slug(dataset.name)
        images = data.eval_images(dataset.source, op.scale)
        for index in range(count):
            name, batch = next(images)
            measured = degrade(batch)
            y, gt = measured["y"], measured["gt"]
            slug = _image_slug(index, name)
            estimates, image_rows = {}, []
            for restorer in restorers:
                row, curve, estimate = _measure(restorer, y, gt, op.scale)
                image_rows.append(
                    {"dataset": dataset.name, "image": name, "method": restorer.label, **row}
                )
                if curve is not None:
                    curves[restorer.label].append(curve)
                estimates[restorer.label] = estimate
                if folder is not None:
                    _save_png(folder / f"{slug}_{restorer.slug}.png", estimate)
            rows += image_rows
            if folder is not None:
                _save_png(folder / f"{slug}_gt.png", _to_uint8(gt[0]))
                _save_png(folder / f"{slug}_y.png", _to_uint8(y[0]))
            if index < grid_images:
                panels.append((name, _to_uint8(gt[0]), _to_uint8(y[0]), estimates, image_rows))
            if log:
                summary = " | ".join(
                    f"{r['method']} {r['psnr_rgb']:.2f}"
                    + (f" ({r['iterations']} it)" if restorer.iterative else "")
                    for r, restorer in zip(image_rows, restorers, strict=True)
                )
                size = "×".join(map(str, gt.shape[1:3]))
                log(f"  {dataset.name} {index + 1}/{count} {name} {size}: {summary}")
        mean_curves = {m: np.mean(np.stack(c), axis=0).tolist() for m, c in curves.items() if c}
        results.append(DatasetResult(dataset.name, rows, _means(rows, methods), mean_curves, count))
        if out is not None and panels:
            plot_grid(out / f"grid_{_slug(dataset.name)}.png", panels, methods, op.scale)
    return results


# ============================================================================================
# Reports
# ============================================================================================


def _scale_label(scale: int) -> str:
    return f"×{scale}" if scale > 1 else ""


def format_tables(report: Report) -> str:
    """Markdown: the paper-shaped table (methods × datasets, mean RGB PSNR); per dataset, a
    table with every metric and one of the RGB PSNR of each image."""
    sr = report.scale > 1
    names = [d.name for d in report.datasets]
    head = ["Method", *(["Scale"] if sr else []), *names]
    lines = [
        f"Mean PSNR on RGB, no border crop (task {report.task}):",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for method in report.methods:
        cells = [f"{d.means[method]['psnr_rgb']:.2f} dB" for d in report.datasets]
        scale = [_scale_label(report.scale)] if sr else []
        lines.append("| " + " | ".join([method, *scale, *cells]) + " |")
    for d in report.datasets:
        lines += [
            "",
            f"{d.name} ({d.images} image{'s' * (d.images != 1)}; PSNR-Y with a "
            f"{report.scale}-pixel border, SSIM on RGB):",
            "",
            "| Method | " + " | ".join(COLUMNS.values()) + " |",
            "|---|" + "---:|" * len(COLUMNS),
        ]
        for method in report.methods:
            m = d.means[method]
            lines.append(
                f"| {method} | {m['psnr_rgb']:.2f} | {m['psnr_y']:.2f} | {m['ssim']:.4f} | "
                f"{m['iterations']:.1f} | {m['drop']:.2f} |"
            )
        lines += ["", f"{d.name}, RGB PSNR (dB) per image:", ""]
        lines += ["| image | " + " | ".join(report.methods) + " |"]
        lines += ["|---|" + "---:|" * len(report.methods)]
        psnrs = {(r["image"], r["method"]): r["psnr_rgb"] for r in d.rows}
        for image in dict.fromkeys(r["image"] for r in d.rows):
            cells = [f"{psnrs[image, m]:.2f}" for m in report.methods]
            lines.append(f"| {image} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: Report, out: Path) -> dict[str, Path]:
    """``results.md``, ``results.csv``, ``results.json`` and ``psnr_per_iteration.png``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out / "results.md",
        "csv": out / "results.csv",
        "json": out / "results.json",
        "curve": out / "psnr_per_iteration.png",
    }
    settings = "\n".join(f"- {k}: {json.dumps(v)}" for k, v in report.settings.items())
    paths["markdown"].write_text(
        f"# Evaluation: {report.task}\n\n{format_tables(report)}\nSettings:\n\n{settings}\n"
    )
    with paths["csv"].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["dataset", "image", "method", *COLUMNS])
        writer.writeheader()
        for d in report.datasets:
            writer.writerows(d.rows)
            for method in report.methods:
                writer.writerow(
                    {"dataset": d.name, "image": "(mean)", "method": method, **d.means[method]}
                )
    payload = {
        "task": report.task,
        "scale": report.scale,
        "methods": report.methods,
        "settings": report.settings,
        "datasets": [
            {
                "name": d.name,
                "images": d.images,
                "mean": {m: {k: _finite(v) for k, v in d.means[m].items()} for m in report.methods},
                "psnr_per_iteration": d.curves,
                "per_image": [
                    {k: _finite(v) if isinstance(v, float) else v for k, v in row.items()}
                    for row in d.rows
                ],
            }
            for d in report.datasets
        ],
    }
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n")
    plot_curves(paths["curve"], report)
    return paths


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # object-oriented: no pyplot, no global backend

    return Figure(figsize=(width, height), layout="constrained")


def plot_curves(path: Path, report: Report) -> None:
    """Mean PSNR per iteration of the iterative methods, one panel per dataset (Fig. 3), with
    the non-iterative baselines as horizontal lines."""
    fig = _figure(5.0 * len(report.datasets), 3.8)
    axes = fig.subplots(1, len(report.datasets), squeeze=False)[0]
    for ax, d in zip(axes, report.datasets, strict=True):
        for method in report.methods:
            if method in d.curves:
                curve = d.curves[method]
                ax.plot(
                    range(len(curve)), curve, marker="." if len(curve) < 20 else None, label=method
                )
            else:
                ax.axhline(d.means[method]["psnr_rgb"], color="gray", linestyle="--", label=method)
        ax.set(xlabel="iteration", ylabel="mean PSNR (dB)", title=f"{report.task} — {d.name}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=120)


def plot_grid(
    path: Path,
    panels: Sequence[tuple[str, np.ndarray, np.ndarray, dict[str, np.ndarray], list[dict]]],
    methods: Sequence[str],
    scale: int,
) -> None:
    """Side by side, one row per image: ground truth, the measurement (nearest-upsampled for
    super-resolution; for deblurring it is ``initial(y)``), then each method with its PSNR."""
    columns = 1 + (scale > 1) + len(methods)
    height, width = panels[0][1].shape[:2]
    panel_width = 3.2
    fig = _figure(panel_width * columns, len(panels) * panel_width * height / width + 0.4)
    axes = fig.subplots(len(panels), columns, squeeze=False)
    for row, (name, gt, y, estimates, values) in zip(axes, panels, strict=True):
        psnrs = {v["method"]: v["psnr_rgb"] for v in values}
        shown = [("ground truth\n" + Path(name.rpartition(":")[2]).name, gt)]
        if scale > 1:
            shown.append((f"y (×{scale}, nearest)", np.repeat(np.repeat(y, scale, 0), scale, 1)))
        shown += [(f"{m}\n{psnrs[m]:.2f} dB", estimates[m]) for m in methods]
        for ax, (title, image) in zip(row, shown, strict=True):
            ax.imshow(image, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
    fig.savefig(path, dpi=150)


# ============================================================================================
# Command line
# ============================================================================================


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py",
        description=(
            "Restore every image of one or more datasets with a trained model and the baselines "
            "(bicubic / initial(y), plug-and-play ADMM with the pre-trained denoiser); report "
            "PSNR (RGB, no crop), PSNR-Y (border = scale), SSIM and iterations."
        ),
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="a train.py workdir (its best checkpoint) or a DRUNet params file (.msgpack, .pth): "
        "then the model is plug-and-play ADMM with it",
    )
    parser.add_argument(
        "--task", choices=TASKS, help="the task; must be the run's (default: the run's)"
    )
    parser.add_argument(
        "--data",
        default="samples",
        help="comma-separated datasets: 'samples' (held-out sample images), 'photos' (six "
        "held-out natural colour photos from installed packages), a folder or "
        "'folder:PATH', 'tfds:NAME' (default: samples)",
    )
    parser.add_argument(
        "--split",
        help="sample or TFDS split (default: validation), or a sub-folder of a folder",
    )
    parser.add_argument(
        "--pretrained",
        help="the pre-trained denoiser of the PnP baseline (default: the run's config.model.init)",
    )
    parser.add_argument("--no_pnp", action="store_true", help="leave out the PnP baseline")
    parser.add_argument(
        "--pnp_sigma",
        default="default",
        help="the PnP denoiser noise level: a number, 'default' (tuned for the shipped small "
        "denoiser, see PNP_SIGMA) or 'tune' (grid search on the training sample images)",
    )
    parser.add_argument("--max_iters", type=int, default=50, help="iteration cap (default 50)")
    parser.add_argument("--tol", type=float, default=1e-3, help="relative-change tolerance")
    parser.add_argument(
        "--max_images", type=int, default=0, help="images per dataset (default 0: all)"
    )
    parser.add_argument("--grid_images", type=int, default=4, help="images in each grid PNG")
    parser.add_argument("--out", help="output folder (default: results/eval/<checkpoint>_<task>)")
    return parser


def _pnp_sigma(value: str) -> float | str:
    """``--pnp_sigma``: ``"default"``, ``"tune"`` or a noise level in (0, 1]."""
    if value in ("default", "tune"):
        return value
    try:
        sigma = float(value)
    except ValueError:
        raise ValueError(
            f"--pnp_sigma must be a number, 'default' or 'tune', got {value!r}"
        ) from None
    if not 0 < sigma <= 1:
        raise ValueError(
            f"--pnp_sigma must be in (0, 1] (the [0, 1] scale: 0.03, not 8), got {sigma}"
        )
    return sigma


def _same_file(a: Path | None, b: Path | None) -> bool:
    return a is not None and b is not None and a.resolve() == b.resolve()


def run(
    args: argparse.Namespace, log: Callable[[str], None] = print
) -> tuple[Report, dict[str, Path]]:
    """The evaluation of ``evaluate.py``'s parsed arguments; returns the report and its files."""
    if args.max_iters < 1 or args.tol <= 0 or args.max_images < 0 or args.grid_images < 0:
        raise ValueError("--max_iters must be >= 1, --tol > 0, --max_images and --grid_images >= 0")
    sigma = _pnp_sigma(args.pnp_sigma)
    model = load_model(
        args.checkpoint, args.task, max_iters=args.max_iters, tol=args.tol, pnp_sigma=sigma, log=log
    )
    datasets = [parse_data(spec, args.split) for spec in args.data.split(",") if spec.strip()]
    if not datasets:
        raise ValueError("--data names no dataset")
    names = [d.name for d in datasets]  # two folders both called "val": keep their files apart
    datasets = [
        Dataset(f"{d.name}-{i + 1}" if names.count(d.name) > 1 else d.name, d.source)
        for i, d in enumerate(datasets)
    ]
    op = operator(model.task_config)
    restorers = [initial_restorer(op), tikhonov_restorer(op, TIKHONOV_MU[model.task])]
    pretrained = None
    if not args.no_pnp and (args.pretrained or model.pretrained):
        what = "--pretrained" if args.pretrained else "the run's config.model.init"
        try:
            pretrained = _resolve(args.pretrained or model.pretrained, what)
        except ValueError as err:
            raise ValueError(
                f"{err} (give the PnP baseline's denoiser with --pretrained, or --no_pnp)"
            ) from err
    checkpoint_file = Path(args.checkpoint) if Path(args.checkpoint).is_file() else None
    if pretrained is not None and not _same_file(pretrained, checkpoint_file):
        params = load_denoiser(pretrained)
        restorers.append(
            pnp_restorer(
                params,
                op,
                sigma=resolve_pnp_sigma(sigma, params, model.task, model.task_config, log),
                max_iters=args.max_iters,
                tol=args.tol,
            )
        )
    restorers.append(model.restorer)
    name = f"{_slug(Path(args.checkpoint).resolve().stem)}_{model.task}"
    out = Path(args.out) if args.out else Path("results") / "eval" / name
    pnp = [dict(r.info, denoiser=str(pretrained)) for r in restorers if r.slug == "pnp"]
    settings = {
        "checkpoint": str(args.checkpoint),
        "model": dict(model.info),
        "task": {"name": model.task, **_task_fields(model.task_config)},
        "data": [d.name for d in datasets],
        "max_iters": args.max_iters,
        "tol": args.tol,
        "pnp": pnp[0] if pnp else None,
        "metrics": METRICS_NOTE,
    }
    start = time.perf_counter()
    results = evaluate(
        datasets,
        restorers,
        model.task_config,
        out=out,
        max_images=args.max_images,
        grid_images=args.grid_images,
        log=log,
    )
    settings["seconds"] = round(time.perf_counter() - start, 1)
    report = Report(model.task, op.scale, [r.label for r in restorers], results, settings)
    return report, write_report(report, out)


def main(argv: Sequence[str] | None = None) -> int:
    """``evaluate.py``: returns 0, or exits with status 2 and a one-line error."""
    parser = _parser()
    args = parser.parse_args(argv)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns about optional metadata files
    try:
        report, paths = run(args)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(format_tables(report))
    names = ", ".join(p.name for p in paths.values())
    print(f"Wrote {names}, the restored images and the grids to {paths['json'].parent}/")
    return 0
