"""Demosaicing: a Bayer colour filter array keeps one colour per pixel.

``A = diag(m)`` (:class:`~suppa_jax.physics.diagonal.DiagonalMask`: ``Aᵀ = A``, exact data step
``(m ⊙ y + ρ z) / (m + ρ)``, Tikhonov by conjugate gradients) on RGB images ``(..., H, W, 3)``,
where ``m`` is the 2×2-periodic Bayer mask of one of the four phases (:data:`PATTERNS`: the
colours of the top-left 2×2 block, row by row; ``"rggb"`` has red at ``(0, 0)``, green at
``(0, 1)`` and ``(1, 0)``, blue at ``(1, 1)``). The measurement keeps the RGB layout with zeros
where a colour is not sensed. ``initial(y)`` is bilinear demosaicing: each colour's samples
convolved (circularly) with the 3×3 kernel that averages the nearest samples of that colour,
``[[0,1,0],[1,4,1],[0,1,0]]/4`` for green and ``[[1,2,1],[2,4,2],[1,2,1]]/4`` for red and blue;
sensed values are kept.
"""

from __future__ import annotations

from typing import Self

import jax
import jax.numpy as jnp
import numpy as np

from suppa_jax.physics.base import check_image
from suppa_jax.physics.diagonal import DiagonalMask
from suppa_jax.typing import Array, ArrayLike

__all__ = ["PATTERNS", "Mosaic", "bayer_mask"]

#: The four Bayer phases, by the colours of the top-left 2×2 block (row by row).
PATTERNS = ("rggb", "grbg", "gbrg", "bggr")
_CHANNEL = {"r": 0, "g": 1, "b": 2}
_GREEN = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4
_RED_BLUE = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4


def bayer_mask(pattern: str, height: int, width: int) -> np.ndarray:
    """The ``(H, W, 3)`` 0/1 mask of ``pattern``: exactly one colour per pixel."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown Bayer pattern {pattern!r}; use one of {list(PATTERNS)}")
    block = np.zeros((2, 2, 3))
    for position, colour in enumerate(pattern):
        block[position // 2, position % 2, _CHANNEL[colour]] = 1
    return np.tile(block, (-(-height // 2), -(-width // 2), 1))[:height, :width]


def _circular_filter(x: Array, kernel: np.ndarray) -> Array:
    """``Σ_ij k[i, j] x[n − i + 1, m − j + 1]`` with circular indexing, for a 3×3 kernel."""
    return sum(
        kernel[i, j] * jnp.roll(x, (i - 1, j - 1), axis=(-3, -2))
        for i in range(3)
        for j in range(3)
        if kernel[i, j]
    )


@jax.tree_util.register_pytree_node_class
class Mosaic(DiagonalMask):
    """Bayer mosaicing ``A x = m ⊙ x`` (see the module docstring); ``pattern`` is static.

    Images must have 3 channels, of any size (with an odd height or width, the bilinear start
    is off on the last row or column, where the circular filter meets the same phase again).
    """

    def __init__(self, pattern: str = "rggb", *, cg_tol: float = 1e-5, cg_max_iters: int = 200):
        bayer_mask(pattern, 2, 2)  # checks the pattern
        self.pattern, self.cg_tol, self.cg_max_iters = pattern, cg_tol, cg_max_iters

    def tree_flatten(self) -> tuple[tuple, tuple]:
        return (), (self.pattern, self.cg_tol, self.cg_max_iters)

    @classmethod
    def tree_unflatten(cls, aux: tuple, children: tuple) -> Self:
        pattern, cg_tol, cg_max_iters = aux
        return cls(pattern, cg_tol=cg_tol, cg_max_iters=cg_max_iters)

    def __repr__(self) -> str:
        return f"Mosaic({self.pattern!r})"

    def mask(self, x: Array) -> Array:
        """The mask for images of ``x``'s size, in ``x``'s dtype."""
        check_image("Mosaic", x)
        height, width, channels = x.shape[-3:]
        if channels != 3:
            raise ValueError(f"Mosaic: images must be RGB (..., H, W, 3), got shape {x.shape}")
        return jnp.asarray(bayer_mask(self.pattern, height, width), x.dtype)

    def initial(self, y: ArrayLike) -> Array:
        """Bilinear demosaicing of ``y`` (module docstring)."""
        y = jnp.asarray(y)
        sensed = self.mask(y) * y
        return jnp.concatenate(
            [
                _circular_filter(sensed[..., c : c + 1], _GREEN if c == 1 else _RED_BLUE)
                for c in range(3)
            ],
            axis=-1,
        )
