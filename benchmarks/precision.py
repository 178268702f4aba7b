"""bfloat16 mixed precision (``config.model.compute_dtype``) against float32: PSNR and speed.

**PSNR.** Plug-and-play ADMM with a trained DRUNet (by default the shipped small denoiser) on
``crop × crop`` centre crops of the held-out sample images, for SR ×2 and Gaussian deblurring
with the tasks' measurement noise and 8-bit quantisation, the evaluation protocol's stopping
rule (cap 50, tolerance 1e-3) and the PnP level stored with the weights for each task.
The same measurements are restored with the network in float32 and in bfloat16
(:func:`suppa_jax.models.with_compute_dtype`: weights and activations in bfloat16, the FFT
data step, ADMM variables and PSNR in float32). Reported: mean PSNR of each and the largest
per-image |ΔPSNR|. The option is kept only where that stays within 0.05 dB.

**Speed.** A DRUNet (paper size by default, random weights) on a batch of HR patches: forward,
forward+backward of an MSE loss, and one SUPPA training step (:func:`suppa_jax.training.update`
jitted with the state donated, K forward iterations), medians over repeats after a warm-up, in
each precision. bfloat16 pays off on tensor-core GPUs and TPUs; on a CPU without bfloat16
matrix units it is slower (run it there only to check that the code works).

Outputs, in ``--out`` (default ``results/precision``): ``precision.md`` (printed too) and
``precision.json``. Reproduce::

    python -m benchmarks.precision                       # on a GPU: about 2 minutes
    python -m benchmarks.precision --size small --crop 64 --repeats 2 --k 2   # CPU smoke run
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from suppa_jax import build, config, data, evaluation, methods, metrics, models, physics, training
from suppa_jax.models import weights as weight_files
from suppa_jax.solvers import admm

DTYPES = tuple(models.COMPUTE_DTYPES)
TASKS = ("sr2", "deblur")
SIZES = {
    "paper": {"widths": (64, 128, 256, 512), "num_blocks": 4},
    "small": {"widths": (16, 32, 64, 128), "num_blocks": 1},
}
TOLERANCE_DB = 0.05


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def restoration_psnr(weights: Path, crop: int, seed: int = 0) -> list[dict[str, Any]]:
    """Per task: PSNR of PnP-ADMM with the network in each compute dtype, same measurements."""
    prior = weight_files.load_prior(weights)
    gt = jnp.asarray(evaluation.centre_crops(data.sample_images("validation"), crop))
    solve = jax.jit(admm.solve, static_argnames=("max_iters", "trace"))
    rows = []
    for task in TASKS:
        task_config = evaluation.task_config(task)
        op = build.build_operator(task_config).prepare(gt.shape[1:3])
        keys = jax.random.split(jax.random.key(seed), gt.shape[0])
        noise, quantize = task_config.noise_sigma, task_config.quantize
        y = jax.vmap(lambda x, k: physics.degrade(op, x, k, noise, quantize))(gt, keys)  # noqa: B023
        psnr = {}
        for dtype in DTYPES:
            apply = models.with_compute_dtype(models.FlaxApply(prior.model), dtype)
            denoise = models.Denoiser(apply, prior.params)
            solution = solve(
                denoise,
                op,
                y,
                rho=admm.reference_rho(op),
                sigma=prior.pnp_sigma[task],
                max_iters=50,
                tol=1e-3,
            )
            psnr[dtype] = np.asarray(jax.vmap(metrics.psnr)(solution.x, gt))
        delta = np.abs(psnr["bfloat16"] - psnr["float32"])
        rows.append(
            {
                "task": task,
                "images": int(gt.shape[0]),
                "mean_psnr": {k: float(v.mean()) for k, v in psnr.items()},
                "per_image_psnr": {k: v.tolist() for k, v in psnr.items()},
                "max_abs_delta_db": float(delta.max()),
            }
        )
    return rows


def step_times(size: str, batch: int, patch: int, k: int, repeats: int) -> dict[str, Any]:
    """Median seconds of forward, forward+backward and one SUPPA step in each compute dtype."""
    model = models.DRUNet(**SIZES[size])
    x = jax.random.uniform(jax.random.key(1), (batch, patch, patch, 3))
    params = jax.jit(model.init)(jax.random.key(0), x[:1], 0.1)["params"]
    op = build.build_operator(evaluation.task_config("sr2")).prepare((patch, patch))
    y = physics.degrade(op, x, jax.random.key(2), 0.0, quantize=True)
    batch_data = {"y": y, "gt": x}
    optimizer = training.make_optimizer(lr=1e-4, scalar_lr=0.1)
    times: dict[str, dict[str, float]] = {}
    for dtype in DTYPES:
        apply = models.with_compute_dtype(models.FlaxApply(model), dtype)
        forward = jax.jit(lambda p, x: apply(p, x, 0.1))  # noqa: B023
        grad = jax.jit(jax.grad(lambda p, x: jnp.mean((apply(p, x, 0.1) - x) ** 2)))  # noqa: B023
        method = methods.suppa(apply, op, rho=admm.reference_rho(op), max_iters=k, tol=0.0)
        step = jax.jit(functools.partial(training.update, method, optimizer), donate_argnums=0)
        holder = {"state": training.init_state(method, optimizer, jax.tree.map(jnp.copy, params))}

        def suppa_step() -> Any:
            holder["state"], out = step(holder["state"], batch_data, jax.random.key(0))  # noqa: B023
            return out

        times[dtype] = {
            "forward": _median_seconds(lambda: forward(params, x), repeats),  # noqa: B023
            "forward+backward": _median_seconds(lambda: grad(params, x), repeats),  # noqa: B023
            f"suppa step K={k}": _median_seconds(suppa_step, repeats),
        }
    return {"size": size, "batch": batch, "patch": patch, "k": k, "seconds": times}


def report(record: dict[str, Any]) -> str:
    device = record["device"]
    lines = [
        f"bfloat16 vs float32 network arithmetic on {device} (jax {record['jax_version']}).",
        "",
        f"PnP-ADMM restorations with `{record['weights']}` on {record['crop']}² centre crops "
        "of the held-out sample images (cap 50, tol 1e-3):",
        "",
        "| task | images | PSNR float32 | PSNR bfloat16 | max per-image ΔPSNR |",
        "|---|---|---|---|---|",
    ]
    for row in record["psnr"]:
        mean = row["mean_psnr"]
        lines.append(
            f"| {row['task']} | {row['images']} | {mean['float32']:.3f} | "
            f"{mean['bfloat16']:.3f} | {row['max_abs_delta_db']:.3f} dB |"
        )
    speed = record["speed"]
    lines += [
        "",
        f"Speed, DRUNet {speed['size']} size, batch {speed['batch']}, {speed['patch']}² patches "
        "(median ms):",
        "",
        "| benchmark | float32 | bfloat16 | speed-up |",
        "|---|---|---|---|",
    ]
    for name, f32 in speed["seconds"]["float32"].items():
        bf16 = speed["seconds"]["bfloat16"][name]
        lines.append(f"| {name} | {1e3 * f32:.1f} | {1e3 * bf16:.1f} | {f32 / bf16:.2f}× |")
    within = all(r["max_abs_delta_db"] <= TOLERANCE_DB for r in record["psnr"])
    lines += ["", f"Within {TOLERANCE_DB} dB on every image: {'yes' if within else 'NO'}."]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=Path(config.CPU_DENOISER))
    p.add_argument("--crop", type=int, default=256, help="side of the held-out centre crops")
    p.add_argument("--size", choices=tuple(SIZES), default="paper", help="DRUNet for speed")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=96, help="HR patch side for speed")
    p.add_argument("--k", type=int, default=20, help="SUPPA forward iterations")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path("results/precision"))
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    record = {
        "device": jax.devices()[0].device_kind,
        "jax_version": jax.__version__,
        "weights": str(args.weights),
        "crop": args.crop,
        "psnr": restoration_psnr(args.weights, args.crop),
        "speed": step_times(args.size, args.batch, args.patch, args.k, args.repeats),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = report(record)
    common.write_results(args.out, "precision", text, record)
    print(text)
    return record


if __name__ == "__main__":
    main()
