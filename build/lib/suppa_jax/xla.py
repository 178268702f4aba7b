"""An XLA:CPU speed-up, applied by the entry points and one call away for library users.

Importing :mod:`suppa_jax` changes nothing in the environment. ``train.py``, ``evaluate.py``,
the demo and the converter call :func:`use_fast_xla_cpu_flags` first; in a notebook or script,
call it before the first JAX computation::

    import suppa_jax
    suppa_jax.use_fast_xla_cpu_flags()
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

import jaxlib

__all__ = ["XLA_CPU_FLAGS", "use_fast_xla_cpu_flags"]

XLA_CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=",)
"""XLA:CPU flags that :func:`use_fast_xla_cpu_flags` adds to ``XLA_FLAGS``.

jaxlib 0.10 hands convolutions to YNNPACK by default; for DRUNet its convolutions are slower
than XLA's own (Eigen) ones. Turning that fusion off made the small DRUNet's forward 19% and
its forward+backward 13% faster on a 2-core AVX-512 CPU, and the paper-size one's 21% and 12%
(``benchmarks/NOTES.md``). The flag only changes CPU compilation; GPU and TPU are untouched.
"""


def use_fast_xla_cpu_flags(environ: MutableMapping[str, str] | None = None) -> bool:
    """Append :data:`XLA_CPU_FLAGS` to ``XLA_FLAGS``; returns whether it did.

    Skipped when ``SUPPA_JAX_XLA_CPU_FLAGS=0``, when ``XLA_FLAGS`` already names the flag (the
    user's choice wins), and for jaxlib other than 0.10.x, where it was measured (XLA aborts the
    process on a flag it does not know). XLA reads ``XLA_FLAGS`` when JAX starts its backends,
    so this takes effect only if called before the first JAX computation.
    """
    environ = os.environ if environ is None else environ
    flags = environ.get("XLA_FLAGS", "")
    if (
        environ.get("SUPPA_JAX_XLA_CPU_FLAGS") == "0"
        or not jaxlib.__version__.startswith("0.10.")
        or any(flag.split("=")[0] in flags for flag in XLA_CPU_FLAGS)
    ):
        return False
    environ["XLA_FLAGS"] = " ".join([flags, *XLA_CPU_FLAGS]).strip()
    return True
