"""Pre-trains the small DRUNet that the CPU variants start from, from scratch, on a CPU.

Save its result as weights/drunet_small_denoiser.msgpack (suppa_jax.config.SMALL_DENOISER).
"""

from ml_collections import ConfigDict

from suppa_jax.config import denoiser


def get_config() -> ConfigDict:
    return denoiser(cpu=True)
