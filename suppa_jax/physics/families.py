"""Families of forward models: an operator drawn per example, on the device, inside the step.

An :class:`OperatorFamily` maps a PRNG key (and the image size) to one example's operator;
:meth:`OperatorFamily.draw_batch` maps one key per example to a *batched* operator, whose leaves
carry the batch's leading dimension (``jax.vmap`` of :meth:`~OperatorFamily.draw`), so that a
solver applies example ``i``'s operator to example ``i`` by broadcasting, spectra included
(computed once per step, on the device). The families:

* :class:`Fixed`: one operator for every example (the paper's tasks);
* :class:`BlurFamily`: blur with a kernel per example: isotropic Gaussians (σ uniform in a
  range), anisotropic Gaussians (each axis's σ uniform in the range, rotated by a uniform angle)
  and motion-like kernels (:func:`motion_kernel`), in equal parts; circular (``Blur``, exact data
  step) or with a camera's boundary (``PaddedBlur``, CG data step);
* :class:`MaskFamily`: inpainting with a mask per example (random pixels, or random boxes).

Key ``i`` is derived from example ``i``'s seed (:func:`suppa_jax.physics.measurement.measure`),
so an example's operator depends on that example only, whatever the batch split.
"""

from __future__ import annotations

import abc
import math

import jax
import jax.numpy as jnp

from suppa_jax.physics.base import LinearOperator
from suppa_jax.physics.circulant import Blur
from suppa_jax.physics.inpainting import Inpainting, box_mask, pixel_mask
from suppa_jax.physics.matrix_free import BOUNDARIES, PaddedBlur
from suppa_jax.typing import Array

__all__ = [
    "BLUR_KINDS",
    "MASK_KINDS",
    "BlurFamily",
    "Fixed",
    "MaskFamily",
    "OperatorFamily",
    "as_family",
    "gaussian_kernel_2d",
    "motion_kernel",
]

#: The kernels :class:`BlurFamily` draws from.
BLUR_KINDS = ("gaussian", "anisotropic", "motion")
#: The masks :class:`MaskFamily` draws.
MASK_KINDS = ("pixels", "boxes")
_MOTION_POINTS = 64


class OperatorFamily(abc.ABC):
    """A distribution over operators of one kind (see the module docstring)."""

    #: Image side over measurement side, the same for every operator of the family.
    scale: int = 1

    @abc.abstractmethod
    def draw(self, key: Array, image_shape: tuple[int, int]) -> LinearOperator:
        """One example's operator for ``(H, W)`` images. Pure and traceable."""

    def draw_batch(self, keys: Array, image_shape: tuple[int, int]) -> LinearOperator:
        """One operator per key ``(B,)``, batched: leaves with a leading axis of length ``B``."""
        return jax.vmap(lambda key: self.draw(key, image_shape))(keys)

    @property
    def fixed(self) -> LinearOperator | None:
        """The operator, when the family has only one (``None`` otherwise)."""
        return None


class Fixed(OperatorFamily):
    """The family of one operator: every draw is ``op``, and a batch shares it (unbatched)."""

    def __init__(self, op: LinearOperator) -> None:
        self.op, self.scale = op, op.scale

    def __repr__(self) -> str:
        return f"Fixed({self.op!r})"

    def draw(self, key: Array, image_shape: tuple[int, int]) -> LinearOperator:
        del key, image_shape
        return self.op

    def draw_batch(self, keys: Array, image_shape: tuple[int, int]) -> LinearOperator:
        del keys, image_shape
        return self.op

    @property
    def fixed(self) -> LinearOperator:
        return self.op


def as_family(physics: LinearOperator | OperatorFamily) -> OperatorFamily:
    """``physics`` as a family: an operator becomes :class:`Fixed`."""
    return physics if isinstance(physics, OperatorFamily) else Fixed(physics)


