"""Peak memory of one compiled training step versus the number of ADMM iterations K.

What is measured: for each training method and each K, the full training step
(:func:`suppa_jax.training.update`: loss, gradient, Adam update, state donated) is jitted,
lowered on abstract inputs (``jax.ShapeDtypeStruct``, so the paper-size parameters are never
allocated) and compiled. XLA's compiled memory analysis gives the bytes of the arguments, the
outputs, the temporaries and the outputs aliased to (donated) arguments; the step's peak is

    peak = argument + output + temp − alias

which is what the device must hold while the step runs (code size not included). Nothing is
trained, so this runs on a laptop CPU for the paper-size DRUNet. On a GPU or TPU each cell is
also *measured*: a fresh process (the allocator's peak counter cannot be reset) materialises
the state, runs one step and reads ``peak_bytes_in_use`` (the main process, which only
compiles, does not preallocate device memory). On a CPU that column is unavailable.

Rows: the ADMM methods, and ``suppa_sequential``: SUPPA with ``sequential=True`` (its two
differentiable steps one after the other, rematerialised).

What K means: the forward-loop cap ``max_iters`` for ``suppa``, ``suppa_sequential``, ``jfb``
and ``deq`` (for
``deq`` also the adjoint loop's cap ``backward_max_iters``); the number of unrolled iterations
``iters`` for ``unrolled`` and ``unrolled_remat``. ``rho`` is the reference ``0.1·s²``.

Outputs, in ``--out`` (default ``results/memory``): ``memory.md`` (the table printed to
stdout: rows are methods, columns K), ``memory.json`` (every raw byte count, the settings, the
device and versions) and ``memory.png`` (memory versus K, linear and log axes).

Reproduce (paper size: DRUNet 64-128-256-512 with 4 blocks, 32.6M parameters; batch 16;
96×96 HR patches; SR×2; 42 compilations, about 3 minutes on 2 CPU cores)::

    python -m benchmarks.memory --task sr2

and a fast run (tiny DRUNet, batch 4, 48×48 patches)::

    python -m benchmarks.memory --small
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from suppa_jax import build, methods, tasks, training
from suppa_jax import physics as ops
from suppa_jax.evaluation.tasks import task_config
from suppa_jax.models import drunet
from suppa_jax.solvers import admm
from suppa_jax.typing import Array

GIB = 2**30
ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20
ALL_KS = (1, 2, 4, 8, 16, 32, 50)
ADMM_METHODS = ("suppa", "suppa_sequential", "unrolled", "unrolled_remat", "deq", "jfb")
"""The training methods with an iteration count K (the denoiser pre-training has none), and
the variants of :data:`VARIANTS`."""
#: Rows that are a registered method with other settings: name → (method, settings).
VARIANTS = {"suppa_sequential": ("suppa", {"sequential": True})}


def method_of(name: str) -> str:
    """The registered method behind a row: itself, or the method of a :data:`VARIANTS` row."""
    return VARIANTS.get(name, (name, {}))[0]


TASKS = tuple(tasks.task_names())
PAPER = {"widths": (64, 128, 256, 512), "num_blocks": 4, "batch": 16, "patch": 96}
SMALL = {"widths": (16, 32, 64, 128), "num_blocks": 1, "batch": 4, "patch": 48}
FAST_COMPILE = {"xla_backend_optimization_level": 0}
CPU_NOTE = "Measured `peak_bytes_in_use`: unavailable on CPU (compiled estimate only)."


@dataclasses.dataclass(frozen=True)
class Setup:
    """What is being trained: the task, the DRUNet size, the batch and the HR patch side."""

    task: str = "sr2"
    widths: tuple[int, int, int, int] = PAPER["widths"]
    num_blocks: int = PAPER["num_blocks"]
    batch: int = PAPER["batch"]
    patch: int = PAPER["patch"]

    @property
    def model(self) -> drunet.DRUNet:
        return drunet.DRUNet(widths=self.widths, num_blocks=self.num_blocks)

    @property
    def physics(self) -> ops.OperatorFamily:
        """The named task's operators (a :class:`~suppa_jax.physics.Fixed` family, or one drawn
        per example)."""
        return build.build_physics(task_config(self.task))

    @property
    def operator(self) -> ops.LinearOperator | None:
        """The task's one operator, or ``None`` where each example draws its own."""
        return self.physics.fixed

    def training_batch(self, hr: Array | None = None, seed: int = 0) -> dict[str, Any]:
        """A training batch: HR patches ``hr`` (default: constant 0.5) measured as in training
        (:func:`suppa_jax.physics.measure` at the task's noise level, example seeds from
        ``seed``): ``y``, ``gt`` and, over a family of operators, each example's ``op``. Under
        ``jax.eval_shape`` nothing is allocated."""
        physics = self.physics
        scale = physics.scale
        if self.patch % scale:
            raise ValueError(f"--patch {self.patch} is not a multiple of the scale {scale}")
        shape = (self.batch, self.patch, self.patch, 3)
        hr = jnp.full(shape, 0.5, jnp.float32) if hr is None else jnp.asarray(hr)
        if hr.shape != shape:
            raise ValueError(f"training_batch: HR patches of shape {hr.shape}, expected {shape}")
        seeds = seed + jnp.arange(self.batch)
        noise = task_config(self.task).noise_sigma
        batch = ops.measure(physics, {"hr": hr, "seed": seeds}, noise_sigma=noise, quantize=False)
        return batch if physics.fixed is None else {"y": batch["y"], "gt": batch["gt"]}

    def abstract_batch(self) -> dict[str, Any]:
        """:meth:`training_batch` as ``jax.ShapeDtypeStruct``s."""
        return jax.eval_shape(self.training_batch)

    def describe(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "widths": list(self.widths)}


