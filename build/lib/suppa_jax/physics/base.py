"""The operator protocol: what a solver and a training method need of a forward model.

A forward model is linear, ``y = A x + e``, on images ``(..., H, W, C)`` (any leading batch
dimensions, values in [0, 1]), and offers

* ``forward(x) = A x`` and ``adjoint(y) = Aᵀ y`` (exact: ``⟨A u, v⟩ = ⟨u, Aᵀ v⟩``);
* ``data_prox(z, y, ρ) = argmin_x ½‖y − A x‖² + ρ/2‖x − z‖²``, the data step of ADMM;
* ``initial(y)``, the starting estimate ``x₀``;
* ``image_shape(y)``, the spatial size ``(H, W)`` behind measurements ``y``, and ``scale``, the
  ratio of image to measurement side (1 unless the operator decimates);
* ``prepare(image_shape)``, the operator with whatever depends on the image size (spectra,
  factorisations) computed once, so that an iterative solver does not recompute it per step.

Implementations are pytrees (their arrays are leaves), so they pass through ``jit``, ``vmap``,
``grad`` and ``shard_map`` as arguments. The noise model is not the operator's: see
:mod:`suppa_jax.physics.measurement`.
"""

from __future__ import annotations

import abc
from typing import Self

import jax
import jax.numpy as jnp
import numpy as np

from suppa_jax.typing import Array, ArrayLike

__all__ = ["LinearOperator"]


class LinearOperator(abc.ABC):
    """A linear forward model ``A`` with its exact adjoint, data step and starting estimate."""

    #: Image side over measurement side (an integer; 1 unless the operator decimates).
    scale: int = 1

    @abc.abstractmethod
    def forward(self, x: ArrayLike) -> Array:
        """``A x``: ``(..., H, W, C) → (..., h, w, C)``."""

    @abc.abstractmethod
    def adjoint(self, y: ArrayLike) -> Array:
        """``Aᵀ y``: ``(..., h, w, C) → (..., H, W, C)``."""

    @abc.abstractmethod
    def data_prox(self, z: ArrayLike, y: ArrayLike, rho: ArrayLike) -> Array:
        """``argmin_x ½‖y − A x‖² + ρ/2‖x − z‖²``; ``rho`` is a positive scalar or one value per
        sample (shape ``z.shape[:-3]``)."""

    @abc.abstractmethod
    def initial(self, y: ArrayLike) -> Array:
        """The starting estimate ``x₀`` from measurements ``y``."""

    def image_shape(self, y: Array) -> tuple[int, int]:
        """Spatial size ``(H, W)`` of the images behind measurements ``y`` (``s·h, s·w``)."""
        return y.shape[-3] * self.scale, y.shape[-2] * self.scale

    def prepare(self, image_shape: tuple[int, int]) -> Self:
        """This operator with its size-dependent quantities computed for ``(H, W)`` images
        (nothing to compute by default)."""
        del image_shape
        return self


# ---------------------------------------------------------------------- argument checking


def check_image(what: str, x: Array) -> None:
    """Raise unless ``x`` has the image layout ``(..., H, W, C)``."""
    if x.ndim < 3:
        raise ValueError(f"{what} must have shape (..., H, W, C), got shape {x.shape}")


def check_scale(scale: int, minimum: int) -> None:
    """Raise unless ``scale`` is an integer ≥ ``minimum``."""
    if isinstance(scale, bool) or not isinstance(scale, int | np.integer) or scale < minimum:
        raise ValueError(f"scale must be an integer ≥ {minimum}, got {scale!r}")


def check_positive(name: str, value: ArrayLike) -> None:
    """Raise for a non-positive concrete value; traced values are left to the caller."""
    if isinstance(value, jax.core.Tracer):
        return
    if not np.all(np.asarray(value) > 0):
        raise ValueError(f"{name} must be positive, got {value}")


def per_sample(value: ArrayLike, dtype: jnp.dtype) -> Array:
    """A scalar, or one value per sample ``(...,)``, broadcastable against ``(..., H, W, C)``."""
    value = jnp.asarray(value, dtype=dtype)
    return value.reshape((*value.shape, 1, 1, 1)) if value.ndim else value
