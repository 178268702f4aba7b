"""The one evaluation loop: degrade each image, restore it with every row, measure.

:class:`Evaluator` serves both validation during training (:mod:`suppa_jax.training.loop`) and
``evaluate.py`` (:func:`evaluate`, which also writes images and grids).

* **Images**: each full image of the dataset, cropped at the top left to a multiple of the
  scale (:func:`suppa_jax.data.eval_images`; images are never resized), degraded as in training
  (the task's operator, or one drawn from its family, noise and 8-bit quantisation, with the
  image's index as seed). Any size
  works; every distinct size compiles each restorer once.
* **Metrics** (:mod:`suppa_jax.metrics`), on the float estimates as computed (not clipped, not
  quantised, as the per-iteration curves): PSNR on RGB without border crop (the paper's
  protocol), PSNR of the BT.601 luma with a border of ``scale`` pixels (the SR literature's),
  SSIM (``dm_pix``, RGB), the iterations, and the *drop*: how far the PSNR falls below the
  starting estimate's at the worst iteration (0 if never). Means over the images of a dataset
  (the drop: the largest).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np

from suppa_jax import build, data, metrics
from suppa_jax.evaluation.report import COLUMNS, plot_grid, save_png, slug, to_uint8
from suppa_jax.evaluation.restorers import Restorer
from suppa_jax.physics import LinearOperator, measure
from suppa_jax.typing import Array, ExampleBatch

__all__ = [
    "Dataset",
    "DatasetResult",
    "Evaluator",
    "ImageResult",
    "evaluate",
    "image_metrics",
    "parse_data",
]


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


def parse_data(spec: str, split: str | None = None, *, skip_bad_images: bool = False) -> Dataset:
    """A dataset from ``samples``, ``photos`` (:func:`suppa_jax.data.held_out_photos`),
    ``folder:PATH`` or a bare folder path, or ``tfds:NAME``.

    ``split``: the sample split or TFDS split (default ``validation``), or a sub-folder
    (default: the folder itself). ``skip_bad_images``: leave out (and log) a folder's
    unreadable images instead of raising.
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
    source = data.build_source(f"folder:{folder}", split or "", skip_bad_images=skip_bad_images)
    return Dataset(name, source)


@dataclasses.dataclass
class DatasetResult:
    """Per-image values ``rows`` (``dataset``, ``image``, ``method`` + :data:`COLUMNS`), the
    mean of each metric per method, and the mean PSNR per iteration of the iterative ones."""

    name: str
    rows: list[dict[str, Any]]
    means: dict[str, dict[str, float]]
    curves: dict[str, list[float]]
    images: int


class ImageResult(NamedTuple):
    """One image restored by every row: its name, measurement and ground truth (``(1, …)``),
    and per row (by label) its metrics (:data:`COLUMNS`), PSNR curve (``None`` for one-shot
    rows) and estimate."""

    name: str
    y: Array
    gt: Array
    rows: dict[str, dict[str, float]]
    curves: dict[str, np.ndarray | None]
    estimates: dict[str, Array]


def _measure(
    restorer: Restorer, y: Array, gt: Array, op: LinearOperator, scale: int
) -> tuple[dict, np.ndarray | None, Array]:
    """Restore one image: its metrics, PSNR curve (or ``None``) and the estimate."""
    solution = restorer.restore(y, gt, op)
    values = jax.device_get(image_metrics(solution.x, gt, scale))
    row = {k: float(v[0]) for k, v in values.items()}
    row["iterations"] = int(np.asarray(solution.iterations).reshape(-1)[0])
    curve = None
    if restorer.iterative and solution.psnr is not None:
        curve = np.asarray(solution.psnr)[:, 0]
    row["drop"] = 0.0 if curve is None else max(0.0, float(curve[0] - np.min(curve)))
    return row, curve, solution.x