# ---------------------------------------------------------------------------------- building


def method_settings(
    name: str, k: int, physics: ops.LinearOperator | ops.OperatorFamily, **extra: Any
) -> dict[str, Any]:
    """Keyword settings of :func:`suppa_jax.methods.make` that put K iterations in ``name`` (a
    method or a :data:`VARIANTS` row, whose own settings are added)."""
    method, variant = VARIANTS.get(name, (name, {}))
    settings: dict[str, Any] = {"rho": admm.reference_rho(physics)}
    if method in ("unrolled", "unrolled_remat"):
        settings["iters"] = k
    else:
        settings["max_iters"] = k
    if method == "deq":
        settings["backward_max_iters"] = k
    return {**settings, **variant, **extra}


def make_method(setup: Setup, name: str, k: int, **extra: Any) -> methods.Method:
    model = setup.model
    apply = lambda p, x, s: model.apply({"params": p}, x, s)  # noqa: E731
    settings = method_settings(name, k, setup.physics, **extra)
    return methods.make(method_of(name), apply, setup.operator, **settings)


def make_optimizer() -> Any:
    """The reference Adam (network lr 1e-4, scalars 0.1); the schedule does not change memory."""
    return training.make_optimizer(lr=1e-4, scalar_lr=0.1)


def abstract_params(setup: Setup) -> Any:
    """DRUNet parameter shapes, from ``jax.eval_shape`` (nothing is allocated)."""
    x = jax.ShapeDtypeStruct((setup.patch, setup.patch, 3), jnp.float32)
    return jax.eval_shape(setup.model.init, jax.random.key(0), x, 0.1)["params"]


def init_params(setup: Setup, seed: int) -> Any:
    """Randomly initialised DRUNet weights (Flax's default initialisers).

    Initialisation runs once, so it is compiled for compile speed (:data:`FAST_COMPILE`).
    """
    args = (jax.random.key(seed), jnp.zeros((setup.patch, setup.patch, 3), jnp.float32), 0.1)
    init = jax.jit(setup.model.init).lower(*args).compile(FAST_COMPILE)
    return init(*args)["params"]


def count(tree: Any) -> int:
    """Number of scalars in a tree of arrays or ``ShapeDtypeStruct``s."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


def abstract_inputs(
    setup: Setup, method: methods.Method, optimizer: Any, params: Any
) -> tuple[Any, ...]:
    """Abstract ``(state, batch, key)`` for :func:`suppa_jax.training.update`."""
    state = jax.eval_shape(functools.partial(training.init_state, method, optimizer), params)
    return state, setup.abstract_batch(), jax.eval_shape(jax.random.key, 0)


def jitted_step(method: methods.Method, optimizer: Any) -> Any:
    """The training step, jitted with the state donated (as a training loop would)."""
    return jax.jit(functools.partial(training.update, method, optimizer), donate_argnums=0)


# ---------------------------------------------------------------------------------- measuring


def memory_of(compiled: Any) -> dict[str, int]:
    """Byte counts of XLA's compiled memory analysis, and ``peak = arg + out + temp − alias``."""
    stats = compiled.memory_analysis()
    if stats is None:
        raise RuntimeError(f"XLA gives no memory analysis on {jax.devices()[0].platform}")
    out = {
        "argument_bytes": int(stats.argument_size_in_bytes),
        "output_bytes": int(stats.output_size_in_bytes),
        "temp_bytes": int(stats.temp_size_in_bytes),
        "alias_bytes": int(stats.alias_size_in_bytes),
        "generated_code_bytes": int(stats.generated_code_size_in_bytes),
    }
    out["peak_bytes"] = (
        out["argument_bytes"] + out["output_bytes"] + out["temp_bytes"] - out["alias_bytes"]
    )
    return out


