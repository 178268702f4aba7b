"""Inpainting: ``A = diag(m)`` with a 0/1 mask ``m`` per image (1 = observed pixel).

A :class:`~suppa_jax.physics.diagonal.DiagonalMask` (exact data step
``(m ⊙ y + ρ z) / (m + ρ)``, Tikhonov by conjugate gradients). The mask is the operator's one
leaf, ``(..., H, W, 1)`` (every channel missing together) or ``(..., H, W, C)``; with leading
dimensions it is one mask per sample of a batch. Masks are drawn on the device by
:func:`pixel_mask` (each pixel missing with probability ``rate``) and :func:`box_mask` (random
rectangles), or given by the user (``Inpainting(my_mask)``).

``initial(y)`` keeps the observed pixels and fills the missing ones by harmonic interpolation
(:func:`harmonic_fill`: the discrete Laplace equation at every missing pixel, the smoothest
fill in ``‖∇x‖²``), solved by conjugate gradients (the operator's ``cg_tol``, ``cg_max_iters``)
from a normalised Gaussian smoothing of the observed pixels, ``(G_σ ⊛ (m ⊙ y)) / (G_σ ⊛ m)``, at
the finest of ``σ = 2, 8, 32`` pixels where the observed weight ``G_σ ⊛ m`` is at least 1e-3
(the image's observed mean where none is). On the 13 training crops (192², noise-free) the
harmonic fill is 0.85 dB (three boxes) and 2.1 dB (70% of the pixels missing) above the
smoothing alone. Both are circular, like the Tikhonov baseline's gradient penalty.
"""

from __future__ import annotations

from typing import Self

import jax
import jax.numpy as jnp
from jax.scipy.sparse.linalg import cg

from suppa_jax.physics.base import check_image
from suppa_jax.physics.diagonal import DiagonalMask
from suppa_jax.physics.matrix_free import per_image
from suppa_jax.typing import Array, ArrayLike

__all__ = ["FILL_SIGMAS", "Inpainting", "box_mask", "harmonic_fill", "pixel_mask"]

#: The Gaussian widths of the starting fill, coarse to fine (pixels).
FILL_SIGMAS = (32.0, 8.0, 2.0)
_MIN_WEIGHT = 1e-3


def pixel_mask(key: Array, shape: tuple[int, int], rate: float) -> Array:
    """``(H, W, 1)`` mask with each pixel missing (0) independently with probability ``rate``."""
    return (jax.random.uniform(key, (*shape, 1)) >= rate).astype(jnp.float32)


def box_mask(key: Array, shape: tuple[int, int], boxes: int, max_size: float) -> Array:
    """``(H, W, 1)`` mask with ``boxes`` missing rectangles (they may overlap). Each side is
    uniform in ``[max_size/2, max_size]`` of the image's side, the position uniform inside it."""
    height, width = shape
    size_key, position_key = jax.random.split(key)
    sides = jnp.array([height, width], jnp.float32)
    extent = jnp.round(sides * max_size * jax.random.uniform(size_key, (boxes, 2), minval=0.5))
    start = jnp.floor((sides - extent) * jax.random.uniform(position_key, (boxes, 2)))
    rows, cols = jnp.arange(height)[:, None], jnp.arange(width)[None, :]

    def inside(start: Array, extent: Array) -> Array:
        in_rows = (rows >= start[0]) & (rows < start[0] + extent[0])
        in_cols = (cols >= start[1]) & (cols < start[1] + extent[1])
        return in_rows & in_cols

    missing = jnp.any(jax.vmap(inside)(start, extent), axis=0)
    return (~missing).astype(jnp.float32)[..., None]


def _gaussian_smooth(x: Array, sigma: float) -> Array:
    """Circular Gaussian smoothing of ``(..., H, W, C)``: ``F⁻¹[exp(−2π²σ²|f|²) · F x]``."""
    height, width = x.shape[-3:-1]
    fy, fx = jnp.fft.fftfreq(height)[:, None], jnp.fft.fftfreq(width)[None, :]
    transfer = jnp.exp(-2 * (jnp.pi * sigma) ** 2 * (fy**2 + fx**2)).astype(x.dtype)
    spectrum = jnp.fft.fft2(x, axes=(-3, -2)) * transfer[..., None]
    return jnp.fft.ifft2(spectrum, axes=(-3, -2)).real


def _laplacian(x: Array) -> Array:
    """``∇ᵀ∇ x``, the circular 5-point Laplacian (negated) of one image ``(H, W, C)``."""
    neighbours = sum(jnp.roll(x, shift, axis) for shift in (1, -1) for axis in (0, 1))
    return 4 * x - neighbours


