"""×3 super-resolution, small enough for a CPU: see suppa_jax.config.cpu_overrides."""

from ml_collections import ConfigDict

from suppa_jax.config import experiment


def get_config() -> ConfigDict:
    return experiment("sr", scale=3, cpu=True)
