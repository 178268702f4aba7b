"""Where DRUNet's time goes on the CPU, in JAX (XLA) and in PyTorch, from each one's profiler.

For each DRUNet size, ``speed.py``'s own forward and forward+backward workloads (same weights,
same batch of 16 photo crops, 48×48; the gradient of an MSE loss w.r.t. the weights) run a few
times under each framework's own profiler, after warm-up, and every kernel's time is sorted into:

* **convolutions**: the 3×3 and 2×2 layers and their gradients. XLA: its ``convolution``
  and ``dot`` instructions (the 2×2 layers are matmuls here) and library fusions that hold one;
  PyTorch: ``aten::*convolution*`` (oneDNN);
* **layout copies**: XLA's ``copy``/``transpose`` fusions (e.g. the transposes XLA puts around
  a kernel-gradient convolution); PyTorch's ``aten::copy_``, ``clone``, ``contiguous``;
* **elementwise and other**: everything else (ReLU, additions, padding, the loss, ...).

XLA: ``jax.profiler`` trace of the jitted function; each instruction is charged the time from
its start to the executor's ``end:`` event for it (an instruction may hand its work to the
thread pool and return at once, so its own event can be shorter than its work), and classified
by its HLO in the compiled module. XLA runs independent instructions at the same time (e.g. the
transposes it prepares for the kernel gradients, beside the forward convolutions), so its
categories can add up to more than the wall time: they are busy times, not shares of the wall.
PyTorch: ``torch.profiler`` self CPU time per operator (the calling thread takes part in every
parallel region, so self times add up to the wall time). Both: per call, averaged over calls.

Reproduce (about 2 minutes on 2 CPU cores)::

    python -m benchmarks.profile_kernels
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import torch

from benchmarks import common, speed
from suppa_jax.xla import use_fast_xla_cpu_flags

CATEGORIES = ("convolutions", "layout copies", "elementwise and other")
TORCH_COPIES = ("aten::copy_", "aten::clone", "aten::contiguous", "aten::_to_copy")


# ---------------------------------------------------------------------------------- XLA


def hlo_instructions(hlo: str) -> dict[str, str]:
    """Instruction name → its category, from a compiled module's HLO text."""
    computations = dict(re.findall(r"^%?(\S+) [^\n]*\{\n(.*?)\n\}", hlo, re.S | re.M))
    categories = {}
    for name, opcode, line in re.findall(r"^\s*(?:ROOT )?%(\S+) = \S+ (\w+)\((.*)$", hlo, re.M):
        body = line
        if opcode == "fusion":
            callee = re.search(r"calls=%([\w.\-]+)", line)
            body = computations.get(callee.group(1), "") if callee else ""
        if opcode in ("convolution", "dot") or re.search(r" (convolution|dot)\(", body):
            categories[name] = "convolutions"
        elif opcode in ("copy", "transpose") or re.search(r"copy|transpose", name):
            categories[name] = "layout copies"
        else:
            categories[name] = "elementwise and other"
    return categories


def xla_profile(fn: Callable[..., Any], args: Sequence[Any], calls: int) -> dict[str, float]:
    """Busy seconds per call of ``jax.jit(fn)(*args)`` by category, and its ``wall`` seconds."""
    compiled = jax.jit(fn).lower(*args).compile()
    categories = hlo_instructions(compiled.as_text())
    for _ in range(2):
        jax.block_until_ready(compiled(*args))
    with tempfile.TemporaryDirectory() as log_dir:
        with jax.profiler.trace(log_dir, create_perfetto_trace=True):
            start = time.perf_counter()
            for _ in range(calls):
                jax.block_until_ready(compiled(*args))
            wall = time.perf_counter() - start
        (trace,) = Path(log_dir).rglob("*.trace.json.gz")
        events = json.loads(gzip.decompress(trace.read_bytes()))["traceEvents"]
    spans = sorted((e for e in events if e.get("ph") == "X"), key=lambda e: e["ts"])
    ends: dict[str, list[float]] = collections.defaultdict(list)
    for span in spans:
        if span["name"].startswith("end: "):
            ends[span["name"][5:]].append(span["ts"])
    totals: dict[str, float] = collections.Counter()
    for op in spans:
        if op["name"] in categories:
            stop = op["ts"] + op["dur"]
            done = min((t for t in ends[op["name"]] if t >= op["ts"]), default=stop)
            totals[categories[op["name"]]] += max(done, stop) - op["ts"]
    return {**{k: totals[k] / calls / 1e6 for k in CATEGORIES}, "wall": wall / calls}


