"""Denoiser priors: the convention (:mod:`~suppa_jax.models.base`: a :class:`Denoiser` is
``apply(params, x, σ)`` with its params), the architectures (:mod:`~suppa_jax.models.registry`:
DRUNet, :mod:`~suppa_jax.models.drunet`; DnCNN, :mod:`~suppa_jax.models.dncnn`) and their weight
files (:mod:`~suppa_jax.models.weights`: msgpack files, DPIR's PyTorch layout)."""

from suppa_jax.models import base, dncnn, drunet, registry, weights
from suppa_jax.models.base import (
    COMPUTE_DTYPES,
    Denoiser,
    FlaxApply,
    as_denoiser,
    with_compute_dtype,
)
from suppa_jax.models.dncnn import DnCNN
from suppa_jax.models.drunet import DRUNet
from suppa_jax.models.registry import ModelSpec
from suppa_jax.models.weights import (
    Prior,
    load_denoiser,
    load_params,
    load_prior,
    model_from_params,
    save_params,
)

__all__ = [
    "COMPUTE_DTYPES",
    "DRUNet",
    "Denoiser",
    "DnCNN",
    "FlaxApply",
    "ModelSpec",
    "Prior",
    "as_denoiser",
    "base",
    "dncnn",
    "drunet",
    "load_denoiser",
    "load_params",
    "load_prior",
    "model_from_params",
    "registry",
    "save_params",
    "weights",
    "with_compute_dtype",
]
