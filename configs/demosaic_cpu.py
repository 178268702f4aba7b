"""The named task `demosaic`, small enough for a CPU: see suppa_jax.config.cpu_overrides."""

from ml_collections import ConfigDict

from suppa_jax.config import task_experiment


def get_config() -> ConfigDict:
    return task_experiment("demosaic", cpu=True)