def compiled_cell(
    setup: Setup, name: str, k: int, params: Any, optimizer: Any, fast_compile: bool = True
) -> dict[str, Any]:
    """Compile one (method, K) training step on abstract inputs; its memory and compile time.

    ``fast_compile`` sets LLVM's optimisation level to 0 (:data:`FAST_COMPILE`): that only
    changes the generated machine code, not XLA's HLO passes or buffer assignment, so the byte
    counts are the same (checked at the paper size) and CPU compilation takes half the time.
    """
    method = make_method(setup, name, k)
    start = time.perf_counter()
    lowered = jitted_step(method, optimizer).lower(
        *abstract_inputs(setup, method, optimizer, params)
    )
    compiled = lowered.compile(FAST_COMPILE if fast_compile else None)
    seconds = time.perf_counter() - start
    settings = method_settings(name, k, setup.physics)
    return {
        "method": name,
        "k": k,
        "settings": settings,
        **memory_of(compiled),
        "compile_seconds": round(seconds, 2),
    }


def measured_peak(setup: Setup, name: str, k: int) -> int | None:
    """Run one real step on the device and return its ``peak_bytes_in_use`` (``None`` on CPU).

    Call it in a fresh process: the allocator's peak counter covers the whole process.
    """
    device, optimizer = jax.devices()[0], make_optimizer()
    method = make_method(setup, name, k)
    state = training.init_state(method, optimizer, init_params(setup, seed=0))
    out = jitted_step(method, optimizer)(state, setup.training_batch(), jax.random.key(0))
    jax.block_until_ready(out)
    stats = device.memory_stats()
    return None if stats is None else int(stats["peak_bytes_in_use"])


