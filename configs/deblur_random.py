"""The named task `deblur_random` with the paper's recipe:
suppa_jax.config.task_experiment."""

from ml_collections import ConfigDict

from suppa_jax.config import task_experiment


def get_config() -> ConfigDict:
    config = task_experiment("deblur_random")
    config.task.noise_sigma_max = 0.03  # each patch its own noise level in [0.01, 0.03]
    return config
