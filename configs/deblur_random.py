"""The named task `deblur_random` with the paper's recipe:
suppa_jax.config.task_experiment."""

from ml_collections import ConfigDict

from suppa_jax.config import task_experiment


def get_config() -> ConfigDict:
    # One model over the family of blurs, each patch blurred by its own kernel (noise 0.01;
    # with task.noise_sigma_max, a level per patch: README, "Operators per example").
    return task_experiment("deblur_random")