def gaussian_kernel_2d(sigmas: Array, angle: Array, size: int) -> Array:
    """``size × size`` normalised Gaussian ``∝ exp(−½ tᵀ Σ⁻¹ t)``, ``Σ = R diag(σ₁², σ₂²) Rᵀ``
    with ``R`` the rotation by ``angle``; taps at integer offsets about the middle. Traceable."""
    t = jnp.arange(size) - (size - 1) / 2
    rows, cols = jnp.meshgrid(t, t, indexing="ij")
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    along, across = cos * rows + sin * cols, -sin * rows + cos * cols
    kernel = jnp.exp(-0.5 * ((along / sigmas[0]) ** 2 + (across / sigmas[1]) ** 2))
    return kernel / jnp.sum(kernel)


def motion_kernel(key: Array, size: int, length: Array) -> Array:
    """A motion-like ``size × size`` kernel: a random smooth trajectory of about ``length``
    pixels, rasterised with bilinear weights and normalised to sum 1. Traceable.

    The trajectory is 64 points of a walk whose velocity turns by small random angles and
    changes speed smoothly (a camera shake in the spirit of Boracchi and Foi, 2012), scaled so
    that its largest extent along either axis is ``length`` (at most ``size − 2``), and centred.
    """
    heading_key, turn_key, speed_key = jax.random.split(key, 3)
    heading = jax.random.uniform(heading_key, (), minval=0.0, maxval=2 * math.pi)
    turns = jnp.cumsum(0.25 * jax.random.normal(turn_key, (_MOTION_POINTS,)))
    speeds = jnp.exp(jnp.cumsum(0.1 * jax.random.normal(speed_key, (_MOTION_POINTS,))))
    angles = heading + turns
    path = jnp.cumsum(speeds[:, None] * jnp.stack([jnp.sin(angles), jnp.cos(angles)], -1), 0)
    path = path - (jnp.max(path, 0) + jnp.min(path, 0)) / 2
    extent = jnp.maximum(jnp.max(jnp.ptp(path, axis=0)), 1e-6)
    path = path * (jnp.minimum(length, size - 2) / extent) + (size - 1) / 2
    corner = jnp.floor(path)
    frac = path - corner
    kernel = jnp.zeros((size, size), path.dtype)
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        weight = (frac[:, 0] if dr else 1 - frac[:, 0]) * (frac[:, 1] if dc else 1 - frac[:, 1])
        rows = jnp.clip(corner[:, 0] + dr, 0, size - 1).astype(jnp.int32)
        cols = jnp.clip(corner[:, 1] + dc, 0, size - 1).astype(jnp.int32)
        kernel = kernel.at[rows, cols].add(weight)
    return kernel / jnp.sum(kernel)


