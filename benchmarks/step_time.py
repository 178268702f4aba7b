"""Wall time of one training step per method: what constant memory costs in time.

What is measured: for each training method, the full training step
(:func:`suppa_jax.training.update`: loss, gradient, Adam update) is jitted and called once to
compile and warm up (not timed), then ``--repeats`` more times on the *same* state, batch and
key, so every repeat does the same work; each call is timed to ``jax.block_until_ready``.
Reported: the median, the interquartile range and the minimum (the least disturbed by other
processes on a shared machine), the first call's time (compilation included), and the
forward iterations the step ran (mean over the batch).

Default setting (small enough for a laptop CPU): SR×2, a randomly initialised DRUNet with
widths 16-32-64-128 and 1 block per stage, batch 4, 48×48 HR patches cut from scikit-image's
sample photographs and degraded with the task's operator. ``unrolled`` and
``unrolled_remat`` run 6 iterations (the paper's K); ``suppa``, ``jfb`` and ``deq`` iterate
to the tolerance 1e-3 with a cap of 50 iterations (``deq``'s adjoint loop too), as in
training. With random weights the forward loop may well run to the cap: the "forward
iterations" column says how many it did, and ``--tol 0 --max-iters 6`` compares the methods
at the same K instead.

Outputs, in ``--out`` (default ``results/step_time``): ``step_time.md`` (the table, also
printed) and ``step_time.json`` (every sample time, the settings, the device and versions).

Caveat on CPU: XLA:CPU runs convolution gradients several times (up to 10×) slower inside a
loop than outside one: there they keep non-canonical dimension orders, which it runs with slow
generic code (jax-ml/jax#12868). That inflates the rows whose backward pass is a loop:
``unrolled`` and ``unrolled_remat`` (a rolled ``lax.scan``) and ``deq`` (the adjoint
``while_loop``), not ``suppa`` or ``jfb`` (their differentiable steps are outside the loop).
Compare methods on the accelerator you train on.

Reproduce (about 3 minutes on 2 CPU cores; the same K for all: ``--tol 0 --max-iters 6``)::

    python -m benchmarks.step_time
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from benchmarks import common, memory
from suppa_jax import methods, training
from suppa_jax.solvers import admm

UNROLLED = ("unrolled", "unrolled_remat")
CPU_NOTE = (
    "On CPU, convolution gradients inside a loop run several times slower than outside one "
    "(XLA:CPU, jax-ml/jax#12868): this inflates `unrolled`, `unrolled_remat` and `deq`, whose "
    "backward pass is a loop. Compare methods on the accelerator you train on."
)


@dataclasses.dataclass(frozen=True)
class Iterations:
    """How many iterations each method runs: unrolled's K, the fixed-point loops' cap and tol."""

    unrolled_iters: int = 6
    max_iters: int = 50
    tol: float = 1e-3

    def settings(self, name: str, op: Any) -> dict[str, Any]:
        """Keyword settings of :func:`suppa_jax.methods.make` for method ``name``."""
        if name in UNROLLED:
            return {"rho": admm.reference_rho(op), "iters": self.unrolled_iters}
        extra = {"tol": self.tol}
        if name == "deq":
            extra["backward_tol"] = self.tol
        return memory.method_settings(name, self.max_iters, op, **extra)

    def label(self, name: str) -> str:
        if name in UNROLLED:
            return f"{self.unrolled_iters}"
        return f"≤{self.max_iters}, tol {self.tol:g}"


# ---------------------------------------------------------------------------------- inputs


def sample_patches(setup: memory.Setup, seed: int) -> np.ndarray:
    """``(batch, patch, patch, 3)`` random crops of scikit-image's colour sample photographs."""
    from skimage import data

    images = [data.astronaut(), data.chelsea(), data.coffee()]
    largest = min(min(image.shape[:2]) for image in images)
    if setup.patch > largest:
        raise ValueError(f"--patch {setup.patch}: the sample photographs allow at most {largest}")
    rng = np.random.default_rng(seed)
    patches = []
    for i in range(setup.batch):
        image = images[i % len(images)]
        top = rng.integers(0, image.shape[0] - setup.patch + 1)
        left = rng.integers(0, image.shape[1] - setup.patch + 1)
        patches.append(image[top : top + setup.patch, left : left + setup.patch, :3])
    return np.stack(patches).astype(np.float32) / 255.0


def make_batch(setup: memory.Setup, seed: int) -> dict[str, jax.Array]:
    """Sample-photo patches measured as in training, at the task's noise level
    (:meth:`benchmarks.memory.Setup.training_batch`)."""
    return setup.training_batch(sample_patches(setup, seed), seed)


# ---------------------------------------------------------------------------------- timing


