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
from suppa_jax.models import drunet, weights

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


@pytest.fixture(scope="session")
def init_file(tmp_path_factory) -> str:
    """A tiny random DRUNet, shrunk so that the ADMM iteration stays bounded."""
    model = drunet.DRUNet(widths=(8, 8, 8, 8), num_blocks=1)
    params = jax.jit(model.init)(jax.random.key(0), np.zeros((1, 8, 8, 3), np.float32), 0.1)
    params = jax.tree.map(lambda p: 0.3 * p, params["params"])
    path = tmp_path_factory.mktemp("weights") / "tiny.msgpack"
    weights.save_params(path, params)
    return str(path)
