"""Which XLA:CPU options make DRUNet faster on the installed jaxlib.

This is the measurement behind :data:`suppa_jax.xla.MEASURED_CPU_FLAGS`: run it on each jaxlib
release the project supports and enter the options that win (and only those) in that table.

For each candidate option and DRUNet size, the forward (batch 16, 48² crops, no gradient) and
the forward+backward (gradient of an MSE loss w.r.t. the weights) are compiled twice in one
process, once with XLA's defaults and once with the option (passed as a compile option, which
is what the same flag in ``XLA_FLAGS`` sets), then called alternately ``--repeats`` times, each
call after an untimed one, so that load from elsewhere falls on both alike. Reported: medians
and the change. A candidate the jaxlib does not know is reported as not accepted (compiling
with it raises ``No such compile option``; in ``XLA_FLAGS`` it would abort the process), and
the default compilation is inspected for YNNPACK fusions.

The default compilation of each workload is made once and timed against each candidate.

Outputs, in ``--out`` (default ``results/xla_flags``): ``jaxlib-<version>.md`` and ``.json``.

Reproduce (about 3 minutes on 2 CPU cores; ``--sizes small paper`` about 12)::

    python -m benchmarks.xla_flags
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from benchmarks import common
from suppa_jax.models import drunet

CANDIDATES: dict[str, dict[str, str]] = {
    "YNNPACK fusions off": {"xla_cpu_experimental_ynn_fusion_type": ""},
    "XNNPACK convolutions": {
        "xla_cpu_experimental_xnn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"
    },
}
"""Name → XLA compile options (the ``XLA_FLAGS`` entry ``--name=value`` for each)."""
SIZES = {"small": ((16, 32, 64, 128), 1), "paper": ((64, 128, 256, 512), 4)}
BATCH, PATCH, SIGMA = 16, 48, 0.1


def programs(widths: tuple[int, ...], num_blocks: int) -> dict[str, tuple[Callable, tuple]]:
    """Workload name → (function, arguments): DRUNet forward and forward+backward."""
    model = drunet.DRUNet(widths, num_blocks)
    rng = np.random.default_rng(0)
    x, target = (jnp.asarray(rng.random((BATCH, PATCH, PATCH, 3), np.float32)) for _ in "xt")
    params = model.init(jax.random.key(0), x[:1], SIGMA)["params"]

    def forward(p: Any, x: jax.Array) -> jax.Array:
        return model.apply({"params": p}, x, SIGMA)

    def loss(p: Any, x: jax.Array, t: jax.Array) -> jax.Array:
        return jnp.mean((forward(p, x) - t) ** 2)

    return {
        "forward": (forward, (params, x)),
        "forward+backward": (jax.grad(loss), (params, x, target)),
    }


def compiled(fn: Callable, args: tuple, options: Mapping[str, str] | None) -> Any:
    """``fn`` compiled for ``args`` with XLA's defaults (``None``) or the given options."""
    return jax.jit(fn).lower(*args).compile(compiler_options=dict(options) if options else None)


def accepted(options: Mapping[str, str]) -> str | None:
    """``None`` if this jaxlib knows every option, else XLA's message."""
    try:
        compiled(jnp.sin, (jnp.ones(2),), options)
    except Exception as error:  # XLA's JaxRuntimeError: "No such compile option"
        return str(error).splitlines()[0]
    return None


def time_ab(a: Callable, b: Callable, args: tuple, repeats: int) -> tuple[list, list]:
    """Seconds per call of ``a(*args)`` and ``b(*args)``, alternating, each timed call after an
    untimed one."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in zip((a, b), samples, strict=True):
            jax.block_until_ready(fn(*args))
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            out.append(time.perf_counter() - start)
    return samples


def run(args: argparse.Namespace) -> dict[str, Any]:
    preset = [o for c in CANDIDATES.values() for o in c if o in os.environ.get("XLA_FLAGS", "")]
    if preset:
        raise SystemExit(f"XLA_FLAGS already sets {preset}: the defaults cannot be measured")
    probe = programs(*SIZES["small"])["forward"]
    record: dict[str, Any] = {
        "environment": common.environment(),
        "default_uses_ynnpack": "ynn" in compiled(*probe, None).as_text(),
        "repeats": args.repeats,
        "rows": [],
    }
    usable = {}
    for name, options in CANDIDATES.items():
        refusal = accepted(options)
        if refusal is None:
            usable[name] = options
        else:
            record["rows"].append({"candidate": name, "options": options, "refused": refusal})
    for size in args.sizes:
        for workload, (fn, fn_args) in programs(*SIZES[size]).items():
            default = compiled(fn, fn_args, None)  # once, timed against every candidate
            for name, options in usable.items():
                changed = compiled(fn, fn_args, options)
                a, b = time_ab(default, changed, fn_args, args.repeats)
                before, after = statistics.median(a), statistics.median(b)
                record["rows"].append(
                    {
                        "candidate": name,
                        "options": options,
                        "size": size,
                        "workload": workload,
                        "default_ms": 1e3 * before,
                        "with_option_ms": 1e3 * after,
                        "change": after / before - 1,
                        "samples_seconds": {"default": a, "with_option": b},
                    }
                )
                print(f"{name}, {size} {workload}: {1e3 * before:.1f} → {1e3 * after:.1f} ms")
    return record


def markdown(record: dict[str, Any]) -> str:
    env = record["environment"]
    rows = []
    for row in record["rows"]:
        if "refused" in row:
            rows.append([row["candidate"], "—", "—", f"not accepted: {row['refused']}", ""])
            continue
        rows.append(
            [
                row["candidate"],
                row["size"],
                row["workload"],
                f"{row['default_ms']:.1f} → {row['with_option_ms']:.1f} ms",
                f"{100 * row['change']:+.0f}%",
            ]
        )
    return "\n".join(
        [
            f"# XLA:CPU options on jaxlib {env['jaxlib_version']} ({env['cpu_count']} CPU cores, "
            f"Python {env['python']})",
            "",
            f"Default compilation hands convolutions to YNNPACK: {record['default_uses_ynnpack']}."
            f" Medians of {record['repeats']} alternating calls per variant, one process.",
            "",
            common.table(["candidate", "DRUNet", "workload", "default → with it", "change"], rows),
            "",
            "Reproduce: `python -m benchmarks.xla_flags`",
        ]
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.xla_flags", description=__doc__)
    p.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["small"])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--out", type=Path, default=Path("results/xla_flags"))
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    record = run(args)
    text = markdown(record)
    print(text)
    common.write_results(args.out, f"jaxlib-{jaxlib.__version__}", text, record)


if __name__ == "__main__":
    main()
