"""Pre-training of the paper-size DRUNet as a Gaussian denoiser, σ ∈ [0, 50/255] (DIV2K)."""

from ml_collections import ConfigDict

from suppa_jax.config import denoiser


def get_config() -> ConfigDict:
    return denoiser()
