"""Pre-trains the small DRUNet that the CPU variants start from, from scratch, on a CPU.

Save its result as weights/drunet_cpu_denoiser.msgpack (suppa_jax.config.CPU_DENOISER); the
shipped one continues this config's epoch with three more at a lower rate (README).
"""

from ml_collections import ConfigDict

from suppa_jax.config import denoiser


def get_config() -> ConfigDict:
    return denoiser(cpu=True)
