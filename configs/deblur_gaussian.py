"""The paper's Gaussian deblurring (σ 2, 11×11, noise 0.01; Waterloo/BSDS500 folders, SUPPA)."""

from ml_collections import ConfigDict

from suppa_jax.config import experiment


def get_config() -> ConfigDict:
    return experiment("deblur")
