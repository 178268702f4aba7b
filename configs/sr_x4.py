"""The paper's ×4 bicubic super-resolution (DIV2K, SUPPA; override `method` for the rivals)."""

from ml_collections import ConfigDict

from suppa_jax.config import experiment


def get_config() -> ConfigDict:
    return experiment("sr", scale=4)
