"""Reports of an evaluation: Markdown tables, CSV and JSON files, figures, PNGs.

:func:`write_report` writes ``results.md`` (a table shaped like the paper's Tables I–II, and one
table per dataset with every metric and one with the PSNR of each image), ``results.csv`` and
``results.json`` (per-image values too) and ``psnr_per_iteration.png`` (mean PSNR per
iteration, the paper's Fig. 3). :func:`suppa_jax.evaluation.evaluate` adds ``images/<dataset>/``
and ``grid_<dataset>.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from suppa_jax.typing import Array

if TYPE_CHECKING:
    from suppa_jax.evaluation.evaluator import DatasetResult

__all__ = [
    "COLUMNS",
    "METRICS_NOTE",
    "Report",
    "format_tables",
    "plot_curves",
    "plot_grid",
    "save_png",
    "slug",
    "to_uint8",
    "write_report",
]

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


@dataclasses.dataclass
class Report:
    """An evaluation: the task (name and scale), the row labels in order, the results per
    dataset and the settings recorded with them."""

    task: str
    scale: int
    methods: list[str]
    datasets: list[DatasetResult]
    settings: dict[str, Any]


def slug(text: str) -> str:
    """``text`` as a file-name component."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "image"


def to_uint8(x: Array | np.ndarray) -> np.ndarray:
    """An image in [0, 1] clipped and rounded to 8 bits."""
    return np.round(np.clip(np.asarray(x, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def save_png(path: Path, image: np.ndarray) -> None:
    """Write an 8-bit image ``(H, W, 1 | 3)``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


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
            gray = image.shape[-1] == 1
            ax.imshow(
                image[..., 0] if gray else image,
                cmap="gray",
                vmin=0,
                vmax=255,
                interpolation="nearest",
            )
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
    fig.savefig(path, dpi=150)
