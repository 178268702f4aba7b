"""Denoiser priors: DRUNet (:mod:`~suppa_jax.models.drunet`) and its weight files
(:mod:`~suppa_jax.models.weights`: DPIR's PyTorch layout, msgpack files)."""

from suppa_jax.models import drunet, weights
from suppa_jax.models.drunet import DRUNet, with_compute_dtype
from suppa_jax.models.weights import (
    Prior,
    load_denoiser,
    load_params,
    load_prior,
    model_from_params,
    save_params,
)

__all__ = [
    "DRUNet",
    "Prior",
    "drunet",
    "load_denoiser",
    "load_params",
    "load_prior",
    "model_from_params",
    "save_params",
    "weights",
    "with_compute_dtype",
]
