"""Input-pipeline throughput: patches per second per CPU core, cold and warm decoded-image cache.

What is measured: the training input pipeline exactly as ``train.py`` builds it
(:func:`suppa_jax.data.build_source` on a folder, then :func:`suppa_jax.data.build_train_dataset`)
on DIV2K-sized PNGs (2040×1356, smooth random colour images written by the benchmark, or your
own with ``--folder``), at the paper's settings for SR ×2 (batch 16, 48² LR → 96² HR patches) and
deblurring (batch 16, 256² patches), read as the paper's epoch (one patch per image):

* ``no cache``: every patch decodes its whole PNG (``config.data.cache_dir = ""``);
* ``cold``: a fresh cache directory (:mod:`suppa_jax.data.cache`): the source's construction
  decodes every image once and stores it, then the batches are memory-mapped crops;
* ``warm``: a new source on the filled cache (a later run, or a resumed one).

Each row times the source's construction (with a cold cache: every image decoded and stored),
the first batch (start-up), then ``--batches`` more batches: the steady state, in wall-clock
patches per second and per CPU-second of the process (all its threads:
``time.process_time``), which is the throughput of one core (not reported with ``--workers``:
the workers' CPU time is their own). The last column is how many such
cores feed the measured H200 SUPPA step (``benchmarks/results/h200/step_time.json``: paper size,
batch 16, K = 6).

Reproduce (about 3 minutes on 2 CPU cores, most of it writing the PNGs)::

    python -m benchmarks.pipeline --out benchmarks/results/cpu/pipeline
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks import common
from suppa_jax import config as config_lib
from suppa_jax import data

ROOT = Path(__file__).resolve().parents[1]
H200_STEPS = ROOT / "benchmarks" / "results" / "h200" / "step_time.json"
DIV2K_SIZE = (1356, 2040)


def write_images(
    folder: Path, count: int, size: tuple[int, int] = DIV2K_SIZE, seed: int = 0
) -> list[Path]:
    """``count`` PNGs of ``size`` (height, width): smooth random colour fields with a little
    noise (PNG compresses them about as well as photographs, so decoding costs what it costs
    on DIV2K)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    height, width = size
    for i in range(count):
        coarse = rng.uniform(0, 255, (height // 24 + 1, width // 24 + 1, 3)).astype(np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        noisy = np.asarray(image, np.int16) + rng.integers(-6, 7, (height, width, 3))
        path = folder / f"{i:04d}.png"
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, compress_level=6)
        paths.append(path)
    return paths


def h200_step_ms() -> float | None:
    """The H200 SUPPA step's median (ms), from the committed step-time benchmark."""
    if not H200_STEPS.is_file():
        return None
    record = json.loads(H200_STEPS.read_text())
    for row in record.get("results", []):
        if row.get("method") == "suppa":
            return float(row["median_seconds"]) * 1000
    return None


def measure(
    folder: Path, setting: dict[str, int], batches: int, cache_dir: Path | None, workers: int
) -> dict[str, Any]:
    """Build the source (timed: with a cold cache it decodes and stores every image) and the
    pipeline, read a first batch (timed: start-up), then ``batches`` more: the steady state's
    wall and CPU time."""
    start = time.perf_counter()
    patch_side = setting["patch"] * setting["scale"]
    source = data.build_source(f"folder:{folder}", "", min_size=patch_side, cache_dir=cache_dir)
    built = time.perf_counter() - start
    dataset = data.build_train_dataset(
        source,
        batch_size=setting["batch"],
        patch=setting["patch"],
        scale=setting["scale"],
        worker_count=workers,
    )
    iterator = iter(dataset)
    start = time.perf_counter()
    next(iterator)
    first = time.perf_counter() - start
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        batch = next(iterator)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    iterator.close()  # its prefetch threads would otherwise go on reading during the next row
    assert batch["hr"].shape[1] == patch_side
    patches = batches * setting["batch"]
    return {
        "patches": patches,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "construction_seconds": round(built, 3),
        "first_batch_seconds": round(first, 3),
        "patches_per_second": patches / wall,
        # The CPU time of worker processes is not this process's: per core only without them.
        "patches_per_cpu_second": patches / cpu if workers == 0 else None,
    }


def settings() -> dict[str, dict[str, int]]:
    """The paper configs' batch, patch and scale (``suppa_jax.config.experiment``)."""
    chosen = {}
    for name, config in (
        ("sr2", config_lib.experiment("sr", scale=2)),
        ("deblur", config_lib.experiment("deblur")),
    ):
        chosen[name] = {
            "batch": config.train.batch_size,
            "patch": config.data.patch,
            "scale": config.task.scale,
        }
    return chosen


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch) / "images"
        if args.folder is None:
            start = time.perf_counter()
            write_images(folder, args.images, args.size)
            print(f"wrote {args.images} PNGs in {time.perf_counter() - start:.0f} s")
        count = len(list(Path(folder).glob("*.png")))
        step_ms = h200_step_ms()
        rows = []
        # No cache last: its decoding threads would disturb the rows measured after it.
        for variant in ("cold", "warm", "no cache"):
            for name, setting in settings().items():
                cache_dir = None if variant == "no cache" else Path(scratch) / f"cache_{name}"
                batches = args.uncached_batches if cache_dir is None else args.batches
                result = measure(Path(folder), setting, batches, cache_dir, args.workers)
                if step_ms and result["patches_per_cpu_second"]:
                    demand = setting["batch"] / (step_ms / 1000)
                    result["cores_for_h200"] = demand / result["patches_per_cpu_second"]
                rows.append({"setting": name, **setting, "cache": variant, **result})
                print(f"  {name} {variant:>8}: {result['patches_per_second']:8.1f} patches/s")
    return {
        "benchmark": "pipeline",
        "images": count,
        "image_size": list(args.size),
        "workers": args.workers,
        "h200_suppa_step_ms": step_ms,
        "environment": common.environment(),
        "results": sorted(rows, key=lambda row: row["setting"] != "sr2"),
    }