# ---------------------------------------------------------------------------------- PyTorch


def torch_category(operator: str) -> str:
    """The category of a PyTorch operator's self time."""
    if "convolution" in operator:
        return "convolutions"
    if operator in TORCH_COPIES:
        return "layout copies"
    return "elementwise and other"


def torch_profile(fn: Callable[[], Any], calls: int) -> dict[str, float]:
    """Seconds per call of ``fn()`` by category (self CPU time), and its ``wall``."""
    for _ in range(2):
        fn()
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        wall = time.perf_counter() - start
    totals: dict[str, float] = collections.Counter()
    for event in prof.key_averages():
        totals[torch_category(event.key)] += event.self_cpu_time_total / 1e6
    return {**{k: totals[k] / calls for k in CATEGORIES}, "wall": wall / calls}


# ---------------------------------------------------------------------------------- report


def profile_size(size: speed.Size, calls: int) -> list[dict[str, Any]]:
    """``speed.py``'s forward and forward+backward of one DRUNet size, in both frameworks."""
    nets = speed.Nets(size, speed.MEMORY_FORMATS[size.torch_memory_format], torch.device("cpu"))
    return [
        {
            "size": size.name,
            "pass": w.name,
            "jax": xla_profile(*w.jax_program, calls),
            "torch": torch_profile(w.torch_fn, calls),
        }
        for w in speed.drunet_workloads(size, nets)
    ]


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    header = ["size", "pass", *CATEGORIES, "wall (profiled)", "JAX busy / wall"]
    cells_by_row = []
    for r in rows:
        cells = [r["size"], r["pass"]]
        for key in (*CATEGORIES, "wall"):
            jax_s, torch_s = r["jax"][key], r["torch"][key]
            cells.append(f"{1e3 * jax_s:.1f} / {1e3 * torch_s:.1f} ({jax_s / torch_s:.2f})")
        busy = sum(r["jax"][c] for c in CATEGORIES)
        cells.append(f"{busy / r['jax']['wall']:.2f}")
        cells_by_row.append(cells)
    return common.table(header, cells_by_row) + "\n\nJAX ms / PyTorch ms per call (JAX/PyTorch)."


def run(sizes: Sequence[str], calls: int, out: Path) -> dict[str, Any]:
    start = time.perf_counter()
    torch.set_num_threads(os.cpu_count())
    rows = [row for name in sizes for row in profile_size(speed.SIZES[name], calls)]
    record = {
        "benchmark": "profile",
        "environment": speed.environment(torch.device("cpu")),
        "calls": calls,
        "rows": rows,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    common.write_results(out, "profile", markdown(rows), record)
    return record


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=speed._sizes, default=tuple(speed.SIZES), help="small,paper")
    p.add_argument("--calls", type=int, default=5, help="profiled calls per pass")
    p.add_argument("--out", type=Path, default=Path("results/profile"))
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    record = run(args.sizes, args.calls, args.out)
    print(markdown(record["rows"]))
    print(f"\nWrote {args.out}/profile.{{md,json}} in {record['wall_seconds']:.0f} s.")
    return record


if __name__ == "__main__":
    use_fast_xla_cpu_flags()  # as the entry points do, before JAX starts its backends
    main()
