"""Image-quality metrics on float images in [0, 1], one value per image."""

import jax
import jax.numpy as jnp

Array = jax.Array

__all__ = ["mse", "psnr"]


def mse(x: Array, reference: Array) -> Array:
    """Mean squared error per image over ``(H, W, C)``: shape ``x.shape[:-3]``."""
    return jnp.mean((x - reference) ** 2, axis=(-3, -2, -1))


def psnr(x: Array, reference: Array, max_value: float = 1.0) -> Array:
    """``10·log10(max² / mse)`` per image, in dB (RGB, no border crop: the paper's protocol)."""
    return 10.0 * jnp.log10(max_value**2 / mse(x, reference))
