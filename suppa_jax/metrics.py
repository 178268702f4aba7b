"""Image-quality metrics on float images in [0, 1], one value per image.

Conventions (the paper reports the first; the SR literature the second):

* :func:`psnr` is the paper's protocol: RGB, no border crop, peak 1.
* :func:`psnr_y` is the super-resolution literature's: the BT.601 luma of :func:`rgb_to_y`
  (studio range, ``Y ∈ [16/255, 235/255]`` as MATLAB's ``rgb2ycbcr``), a border of ``border``
  pixels (the scale) cropped on every side, peak 1.
* :func:`ssim` is ``dm_pix.ssim`` on RGB (Gaussian window 11, σ 1.5, mean over pixels and
  channels), peak 1.
"""

import dm_pix
import jax.numpy as jnp

from suppa_jax.typing import Array

__all__ = ["mse", "psnr", "psnr_y", "rgb_to_y", "ssim"]

#: BT.601 luma weights of ``rgb2ycbcr`` for RGB in [0, 1]: ``Y = 16/255 + (w · RGB)/255``.
Y_WEIGHTS = (65.481, 128.553, 24.966)


def mse(x: Array, reference: Array) -> Array:
    """Mean squared error per image over ``(H, W, C)``: shape ``x.shape[:-3]``."""
    return jnp.mean((x - reference) ** 2, axis=(-3, -2, -1))


def psnr(x: Array, reference: Array, max_value: float = 1.0) -> Array:
    """``10·log10(max² / mse)`` per image, in dB (RGB, no border crop: the paper's protocol)."""
    return 10.0 * jnp.log10(max_value**2 / mse(x, reference))


def rgb_to_y(x: Array) -> Array:
    """BT.601 luma ``Y = 16/255 + (65.481 R + 128.553 G + 24.966 B)/255`` of ``(..., 3)`` RGB
    in [0, 1], keeping a channel axis of size 1 (the SR literature's Y channel)."""
    weights = jnp.asarray(Y_WEIGHTS, x.dtype) / 255.0
    return 16.0 / 255.0 + jnp.sum(x * weights, axis=-1, keepdims=True)


def psnr_y(x: Array, reference: Array, border: int = 0) -> Array:
    """PSNR of the luma (:func:`rgb_to_y`) per image, ``border`` pixels cropped on every side
    (``border = scale`` for super-resolution), peak 1, in dB. A one-channel image is its own
    luma (the PSNR of the cropped gray image)."""
    if border < 0:
        raise ValueError(f"psnr_y: border must be >= 0, got {border}")
    height, width = x.shape[-3:-1]
    if 2 * border >= min(height, width):
        raise ValueError(f"psnr_y: a border of {border} leaves nothing of a {height}×{width} image")
    crop = lambda a: a[..., border : height - border, border : width - border, :]  # noqa: E731
    luma = rgb_to_y if x.shape[-1] == 3 else (lambda a: a)
    return psnr(crop(luma(x)), crop(luma(reference)))


def ssim(x: Array, reference: Array) -> Array:
    """Structural similarity per image (``dm_pix.ssim``: RGB, Gaussian window 11, σ 1.5,
    peak 1, averaged over pixels and channels); ``(..., H, W, C)`` → ``x.shape[:-3]``."""
    return dm_pix.ssim(x, reference, max_val=1.0)