def markdown(record: dict[str, Any]) -> str:
    header = [
        "setting",
        "cache",
        "batches × batch",
        "patches/s",
        "patches per CPU-second",
        "construction (s)",
        "first batch (s)",
        "cores to feed the H200 step",
    ]
    rows = [
        [
            f"{r['setting']} (patch {r['patch'] * r['scale']}²)",
            r["cache"],
            f"{r['patches'] // r['batch']} × {r['batch']}",
            f"{r['patches_per_second']:.1f}",
            f"{r['patches_per_cpu_second']:.1f}" if r["patches_per_cpu_second"] else "—",
            f"{r['construction_seconds']:.1f}",
            f"{r['first_batch_seconds']:.2f}",
            f"{r['cores_for_h200']:.2f}" if "cores_for_h200" in r else "—",
        ]
        for r in record["results"]
    ]
    step = record["h200_suppa_step_ms"]
    demand = f"{16 / (step / 1000):.0f} patches/s" if step else "unknown"
    return (
        f"Input pipeline on {record['images']} PNGs of {record['image_size'][1]}×"
        f"{record['image_size'][0]}, grain workers {record['workers']}, "
        f"{record['environment'].get('cpu_count', '?')} CPU cores. The H200 SUPPA step "
        f"({step:.1f} ms, batch 16) consumes {demand}.\n\n" + common.table(header, rows)
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__)
    p.add_argument("--folder", type=Path, help="your own PNGs instead of generated ones")
    p.add_argument("--images", type=int, default=24, help="PNGs to generate")
    p.add_argument(
        "--size",
        type=lambda text: tuple(int(v) for v in text.split(",")),
        default=DIV2K_SIZE,
        help="height,width of the generated PNGs (default: DIV2K's 1356,2040)",
    )
    p.add_argument("--batches", type=int, default=100, help="batches per cached row")
    p.add_argument("--uncached-batches", type=int, default=3, help="batches without a cache")
    p.add_argument("--workers", type=int, default=0, help="grain worker processes")
    p.add_argument("--out", type=Path, default=Path("results/pipeline"))
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    record = run(args)
    table = markdown(record)
    print(table)
    common.write_results(args.out, "pipeline", table, record)
    return record


if __name__ == "__main__":
    main()