def time_method(
    setup: memory.Setup,
    name: str,
    iterations: Iterations,
    params: Any,
    batch: dict[str, jax.Array],
    repeats: int,
) -> dict[str, Any]:
    """Warm up (compile) one method's step, then time ``repeats`` identical calls."""
    model, op = setup.model, setup.operator
    apply = lambda p, x, s: model.apply({"params": p}, x, s)  # noqa: E731
    settings = iterations.settings(name, op)
    method = methods.make(memory.method_of(name), apply, op, **settings)
    optimizer = memory.make_optimizer()
    state = training.init_state(method, optimizer, params)
    step = jax.jit(functools.partial(training.update, method, optimizer))
    key = jax.random.key(0)

    start = time.perf_counter()
    _, metrics = jax.block_until_ready(step(state, batch, key))
    first = time.perf_counter() - start
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(step(state, batch, key))
        samples.append(time.perf_counter() - start)
    q25, median, q75 = np.percentile(samples, [25, 50, 75])
    return {
        "method": name,
        "k": iterations.label(name),
        "settings": settings,
        "forward_iterations": float(metrics["iterations"]),
        "loss": float(metrics["loss"]),
        "median_seconds": float(median),
        "q25_seconds": float(q25),
        "q75_seconds": float(q75),
        "min_seconds": float(np.min(samples)),
        "first_call_seconds": first,
        "samples_seconds": samples,
    }


# ---------------------------------------------------------------------------------- reporting


def _ms(seconds: float) -> str:
    """Milliseconds to three significant digits (whole ms from 100 ms up)."""
    ms = 1e3 * seconds
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per method; times in ms; the last column relative to ``unrolled`` when run."""
    base = next((r["median_seconds"] for r in results if r["method"] == "unrolled"), None)
    header = ["method", "K", "forward iterations", "median step (ms)", "IQR (ms)", "min (ms)"]
    header += ["× unrolled"] if base else []
    header += ["first call (s)"]
    rows = []
    for r in results:
        row = [
            f"`{r['method']}`",
            r["k"],
            f"{r['forward_iterations']:.1f}",
            _ms(r["median_seconds"]),
            _ms(r["q75_seconds"] - r["q25_seconds"]),
            _ms(r["min_seconds"]),
        ]
        row += [f"{r['median_seconds'] / base:.2g}"] if base else []
        row += [f"{r['first_call_seconds']:.1f}"]
        rows.append(row)
    return common.table(header, rows)


def report(record: dict[str, Any]) -> str:
    setup, env = record["setup"], record["environment"]
    widths = "-".join(map(str, setup["widths"]))
    title = (
        f"Wall time of one training step (median of {record['repeats']} after a warm-up call), "
        f"task {setup['task']}, random-init DRUNet {widths}×{setup['num_blocks']} blocks "
        f"({record['params'] / 1e6:.2f}M params), batch {setup['batch']}, "
        f"{setup['patch']}×{setup['patch']} HR patches, on {env['platform']} "
        f"({env['device_kind']}), jax {env['jax_version']}."
    )
    note = (
        "`forward iterations`: iterations the forward loop ran (mean over the batch); with "
        "random weights the fixed-point loops may run to their cap. `first call`: compilation "
        "and one step."
    )
    paragraphs = [title, markdown_table(record["results"]), note]
    if env["platform"] == "cpu":
        paragraphs.append(CPU_NOTE)
    return "\n\n".join(paragraphs)


def run(
    setup: memory.Setup,
    method_names: Sequence[str],
    iterations: Iterations,
    repeats: int,
    out: Path,
    seed: int = 0,
) -> dict[str, Any]:
    """Time every method; write ``step_time.{md,json}`` to ``out``; return the record."""
    start = time.perf_counter()
    params, batch = memory.init_params(setup, seed), make_batch(setup, seed)
    results = []
    for name in method_names:
        results.append(time_method(setup, name, iterations, params, batch, repeats))
        r = results[-1]
        print(
            f"  {name:>15}: {1e3 * r['median_seconds']:.0f} ms, "
            f"{r['forward_iterations']:.1f} forward iterations",
            file=sys.stderr,
        )
    record = {
        "benchmark": "step_time",
        "setup": setup.describe(),
        "params": memory.count(params),
        "iterations": dataclasses.asdict(iterations),
        "repeats": repeats,
        "seed": seed,
        "environment": common.environment(),
        "results": results,
    }
    record["wall_seconds"] = round(time.perf_counter() - start, 1)
    out.mkdir(parents=True, exist_ok=True)
    common.write_results(out, "step_time", report(record), record)
    return record


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", type=memory.names, default=memory.ADMM_METHODS)
    p.add_argument("--task", choices=memory.TASKS, default="sr2")
    p.add_argument("--widths", type=memory.ints, default=memory.SMALL["widths"])
    p.add_argument("--num-blocks", type=int, default=memory.SMALL["num_blocks"])
    p.add_argument("--batch", type=int, default=memory.SMALL["batch"])
    p.add_argument("--patch", type=int, default=memory.SMALL["patch"], help="HR patch side")
    p.add_argument("--unrolled-iters", type=int, default=6, help="K of unrolled(_remat)")
    p.add_argument("--max-iters", type=int, default=50, help="cap of the fixed-point loops")
    p.add_argument("--tol", type=float, default=1e-3, help="their stopping tolerance")
    p.add_argument("--repeats", type=int, default=10, help="timed calls per method")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results/step_time"))
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    if len(args.widths) != 4:
        raise SystemExit(f"--widths needs 4 values, got {args.widths}")
    setup = memory.Setup(args.task, args.widths, args.num_blocks, args.batch, args.patch)
    iterations = Iterations(args.unrolled_iters, args.max_iters, args.tol)
    record = run(setup, args.methods, iterations, args.repeats, args.out, args.seed)
    print(report(record))
    print(f"\nWrote {args.out}/step_time.{{md,json}} in {record['wall_seconds']:.0f} s.")
    return record


if __name__ == "__main__":
    main()
