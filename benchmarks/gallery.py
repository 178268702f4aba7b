"""The README's gallery: crops of held-out photos restored by every row, side by side.

    python -m benchmarks.gallery [--out benchmarks/results/cpu] [--size 160]

For SR ×2 and deblurring, a ``size × size`` centre crop of each held-out photo
(:func:`suppa_jax.data.held_out_photos`; nothing is tuned on them) is degraded as in evaluation
and restored by the starting estimate, Tikhonov, plug-and-play with the shipped prior (at the σ
stored with it) and the shipped SUPPA model (``weights/suppa_<task>``). Writes
``gallery_<task>.jpg`` (ground truth, measurement, each row with its PSNR on that crop) and
``gallery.md`` (the per-crop PSNR table). Crops, not whole photos: the whole-photo figures are
``evaluate.py``'s (README, "Evaluation and demo").
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import environment, table, write_results
from suppa_jax import build, data, evaluation, paths
from suppa_jax.xla import use_fast_xla_cpu_flags

TASKS = {"sr2": "weights/suppa_sr2", "deblur": "weights/suppa_deblur"}
PRIOR = "weights/drunet_cpu_denoiser.msgpack"


def centre_crops(size: int) -> data.ArraySource:
    photos = data.held_out_photos()
    crops, names = [], []
    for index in range(len(photos)):
        image = photos[index]
        top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
        crops.append(image[top : top + size, left : left + size])
        names.append(photos.name(index))
    return data.ArraySource(crops, names)


def gallery(task: str, crops: data.ArraySource, out: Path) -> evaluation.DatasetResult:
    model = evaluation.load_model(str(paths.ROOT / TASKS[task]), task, log=None)
    op = build.build_operator(model.task_config)
    prior = evaluation.load_prior(PRIOR)
    restorers = [
        evaluation.initial_restorer(op),
        evaluation.tikhonov_restorer(evaluation.resolve_tikhonov_mu(model.task_config)),
        evaluation.pnp_restorer(prior.denoiser, op, sigma=prior.pnp_sigma[task]),
        evaluation.dpir_restorer(prior.denoiser, op, noise_sigma=model.task_config.noise_sigma),
        model.restorer,
    ]
    with tempfile.TemporaryDirectory() as scratch:
        (result,) = evaluation.evaluate(
            [evaluation.Dataset("gallery", crops)],
            restorers,
            model.task_config,
            out=Path(scratch),
            grid_images=len(crops),
            log=None,
        )
        with Image.open(Path(scratch) / "grid_gallery.png") as grid:  # half size for the README
            grid.convert("RGB").reduce(2).save(out / f"gallery_{task}.jpg", quality=90)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=paths.ROOT / "benchmarks/results/cpu")
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    crops = centre_crops(args.size)
    sections, record = [], {"environment": environment(), "size": args.size, "tasks": {}}
    for task in TASKS:
        result = gallery(task, crops, args.out)
        methods = list(result.means)
        by_image: dict[str, dict[str, float]] = {}
        for row in result.rows:
            by_image.setdefault(row["image"], {})[row["method"]] = row["psnr_rgb"]
        rows = [[name, *(f"{v[m]:.2f}" for m in methods)] for name, v in by_image.items()]
        means = [np.mean([v[m] for v in by_image.values()]) for m in methods]
        rows.append(["**mean**", *(f"{m:.2f}" for m in means)])
        sections.append(
            f"### {task}, {args.size}² centre crops\n\n" + table(["crop", *methods], rows)
        )
        record["tasks"][task] = by_image
        print(sections[-1], "\n")
    write_results(args.out, "gallery", "\n\n".join(sections) + "\n", record)


if __name__ == "__main__":
    use_fast_xla_cpu_flags()
    main()