class Evaluator:
    """Degrades images as a task does and measures restorations of them.

    Built once per task (its degradation is compiled once); :meth:`images` can then be called
    with any restorers, e.g. at every validation with the current trainables.
    """

    def __init__(self, task: ml_collections.ConfigDict) -> None:
        self.task = task
        self.physics = build.build_physics(task)
        self._degrade = jax.jit(
            functools.partial(
                measure, self.physics, noise_sigma=task.noise_sigma, quantize=task.quantize
            )
        )

    def images(
        self, images: Iterator[tuple[str, ExampleBatch]], restorers: Sequence[Restorer]
    ) -> Iterator[ImageResult]:
        """Each ``(name, {"hr", "seed"})`` of ``images`` degraded (its own operator drawn from
        its seed when the task draws one per image) and restored by every row."""
        for name, batch in images:
            measured = self._degrade(batch)
            y, gt, op = measured["y"], measured["gt"], measured["op"]
            rows, curves, estimates = {}, {}, {}
            for restorer in restorers:
                row, curve, estimate = _measure(restorer, y, gt, op, self.physics.scale)
                rows[restorer.label], curves[restorer.label] = row, curve
                estimates[restorer.label] = estimate
            yield ImageResult(name, y, gt, rows, curves, estimates)

    def mean(
        self, images: Sequence[tuple[str, ExampleBatch]], restorer: Restorer
    ) -> dict[str, float]:
        """The mean of every metric of one row over ``images`` (validation during training)."""
        results = [r.rows[restorer.label] for r in self.images(iter(images), [restorer])]
        return _means([{"method": restorer.label, **r} for r in results], [restorer.label])[
            restorer.label
        ]


def _means(rows: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> dict[str, dict]:
    """Per method, over the images: the mean of every column of :data:`COLUMNS`, except
    ``drop``, the largest."""

    def summary(key: str, values: list[float]) -> float:
        return float(np.max(values) if key == "drop" else np.mean(values))

    return {
        m: {k: summary(k, [r[k] for r in rows if r["method"] == m]) for k in COLUMNS}
        for m in methods
    }


def _image_slug(index: int, name: str) -> str:
    return f"{index:03d}_{slug(Path(name.rpartition(':')[2]).stem)}"


def evaluate(
    datasets: Sequence[Dataset],
    restorers: Sequence[Restorer],
    task: ml_collections.ConfigDict,
    *,
    out: Path | None = None,
    max_images: int = 0,
    grid_images: int = 4,
    channels: int = 3,
    log: Callable[[str], None] | None = print,
) -> list[DatasetResult]:
    """Restore every image of every dataset with every restorer and measure the results.

    With ``out``, writes ``images/<dataset>/`` (ground truth, measurement and every restoration
    as 8-bit PNGs, clipped to [0, 1]) and ``grid_<dataset>.png`` (the first ``grid_images``
    images). ``max_images`` > 0 keeps that many images per dataset. Raises ``ValueError`` for a
    dataset without images. Each restorer compiles once per image size.
    """
    evaluator = Evaluator(task)
    scale = evaluator.physics.scale
    methods = [r.label for r in restorers]
    results = []
    for dataset in datasets:
        count = len(dataset.source) if not max_images else min(len(dataset.source), max_images)
        if count == 0:
            raise ValueError(f"dataset {dataset.name!r} has no images")
        rows: list[dict[str, Any]] = []
        curves: dict[str, list[np.ndarray]] = {m: [] for m in methods}
        panels = []
        folder = None if out is None else out / "images" / slug(dataset.name)
        images = data.eval_images(dataset.source, scale, channels)
        for index, result in enumerate(evaluator.images(islice(images, count), restorers)):
            image_rows = [
                {"dataset": dataset.name, "image": result.name, "method": m, **result.rows[m]}
                for m in methods
            ]
            rows += image_rows
            estimates = {m: to_uint8(result.estimates[m][0]) for m in methods}
            for m in methods:
                if result.curves[m] is not None:
                    curves[m].append(result.curves[m])
            gt, y = to_uint8(result.gt[0]), to_uint8(result.y[0])
            if folder is not None:
                file = _image_slug(index, result.name)
                for restorer in restorers:
                    save_png(folder / f"{file}_{restorer.slug}.png", estimates[restorer.label])
                save_png(folder / f"{file}_gt.png", gt)
                save_png(folder / f"{file}_y.png", y)
            if index < grid_images:
                panels.append((result.name, gt, y, estimates, image_rows))
            if log:
                summary = " | ".join(
                    f"{r['method']} {r['psnr_rgb']:.2f}"
                    + (f" ({r['iterations']} it)" if restorer.iterative else "")
                    for r, restorer in zip(image_rows, restorers, strict=True)
                )
                size = "×".join(map(str, result.gt.shape[1:3]))
                log(f"  {dataset.name} {index + 1}/{count} {result.name} {size}: {summary}")
        mean_curves = {m: np.mean(np.stack(c), axis=0).tolist() for m, c in curves.items() if c}
        results.append(DatasetResult(dataset.name, rows, _means(rows, methods), mean_curves, count))
        if out is not None and panels:
            plot_grid(out / f"grid_{slug(dataset.name)}.png", panels, methods, scale)
    return results
