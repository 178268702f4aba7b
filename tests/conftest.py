"""Shared test set-up: JAX's persistent compilation cache and deterministic seeds.

On a 2-core CPU, XLA compilation dominates the suite's time; the persistent cache makes
re-runs (and CI on the same machine) cheap. Jitted functions are shared through
module-scoped fixtures and a small set of shapes.
"""

import os

import jax
import numpy as np
import pytest

import suppa_jax

# As the entry points do: before the first JAX computation.
suppa_jax.use_fast_xla_cpu_flags()
jax.config.update(
    "jax_compilation_cache_dir",
    os.environ.get("JAX_COMPILATION_CACHE_DIR", os.path.expanduser("~/.cache/suppa_jax/xla")),
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh NumPy generator with a fixed seed for each test."""
    return np.random.default_rng(0)
