"""Convolution kernels and bicubic interpolation, as NumPy/JAX arrays.

* :func:`gaussian_kernel`: the paper's deblurring PSF (``σ = 2``, 11×11).
* :func:`bicubic_kernel`: the point-spread function of bicubic downsampling without
  antialiasing, in the centred-kernel convention of :mod:`suppa_jax.physics.circulant`.
* :func:`bicubic_upsample`: the super-resolution starting estimate.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from suppa_jax.physics.base import check_image, check_scale
from suppa_jax.typing import Array, ArrayLike

__all__ = ["bicubic_kernel", "bicubic_upsample", "cubic_weight", "gaussian_kernel"]


def gaussian_kernel(sigma: float = 2.0, size: int | tuple[int, int] = 11) -> np.ndarray:
    """Normalised, separable Gaussian kernel ``k[i, j] ∝ exp(−(i² + j²) / 2σ²)``.

    Taps sit at integer offsets symmetric about the kernel's middle: ``−5..5`` for size 11 (the
    paper's deblurring setting is ``sigma=2``, 11×11). Returns a float64 NumPy array that sums
    to 1; convert with the operator (it follows the JAX default dtype).
    """
    if sigma <= 0:
        raise ValueError(f"gaussian_kernel: sigma must be positive, got {sigma}")
    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ValueError(f"gaussian_kernel: size must be positive, got {size}")

    def taps(n: int) -> np.ndarray:
        t = np.arange(n) - (n - 1) / 2
        g = np.exp(-(t**2) / (2 * sigma**2))
        return g / g.sum()

    return np.outer(taps(height), taps(width))


def cubic_weight(distance: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution kernel ``W_a(t)``.

    ``W_a(t) = (a+2)|t|³ − (a+3)|t|² + 1`` for ``|t| ≤ 1``,
    ``a|t|³ − 5a|t|² + 8a|t| − 4a`` for ``1 < |t| < 2``, and 0 beyond. ``a = −0.75`` is
    PyTorch's and OpenCV's bicubic, ``a = −0.5`` MATLAB's.
    """
    t = np.abs(np.asarray(distance, dtype=np.float64))
    inner = ((a + 2) * t - (a + 3)) * t**2 + 1
    outer = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, inner, np.where(t < 2, outer, 0.0))


def bicubic_kernel(scale: int, a: float = -0.75, antialias: bool = False) -> np.ndarray:
    """The point-spread function of bicubic downsampling by ``scale``.

    LR pixel ``i`` is the cubic interpolant at HR coordinate ``s·i + δ`` with ``δ = (s − 1)/2``
    (``align_corners=False``). Written as ``(k ⊛ x)[s·i]`` with the centred-kernel convention of
    this module, the source pixel ``s·i + d`` gets weight ``W_a(d − δ)``, stored at tap
    ``j = c − d``. The kernel is the smallest odd square that holds every non-zero tap:
    5×5 for ×2 (taps ``2i−1..2i+2``: −0.09375, 0.59375, 0.59375, −0.09375 for ``a = −0.75``),
    5×5 for ×3 (a single 1 at ``3i+1``), 7×7 for ×4 (taps ``4i..4i+3``). Float64 NumPy array.

    ``antialias=True``: the cubic widened by the scale, ``W_a((d − δ)/s)/s`` over
    ``|d − δ| < 2s``, then normalised to sum 1: MATLAB's ``imresize(x, 1/s, "bicubic")`` (with
    ``a = −0.5``) and Pillow's ``BICUBIC`` reduction, the degradation of the published SR tables
    (9×9 for ×2, 13×13 for ×3, 19×19 for ×4).
    """
    check_scale(scale, minimum=1)
    delta = (scale - 1) / 2
    reach = 2 * scale if antialias else 2
    radius = max(math.ceil(delta + reach) - 1, -(math.floor(delta - reach) + 1))
    offsets = radius - np.arange(2 * radius + 1)  # d = c − j
    if antialias:
        taps = cubic_weight((offsets - delta) / scale, a) / scale
        taps = taps / taps.sum()
    else:
        taps = cubic_weight(offsets - delta, a)
    return np.outer(taps, taps)


# --------------------------------------------------------------------------------------------
# Bicubic upsampling (the SR initial estimate)
# --------------------------------------------------------------------------------------------


def _upsample_taps(size: int, scale: int, a: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights, each ``(size·scale, 4)``, of clamped-border bicubic upsampling."""
    source = (np.arange(size * scale) + 0.5) / scale - 0.5
    base = np.floor(source).astype(np.int64)
    offsets = np.arange(-1, 3)
    weights = cubic_weight(source[:, None] - (base[:, None] + offsets), a)
    indices = np.clip(base[:, None] + offsets, 0, size - 1)
    return indices, weights


def _interpolate_axis(x: Array, axis: int, scale: int, a: float) -> Array:
    indices, weights = _upsample_taps(x.shape[axis], scale, a)
    gathered = jnp.take(x, indices, axis=axis)  # axis → (out, 4)
    weights = jnp.asarray(weights, dtype=x.dtype)
    weights = weights.reshape(weights.shape + (1,) * (x.ndim - 1 - (axis % x.ndim)))
    return jnp.sum(gathered * weights, axis=(axis % x.ndim) + 1)


def bicubic_upsample(y: ArrayLike, scale: int, a: float = -0.75) -> Array:
    """Bicubic upsampling of ``(..., h, w, C)`` images by an integer factor, clamped border.

    HR pixel ``n`` is the cubic interpolant (Keys, parameter ``a``) at LR coordinate
    ``(n + 0.5)/s − 0.5`` with out-of-range taps clamped to the edge; with ``a = −0.75`` it equals
    ``F.interpolate(y, scale_factor=s, mode="bicubic", align_corners=False)`` of PyTorch.
    """
    y = jnp.asarray(y)
    check_image("bicubic_upsample: y", y)
    check_scale(scale, minimum=1)
    rows = _interpolate_axis(y, y.ndim - 3, scale, a)
    return _interpolate_axis(rows, y.ndim - 2, scale, a)
