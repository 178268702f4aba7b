"""What every benchmark shares: the environment record, Markdown tables and result files.

Benchmarks are modules of the ``benchmarks`` package, run from the repository root as
``python -m benchmarks.<name>``; they import the library and the PyTorch reference
(:mod:`benchmarks.torch_reference`) as modules.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

__all__ = ["environment", "table", "write_results"]


def environment() -> dict[str, Any]:
    """The machine, the JAX device and the versions that produced the numbers."""
    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax_version": jax.__version__,
        "jaxlib_version": importlib.metadata.version("jaxlib"),
        "python": platform.python_version(),
    }


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (cells as given, converted with ``str``), without a trailing newline."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(out: Path, name: str, markdown: str, record: dict[str, Any]) -> None:
    """``out/<name>.md`` and ``out/<name>.json`` (``out`` created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(markdown.rstrip("\n") + "\n")
    (out / f"{name}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
