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

__all__ = ["MEASURED_CPU_FLAGS", "XLA_CPU_FLAGS", "cpu_flags", "use_fast_xla_cpu_flags"]

MEASURED_CPU_FLAGS: dict[str, tuple[str, ...]] = {
    "0.10": ("--xla_cpu_experimental_ynn_fusion_type=",),
    "0.12": ("--xla_cpu_experimental_ynn_fusion_type=",),
}
"""jaxlib release (``major.minor``) → the XLA:CPU flags measured to make DRUNet faster on it.

Each entry comes from ``python -m benchmarks.xla_flags`` run on that release (tables in
``benchmarks/results/cpu/xla_flags/``). On 0.10.2 and 0.12.0.1 alike XLA hands DRUNet's
convolutions to YNNPACK by default, and they are slower there than on XLA's own (Eigen) kernels:
turning the YNNPACK fusions off made the forward 16–38% and the forward+backward 15–41% faster
(small and paper-size DRUNet, a 2-core AVX-512 CPU; ``benchmarks/NOTES.md``). XNNPACK
convolutions, the other candidate, changed them by −6% to +12%, so they are not used. A
release that is not listed gets no flag: XLA aborts the process on a flag it does not know, and
what a flag does for speed changes between releases. The flags only change CPU compilation; GPU
and TPU are untouched.
"""


def cpu_flags(jaxlib_version: str) -> tuple[str, ...]:
    """The flags of :data:`MEASURED_CPU_FLAGS` for a jaxlib version such as ``"0.12.0.1"``."""
    return MEASURED_CPU_FLAGS.get(".".join(jaxlib_version.split(".")[:2]), ())


XLA_CPU_FLAGS = cpu_flags(jaxlib.__version__)
"""The flags :func:`use_fast_xla_cpu_flags` adds on the installed jaxlib (empty if unmeasured)."""


def use_fast_xla_cpu_flags(environ: MutableMapping[str, str] | None = None) -> bool:
    """Append :data:`XLA_CPU_FLAGS` to ``XLA_FLAGS``; returns whether it did.

    Skipped when ``SUPPA_JAX_XLA_CPU_FLAGS=0``, when ``XLA_FLAGS`` already names one of the
    flags (the user's choice wins), and on a jaxlib release without measured flags. XLA reads
    ``XLA_FLAGS`` when JAX starts its backends, so this takes effect only if called before the
    first JAX computation.
    """
    environ = os.environ if environ is None else environ
    flags = environ.get("XLA_FLAGS", "")
    if (
        environ.get("SUPPA_JAX_XLA_CPU_FLAGS") == "0"
        or not XLA_CPU_FLAGS
        or any(flag.split("=")[0] in flags for flag in XLA_CPU_FLAGS)
    ):
        return False
    environ["XLA_FLAGS"] = " ".join([flags, *XLA_CPU_FLAGS]).strip()
    return True
