"""The named task `deblur_valid` with the paper's recipe:
suppa_jax.config.task_experiment."""

from ml_collections import ConfigDict

from suppa_jax.config import task_experiment


def get_config() -> ConfigDict:
    return task_experiment("deblur_valid")