def measure_in_subprocess(setup: Setup, name: str, k: int) -> dict[str, Any]:
    """:func:`measured_peak` in a fresh Python process (one per cell), errors recorded."""
    argv = [sys.executable, "-m", "benchmarks.memory", *setup_argv(setup)]
    proc = subprocess.run(
        [*argv, "--worker", f"{name}:{k}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    error = "out of memory" if "RESOURCE_EXHAUSTED" in proc.stderr else last[0][:300]
    return {"measured_peak_bytes": None, "measured_error": error}


def setup_argv(setup: Setup) -> list[str]:
    """Command-line flags that rebuild ``setup`` (for the measuring subprocess)."""
    return [
        f"--task={setup.task}",
        f"--widths={','.join(map(str, setup.widths))}",
        f"--num-blocks={setup.num_blocks}",
        f"--batch={setup.batch}",
        f"--patch={setup.patch}",
    ]


def can_measure() -> bool:
    """The device reports allocator statistics (GPU/TPU); the CPU does not."""
    return jax.devices()[0].platform != "cpu"


# ---------------------------------------------------------------------------------- reporting


def growth(cells: Sequence[dict[str, Any]], field: str = "peak_bytes") -> dict[str, float | None]:
    """Shape of one method's curve over K ≥ 2: spread ``max/min − 1`` and slope in bytes per K.

    K = 1 is left out: XLA may simplify a loop that runs at most once. ``None`` where there
    are too few values.
    """
    points = [(c["k"], c[field]) for c in cells if c["k"] >= 2 and c.get(field) is not None]
    if not points:
        return {"spread": None, "slope_bytes_per_k": None}
    ks, values = np.array(points, dtype=float).T
    slope = float(np.polyfit(ks, values, 1)[0]) if len(ks) > 1 else None
    return {"spread": float(values.max() / values.min() - 1), "slope_bytes_per_k": slope}


def _unit(values: Sequence[int | None]) -> tuple[float, str, int]:
    """GiB with 2 decimals when the largest value reaches 1 GiB, else MiB with 1 decimal."""
    return (GIB, "GiB", 2) if max((v or 0 for v in values), default=0) >= GIB else (MIB, "MiB", 1)


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def markdown_table(results: Sequence[dict[str, Any]], field: str = "peak_bytes") -> str:
    """Rows: methods; columns: K; then the spread and the slope (MiB per K) over K ≥ 2."""
    names = list(dict.fromkeys(r["method"] for r in results))
    ks = sorted({r["k"] for r in results})
    scale, unit, digits = _unit([r.get(field) for r in results])
    header = ["method", *(f"K={k}" for k in ks), "spread K≥2", "slope (MiB/K)"]
    rows = []
    for name in names:
        cells = [r for r in results if r["method"] == name]
        by_k = {r["k"]: r.get(field) for r in cells}
        shape = growth(cells, field)
        spread, slope = shape["spread"], shape["slope_bytes_per_k"]
        row = [f"`{name}`"]
        row += [_cell(None if by_k.get(k) is None else by_k[k] / scale, f".{digits}f") for k in ks]
        row += [_cell(None if spread is None else 100 * spread, ".1f") + "%" * (spread is not None)]
        row += [_cell(None if slope is None else slope / MIB, ".1f")]
        rows.append(row)
    return common.table(header, rows) + f"\n\nCells: {unit}."


def title(record: dict[str, Any]) -> str:
    """One line: the task, the model, the batch and the patch."""
    setup = record["setup"]
    widths = "-".join(map(str, setup["widths"]))
    return (
        f"task {setup['task']}, DRUNet {widths}, {setup['num_blocks']} blocks "
        f"({record['params'] / 1e6:.1f}M params), batch {setup['batch']}, "
        f"{setup['patch']}×{setup['patch']} HR patches"
    )


def ratio_line(results: Sequence[dict[str, Any]]) -> str | None:
    """``unrolled / suppa`` at the largest K, when both were run."""
    kmax = max(r["k"] for r in results)
    at = {r["method"]: r["peak_bytes"] for r in results if r["k"] == kmax}
    if "unrolled" in at and "suppa" in at:
        return f"At K={kmax}, `unrolled` needs {at['unrolled'] / at['suppa']:.1f}× SUPPA's memory."
    return None


def report(record: dict[str, Any]) -> str:
    """The markdown written to ``memory.md`` and printed."""
    env = record["environment"]
    paragraphs = [
        f"Peak memory of one training step ({title(record)}): XLA compiled memory analysis "
        f"(argument + output + temp − alias) on {env['platform']} ({env['device_kind']}), "
        f"jax {env['jax_version']}.",
        markdown_table(record["results"]),
    ]
    if record["measured"] and any(r.get("measured_peak_bytes") for r in record["results"]):
        paragraphs.append("Measured `peak_bytes_in_use` (one real step in a fresh process):")
        paragraphs.append(markdown_table(record["results"], "measured_peak_bytes"))
    paragraphs += [record["measured_note"], ratio_line(record["results"])]
    return "\n\n".join(p for p in paragraphs if p)


def plot(results: Sequence[dict[str, Any]], path: Path, heading: str) -> None:
    """Memory versus K, one line per method; linear axes (left) and log–log (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    names = list(dict.fromkeys(r["method"] for r in results))
    for name in names:
        cells = sorted((r for r in results if r["method"] == name), key=lambda r: r["k"])
        ks = [c["k"] for c in cells]
        gib = [c["peak_bytes"] / GIB for c in cells]
        for ax in axes:
            ax.plot(ks, gib, marker="o", label=name)
    ks = sorted({r["k"] for r in results})
    for ax, scale in zip(axes, ("linear", "log"), strict=True):
        ax.set_xscale(scale)
        ax.set_yscale(scale)
        if scale == "log":  # plain numbers, and the measured K values as ticks
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("K (iterations)")
        ax.set_ylabel("peak memory of one training step (GiB)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle(heading, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------- main


def run(
    setup: Setup,
    method_names: Sequence[str],
    ks: Sequence[int],
    out: Path,
    measure: bool | None = None,
    echo: bool = True,
    fast_compile: bool = True,
) -> dict[str, Any]:
    """Compile every (method, K) step, write ``memory.{md,json,png}`` to ``out``; the record.

    ``measure``: also run each step for real in a fresh process (default: on GPU/TPU only).
    """
    start = time.perf_counter()
    measure = can_measure() if measure is None else measure
    optimizer, params = make_optimizer(), abstract_params(setup)
    results = []
    for name in method_names:
        for k in ks:
            cell = compiled_cell(setup, name, k, params, optimizer, fast_compile)
            if measure:
                cell.update(measure_in_subprocess(setup, name, k))
            results.append(cell)
            if echo:
                print(
                    f"  {name:>15} K={k:<3} peak {cell['peak_bytes'] / GIB:7.3f} GiB "
                    f"(compiled in {cell['compile_seconds']:.1f} s)",
                    file=sys.stderr,
                )
    record = {
        "benchmark": "memory",
        "setup": setup.describe(),
        "params": count(params),
        "methods": list(method_names),
        "ks": list(ks),
        "environment": common.environment(),
        "measured": measure,
        "measured_note": CPU_NOTE if jax.devices()[0].platform == "cpu" else "",
        "peak_formula": "argument + output + temp - alias (bytes)",
        "compiler_options": FAST_COMPILE if fast_compile else {},
        "results": results,
        "shape": {n: growth([r for r in results if r["method"] == n]) for n in method_names},
    }
    record["wall_seconds"] = round(time.perf_counter() - start, 1)
    write(record, out)
    return record


def write(record: dict[str, Any], out: Path) -> None:
    common.write_results(out, "memory", report(record), record)
    plot(record["results"], out / "memory.png", title(record))


def ints(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` → ``(1, 2, 4)`` (argparse type)."""
    return tuple(int(v) for v in text.split(",") if v)


def names(text: str) -> tuple[str, ...]:
    """``"suppa,jfb"`` → ``("suppa", "jfb")``, each one of :data:`ADMM_METHODS` (argparse type)."""
    chosen = tuple(v for v in text.split(",") if v)
    unknown = sorted(set(chosen) - set(ADMM_METHODS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown methods {unknown}; known: {list(ADMM_METHODS)}")
    return chosen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--methods",
        type=names,
        default=ADMM_METHODS,
        help=f"comma-separated; default: {','.join(ADMM_METHODS)}",
    )
    p.add_argument("--ks", type=ints, default=ALL_KS, help="comma-separated K values")
    p.add_argument("--task", choices=TASKS, default="sr2")
    p.add_argument("--widths", type=ints, help="DRUNet widths c0,c1,c2,c3 (default 64,128,256,512)")
    p.add_argument("--num-blocks", type=int, help="residual blocks per stage (default 4)")
    p.add_argument("--batch", type=int, help="batch size (default 16)")
    p.add_argument("--patch", type=int, help="HR patch side in pixels (default 96)")
    p.add_argument(
        "--small",
        action="store_true",
        help="fast preset: widths 16,32,64,128, 1 block, batch 4, patch 48",
    )
    p.add_argument("--out", type=Path, default=Path("results/memory"))
    p.add_argument(
        "--measure",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run each step for real and read peak_bytes_in_use (default: off CPU)",
    )
    p.add_argument(
        "--fast-compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="LLVM -O0: same byte counts, half the compile time (default: on)",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: METHOD:K, one measurement
    return p


def setup_from(args: argparse.Namespace) -> Setup:
    """The preset (paper size, or ``--small``) with any explicitly given size overriding it."""
    preset = SMALL if args.small else PAPER
    given = {
        "widths": args.widths,
        "num_blocks": args.num_blocks,
        "batch": args.batch,
        "patch": args.patch,
    }
    sizes = {key: preset[key] if value is None else value for key, value in given.items()}
    if len(sizes["widths"]) != 4:
        raise SystemExit(f"--widths needs 4 values, got {sizes['widths']}")
    return Setup(task=args.task, **sizes)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    # Only compiling here: leave the accelerator's memory to the measuring subprocesses (JAX
    # would otherwise take 75% of it when the backend starts; they inherit this setting).
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    args = parser().parse_args(argv)
    setup = setup_from(args)
    if args.worker:  # one measurement in this fresh process; JSON on the last stdout line
        name, k = args.worker.split(":")
        print(json.dumps({"measured_peak_bytes": measured_peak(setup, name, int(k))}))
        return None
    record = run(
        setup, args.methods, args.ks, args.out, args.measure, fast_compile=args.fast_compile
    )
    print(report(record))
    print(f"\nWrote {args.out}/memory.{{md,json,png}} in {record['wall_seconds']:.0f} s.")
    return record


if __name__ == "__main__":
    main()
