"""The named task `deblur_random`, small enough for a CPU: see suppa_jax.config.cpu_overrides."""

from ml_collections import ConfigDict

from suppa_jax.config import task_experiment


def get_config() -> ConfigDict:
    config = task_experiment("deblur_random", cpu=True)
    # One model over the family: each patch its own kernel and noise level in [0.01, 0.03]
    # (validation at 0.01, the level of the evaluation tasks).
    config.task.noise_sigma_max = 0.03
    return config