class BlurFamily(OperatorFamily):
    """Blur with ``k`` drawn per example from ``kinds`` (of :data:`BLUR_KINDS`, equally likely):
    ``σ`` uniform in ``sigma_range`` for the Gaussians, the length uniform in ``length_range``
    for motion; every kernel ``size × size``. ``boundary`` ``"circular"`` draws ``Blur(k)``, any
    other of :data:`~suppa_jax.physics.matrix_free.BOUNDARIES` ``PaddedBlur(k, boundary)`` with
    the CG settings ``cg_tol`` and ``cg_max_iters``."""

    def __init__(
        self,
        kinds: tuple[str, ...] = BLUR_KINDS,
        *,
        sigma_range: tuple[float, float] = (0.5, 3.0),
        length_range: tuple[float, float] = (5.0, 15.0),
        size: int = 25,
        boundary: str = "circular",
        cg_tol: float = 1e-5,
        cg_max_iters: int = 200,
    ) -> None:
        unknown = [k for k in kinds if k not in BLUR_KINDS]
        if not kinds or unknown:
            raise ValueError(f"BlurFamily: kinds must be some of {list(BLUR_KINDS)}, got {kinds}")
        for name, (low, high) in (("sigma_range", sigma_range), ("length_range", length_range)):
            if not 0 < low <= high:
                raise ValueError(f"BlurFamily: {name} must be 0 < low <= high, got {low, high}")
        if size < 3:
            raise ValueError(f"BlurFamily: size must be >= 3, got {size}")
        if boundary not in BOUNDARIES:
            raise ValueError(
                f"BlurFamily: boundary must be one of {list(BOUNDARIES)}, got {boundary!r}"
            )
        self.kinds, self.sigma_range, self.length_range = tuple(kinds), sigma_range, length_range
        self.size, self.boundary = size, boundary
        self.cg_tol, self.cg_max_iters = cg_tol, cg_max_iters

    def __repr__(self) -> str:
        return (
            f"BlurFamily({self.kinds}, sigma_range={self.sigma_range}, "
            f"length_range={self.length_range}, size={self.size}, boundary={self.boundary!r})"
        )

    def kernel(self, key: Array) -> Array:
        """One kernel of the family."""
        kind_key, key = jax.random.split(key)
        low, high = self.sigma_range

        def isotropic(key: Array) -> Array:
            sigma = jax.random.uniform(key, (), minval=low, maxval=high)
            return gaussian_kernel_2d(jnp.stack([sigma, sigma]), jnp.zeros(()), self.size)

        def anisotropic(key: Array) -> Array:
            sigma_key, angle_key = jax.random.split(key)
            sigmas = jax.random.uniform(sigma_key, (2,), minval=low, maxval=high)
            angle = jax.random.uniform(angle_key, (), maxval=math.pi)
            return gaussian_kernel_2d(sigmas, angle, self.size)

        def motion(key: Array) -> Array:
            length_key, path_key = jax.random.split(key)
            shortest, longest = self.length_range
            length = jax.random.uniform(length_key, (), minval=shortest, maxval=longest)
            return motion_kernel(path_key, self.size, length)

        makers = {"gaussian": isotropic, "anisotropic": anisotropic, "motion": motion}
        branches = [makers[k] for k in self.kinds]
        index = jax.random.randint(kind_key, (), 0, len(branches))
        return jax.lax.switch(index, branches, key)

    def draw(self, key: Array, image_shape: tuple[int, int]) -> Blur | PaddedBlur:
        del image_shape
        kernel = self.kernel(key)
        if self.boundary == "circular":
            return Blur(kernel)
        return PaddedBlur(kernel, self.boundary, cg_tol=self.cg_tol, cg_max_iters=self.cg_max_iters)


class MaskFamily(OperatorFamily):
    """Inpainting with a mask per example: ``"pixels"`` (each missing with probability
    ``rate``) or ``"boxes"`` (``boxes`` rectangles of sides up to ``box_size`` of the image's)."""

    def __init__(
        self, kind: str = "pixels", *, rate: float = 0.5, boxes: int = 3, box_size: float = 0.25
    ) -> None:
        if kind not in MASK_KINDS:
            raise ValueError(f"MaskFamily: kind must be one of {list(MASK_KINDS)}, got {kind!r}")
        if not 0 <= rate < 1:
            raise ValueError(f"MaskFamily: rate must be in [0, 1), got {rate}")
        if boxes < 1 or not 0 < box_size < 1:
            raise ValueError(
                f"MaskFamily: boxes must be >= 1 and box_size in (0, 1), got {boxes}, {box_size}"
            )
        self.kind, self.rate, self.boxes, self.box_size = kind, rate, boxes, box_size

    def __repr__(self) -> str:
        if self.kind == "pixels":
            return f"MaskFamily('pixels', rate={self.rate})"
        return f"MaskFamily('boxes', boxes={self.boxes}, box_size={self.box_size})"

    def draw(self, key: Array, image_shape: tuple[int, int]) -> Inpainting:
        if self.kind == "pixels":
            return Inpainting(pixel_mask(key, image_shape, self.rate))
        return Inpainting(box_mask(key, image_shape, self.boxes, self.box_size))