def harmonic_fill(
    y: ArrayLike, mask: ArrayLike, start: ArrayLike, *, tol: float = 1e-5, max_iters: int = 200
) -> Array:
    """``x = m ⊙ y + (1 − m) ⊙ u`` with ``u = argmin ‖∇x‖²`` (circular forward differences):
    ``(∇ᵀ∇ x)[n] = 0`` at every missing pixel ``n``, the observed ones fixed. Conjugate
    gradients per image on ``P ∇ᵀ∇ P u = −P ∇ᵀ∇ (m ⊙ y)``, ``P = diag(1 − m)``, from
    ``u = P start``, to the relative residual ``tol`` or ``max_iters`` iterations. ``y`` and
    ``start`` ``(..., H, W, C)``; ``mask`` 0/1, broadcastable to them."""
    y, start = jnp.asarray(y), jnp.asarray(start)
    missing = jnp.broadcast_to(1 - jnp.asarray(mask, y.dtype), y.shape)

    def one(y: Array, missing: Array, start: Array) -> Array:
        def normal(u: Array) -> Array:
            return missing * _laplacian(missing * u)

        rhs = -missing * _laplacian((1 - missing) * y)
        u, _ = cg(normal, rhs, x0=missing * start, tol=tol, maxiter=max_iters)
        return (1 - missing) * y + missing * u

    return per_image(one, y, missing, start)


@jax.tree_util.register_pytree_node_class
class Inpainting(DiagonalMask):
    """Inpainting ``A x = m ⊙ x`` (see the module docstring). ``mask``: 0/1, ``(..., H, W, 1)``
    or ``(..., H, W, C)``; the CG settings (Tikhonov only) are static."""

    def __init__(self, mask: ArrayLike, *, cg_tol: float = 1e-5, cg_max_iters: int = 200):
        mask = jnp.asarray(mask)
        if mask.ndim < 3:
            raise ValueError(f"Inpainting: mask must have shape (..., H, W, C), got {mask.shape}")
        if not isinstance(mask, jax.core.Tracer) and not bool(jnp.all((mask == 0) | (mask == 1))):
            raise ValueError("Inpainting: mask values must be 0 (missing) or 1 (observed)")
        self._mask, self.cg_tol, self.cg_max_iters = mask, cg_tol, cg_max_iters

    def tree_flatten(self) -> tuple[tuple[Array], tuple]:
        return (self._mask,), (self.cg_tol, self.cg_max_iters)

    @classmethod
    def tree_unflatten(cls, aux: tuple, children: tuple) -> Self:
        op = object.__new__(cls)
        (op._mask,), (op.cg_tol, op.cg_max_iters) = children, aux
        return op

    def __repr__(self) -> str:
        return f"Inpainting(mask={self._mask.shape})"

    @property
    def observed(self) -> Array:
        """The stored 0/1 mask, ``(..., H, W, 1 or C)`` (leading dimensions: one per sample)."""
        return self._mask

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self._mask.shape[:-3])

    def mask(self, x: Array) -> Array:
        """The mask, in ``x``'s dtype; its spatial size and channels must fit ``x``."""
        check_image("Inpainting", x)
        height, width, channels = self._mask.shape[-3:]
        if (height, width) != x.shape[-3:-1] or channels not in (1, x.shape[-1]):
            raise ValueError(
                f"Inpainting: mask of shape {self._mask.shape} does not fit images of shape "
                f"{x.shape}"
            )
        return self._mask.astype(x.dtype)

    def initial(self, y: ArrayLike) -> Array:
        """Observed pixels kept, missing ones filled by harmonic interpolation started from
        normalised smoothing (module docstring)."""
        y = jnp.asarray(y)
        mask = self.mask(y)
        observed = mask * y
        count = jnp.maximum(jnp.sum(mask, axis=(-3, -2), keepdims=True), 1.0)
        fill = jnp.broadcast_to(jnp.sum(observed, axis=(-3, -2), keepdims=True) / count, y.shape)
        for sigma in FILL_SIGMAS:
            weight = _gaussian_smooth(mask, sigma)
            smooth = _gaussian_smooth(observed, sigma) / jnp.maximum(weight, _MIN_WEIGHT)
            fill = jnp.where(weight >= _MIN_WEIGHT, smooth, fill)
        start = observed + (1 - mask) * fill
        return harmonic_fill(y, mask, start, tol=self.cg_tol, max_iters=self.cg_max_iters)
