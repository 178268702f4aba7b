"""Forward models known only by their ``forward``: exact adjoint by transposition, data step by CG.

Any linear ``A`` written in ``jnp`` becomes a :class:`~suppa_jax.physics.base.LinearOperator`:

* ``adjoint(y) = Aᵀ y`` is ``jax.linear_transpose`` of ``forward`` (exact, no hand-written
  code to get wrong), unless one is given;
* the ADMM data step ``argmin_x ½‖y − A x‖² + ρ/2‖x − z‖²`` solves its normal equations
  ``(AᵀA + ρI) x = Aᵀy + ρz`` (symmetric positive definite for ``ρ > 0``) by conjugate
  gradients, warm-started at ``z``, for each image separately, until the residual is below
  ``cg_tol`` relative to the right-hand side or after ``cg_max_iters`` iterations;
* derivatives go through the solution, not through the iterations: ``jax.scipy.sparse.linalg.cg``
  is built on ``lax.custom_linear_solve``, so the backward pass solves one more system with the
  same matrix (implicit differentiation) and keeps no iterate. Memory does not grow with the CG
  iterations, and SUPPA, DEQ and JFB gradients are exact to the solver's tolerance;
* ``quadratic_solve(y, penalty)``, the Tikhonov baseline's ``(AᵀA + Q) x = Aᵀy`` for a circulant
  ``Q`` given by its spectrum, by the same CG.

:class:`MatrixFree` wraps a user's function of one image; :class:`PaddedBlur` is the first client,
a blur (then decimation) with the boundary a camera has (``"valid"``, ``"reflect"``, ``"zero"``),
or ``"circular"``, where it equals :class:`~suppa_jax.physics.circulant.Blur` /
:class:`~suppa_jax.physics.circulant.SuperResolution` and its CG path can be checked against
their closed forms.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, ClassVar, Self

import jax
import jax.numpy as jnp
from jax.scipy.sparse.linalg import cg

from suppa_jax.physics.base import (
    LinearOperator,
    check_image,
    check_positive,
    check_scale,
)
from suppa_jax.physics.circulant import Blur
from suppa_jax.physics.kernels import bicubic_upsample
from suppa_jax.typing import Array, ArrayLike

__all__ = ["BOUNDARIES", "ConjugateGradientOperator", "MatrixFree", "PaddedBlur"]

#: The boundaries of :class:`PaddedBlur`: what the kernel sees beyond the image's edge.
BOUNDARIES = ("valid", "reflect", "zero", "circular")


def per_image(fn: Callable[..., Array], *arrays: Any) -> Array:
    """``fn`` applied to each image ``(H, W, C)`` of ``arrays`` (``(..., H, W, C)`` each, with
    the same leading dimensions; scalars per image ``(...,)`` allowed; after the first, pytrees
    whose every leaf has those leading dimensions, such as a batched operator), stacked back."""
    lead = arrays[0].shape[:-3]
    count = math.prod(lead)
    flat = jax.tree.map(lambda a: a.reshape((count, *a.shape[len(lead) :])), arrays)
    out = jax.vmap(fn)(*flat)
    return out.reshape((*lead, *out.shape[1:]))


def circulant_penalty(
    penalty: ArrayLike, image_shape: tuple[int, int], dtype: jnp.dtype
) -> Callable[[Array], Array]:
    """``x ↦ Q x`` on one image ``(H, W, C)`` for the circulant ``Q`` of real spectrum
    ``penalty`` ``(H, W)`` (checked against ``image_shape``)."""
    penalty = jnp.asarray(penalty, dtype)
    if penalty.shape != tuple(image_shape):
        raise ValueError(
            f"quadratic_solve: penalty of shape {penalty.shape} does not match the image "
            f"size {tuple(image_shape)}"
        )

    def apply(x: Array) -> Array:
        spectrum = jnp.fft.fft2(x, axes=(0, 1)) * penalty[..., None]
        return jnp.fft.ifft2(spectrum, axes=(0, 1)).real

    return apply


class ConjugateGradientOperator(LinearOperator):
    """A :class:`LinearOperator` whose data step (and Tikhonov solve) is conjugate gradients on
    the normal equations, and whose adjoint is the transpose of ``forward`` (see the module
    docstring). Subclasses give ``forward``, ``initial`` and, when the measurement is not the
    image decimated by ``scale``, ``image_shape``.

    ``cg_tol`` (relative residual) and ``cg_max_iters`` are static.
    """

    cg_tol: float
    cg_max_iters: int

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading dimensions of a batched operator (one per sample), ``()`` for one: what
        :meth:`_per_image` pairs with the images' trailing leading dimensions."""
        return ()

    def _per_image(self, fn: Callable[..., Array], *arrays: Array) -> Array:
        """``fn(op, *images)`` for each image of ``arrays``, ``op`` this operator or, when it is
        batched, the image's own (its batch dimensions the trailing ones of the images')."""
        batch = self.batch_shape
        if not batch:
            return per_image(functools.partial(fn, self), *arrays)
        lead = arrays[0].shape[:-3]
        extra = lead[: len(lead) - len(batch)]  # the images' dimensions the operator lacks
        if (*extra, *batch) != lead:
            raise ValueError(
                f"{self!r}: an operator batched over {batch} and images of leading shape {lead}"
            )
        ops = jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (*extra, *leaf.shape)), self)
        return per_image(lambda *args: fn(args[-1], *args[:-1]), *arrays, ops)

    def _image_like(self, y: Array) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((*y.shape[:-3], *self.image_shape(y), y.shape[-1]), y.dtype)

    def adjoint(self, y: ArrayLike) -> Array:
        """``Aᵀ y``: ``jax.linear_transpose`` of :meth:`forward` (exact)."""
        y = jnp.asarray(y)
        check_image("adjoint: y", y)
        (x,) = jax.linear_transpose(self.forward, self._image_like(y))(y)
        return x

    def _normal_solve(self, matvec: Callable[[Array], Array], rhs: Array, start: Array) -> Array:
        solution, _ = cg(matvec, rhs, x0=start, tol=self.cg_tol, maxiter=self.cg_max_iters)
        return solution

    def data_prox(self, z: ArrayLike, y: ArrayLike, rho: ArrayLike) -> Array:
        """``argmin_x ½‖y − A x‖² + ρ/2‖x − z‖²``: CG on ``(AᵀA + ρI) x = Aᵀy + ρz`` from
        ``x = z``, per image; ``rho`` a positive scalar or one value per sample."""
        z, y = jnp.asarray(z), jnp.asarray(y)
        check_image("data_prox: z", z)
        if self._image_like(y).shape != z.shape:
            raise ValueError(f"data_prox: y of shape {y.shape} does not match z of shape {z.shape}")
        check_positive("data_prox: rho", rho)
        rho = jnp.broadcast_to(jnp.asarray(rho, z.dtype), z.shape[:-3])

        def one(op: Self, z: Array, y: Array, rho: Array) -> Array:
            def normal(x: Array) -> Array:
                return op.adjoint(op.forward(x)) + rho * x

            return op._normal_solve(normal, op.adjoint(y) + rho * z, z)

        return self.prepare(self.image_shape(y))._per_image(one, z, y, rho)

    def quadratic_solve(self, y: ArrayLike, penalty: ArrayLike) -> Array:
        """``argmin_x ½‖y − A x‖² + ½ xᵀ Q x`` for a circulant ``Q ⪰ 0`` given by its real
        spectrum ``penalty`` ``(H, W)``: CG on ``(AᵀA + Q) x = Aᵀy`` from ``x = Aᵀy``."""
        y = jnp.asarray(y)
        check_image("quadratic_solve: y", y)
        image_shape = self.image_shape(y)
        apply_penalty = circulant_penalty(penalty, image_shape, y.dtype)

        def one(op: Self, y: Array) -> Array:
            def normal(x: Array) -> Array:
                return op.adjoint(op.forward(x)) + apply_penalty(x)

            rhs = op.adjoint(y)
            return op._normal_solve(normal, rhs, rhs)

        return self.prepare(image_shape)._per_image(one, y)


@jax.tree_util.register_pytree_node_class
class MatrixFree(ConjugateGradientOperator):
    """A forward model from a user's function of one image.

    Args:
      forward: ``A``, linear, on one image ``(H, W, C) → (h, w, C')``, written in ``jnp``;
        batches are mapped over it.
      adjoint: ``Aᵀ`` on one measurement, when a faster one than the transpose is at hand
        (it is trusted: check it with ``⟨A u, v⟩ = ⟨u, Aᵀ v⟩``).
      initial: ``x₀`` from one measurement (default ``Aᵀ y``).
      image_shape: ``(h, w) → (H, W)``, the image size behind a measurement size (default
        ``(s·h, s·w)`` with ``s = scale``).
      scale: image side over measurement side (reported to the solvers, e.g. for ``ρ = 0.1·s²``).
      cg_tol, cg_max_iters: the conjugate-gradient data step's relative tolerance and cap.

    The functions are static (part of the pytree's structure), so a jitted solver compiles once
    per operator; arrays they close over are constants, not differentiated.
    """

    def __init__(
        self,
        forward: Callable[[Array], Array],
        *,
        adjoint: Callable[[Array], Array] | None = None,
        initial: Callable[[Array], Array] | None = None,
        image_shape: Callable[[tuple[int, int]], tuple[int, int]] | None = None,
        scale: int = 1,
        cg_tol: float = 1e-5,
        cg_max_iters: int = 200,
    ) -> None:
        check_scale(scale, minimum=1)
        self._forward, self._adjoint, self._initial = forward, adjoint, initial
        self._image_shape = image_shape
        self.scale, self.cg_tol, self.cg_max_iters = scale, cg_tol, cg_max_iters

    def tree_flatten(self) -> tuple[tuple, tuple]:
        aux = (self._forward, self._adjoint, self._initial, self._image_shape)
        return (), (*aux, self.scale, self.cg_tol, self.cg_max_iters)

    @classmethod
    def tree_unflatten(cls, aux: tuple, children: tuple) -> Self:
        forward, adjoint, initial, image_shape, scale, tol, max_iters = aux
        return cls(
            forward,
            adjoint=adjoint,
            initial=initial,
            image_shape=image_shape,
            scale=scale,
            cg_tol=tol,
            cg_max_iters=max_iters,
        )

    def image_shape(self, y: Array) -> tuple[int, int]:
        if self._image_shape is None:
            return super().image_shape(y)
        return tuple(self._image_shape(tuple(y.shape[-3:-1])))

    def forward(self, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        check_image("forward: x", x)
        return per_image(self._forward, x)

    def adjoint(self, y: ArrayLike) -> Array:
        if self._adjoint is None:
            return super().adjoint(y)
        y = jnp.asarray(y)
        check_image("adjoint: y", y)
        return per_image(self._adjoint, y)

    def initial(self, y: ArrayLike) -> Array:
        y = jnp.asarray(y)
        check_image("initial: y", y)
        return self.adjoint(y) if self._initial is None else per_image(self._initial, y)


@jax.tree_util.register_pytree_node_class
class PaddedBlur(ConjugateGradientOperator):
    """``A x = (k ⊛ pad(x))[s·i, s·j]``: a blur with a non-circular boundary, then decimation.

    The convolution is that of :mod:`~suppa_jax.physics.circulant` (kernel centred at
    ``c = (kh // 2, kw // 2)``), with the image extended beyond its edge by ``boundary``:

    * ``"valid"``: not at all; only the pixels the whole kernel covers are measured, so ``y`` is
      smaller than ``x`` by ``kh − 1, kw − 1`` (before decimation): what a sensor records of a
      scene that goes on past its edges;
    * ``"reflect"``: mirrored about the edge pixel (NumPy's ``"reflect"``), ``y`` the image size;
    * ``"zero"``: zeros;
    * ``"circular"``: periodic, equal to :class:`~suppa_jax.physics.circulant.Blur` (``s = 1``)
      and :class:`~suppa_jax.physics.circulant.SuperResolution` with the same kernel.

    ``initial(y)``: bicubic upsampling for ``s > 1`` (Keys' parameter ``a``), then for
    ``"valid"`` the missing border filled from the nearest measured pixel. The kernel is a leaf,
    ``(kh, kw)`` or ``(..., kh, kw)`` for one per sample of a batch with those leading
    dimensions (``jax.vmap`` of the constructor makes one; the CG solves then pair each image
    with its own kernel); ``boundary``, ``scale``, ``a`` and the CG settings are static.
    """

    kernel: Array
    blur: Blur  # the circular blur on the padded grid (with its spectrum once prepared)
    _static_fields: ClassVar[tuple[str, ...]] = (
        "boundary",
        "scale",
        "interpolation_a",
        "cg_tol",
        "cg_max_iters",
    )

    def __init__(
        self,
        kernel: ArrayLike,
        boundary: str = "reflect",
        scale: int = 1,
        *,
        a: float = -0.75,
        cg_tol: float = 1e-5,
        cg_max_iters: int = 200,
    ) -> None:
        kernel = jnp.asarray(kernel)
        if kernel.ndim < 2 or 0 in kernel.shape:
            raise ValueError(
                f"kernel must be a non-empty (kh, kw) array, or (..., kh, kw) for one per sample; "
                f"got shape {kernel.shape}"
            )
        if boundary not in BOUNDARIES:
            raise ValueError(f"unknown boundary {boundary!r}; use one of {list(BOUNDARIES)}")
        check_scale(scale, minimum=1)
        if not jnp.issubdtype(kernel.dtype, jnp.floating):
            kernel = kernel.astype(jnp.result_type(float))
        self.kernel, self.boundary, self.scale, self.interpolation_a = kernel, boundary, scale, a
        self.cg_tol, self.cg_max_iters = cg_tol, cg_max_iters
        self.blur = Blur(kernel)

    def tree_flatten(self) -> tuple[tuple[Array, Blur], tuple]:
        return (self.kernel, self.blur), tuple(getattr(self, f) for f in self._static_fields)

    @classmethod
    def tree_unflatten(cls, aux: tuple, children: tuple) -> Self:
        op = object.__new__(cls)
        op.kernel, op.blur = children
        for field, value in zip(cls._static_fields, aux, strict=True):
            setattr(op, field, value)
        return op

    def __repr__(self) -> str:
        return (
            f"PaddedBlur(kernel={self.kernel.shape}, boundary={self.boundary!r}, "
            f"scale={self.scale})"
        )

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.kernel.shape[:-2])

    @property
    def _kernel_size(self) -> tuple[int, int]:
        return tuple(self.kernel.shape[-2:])

    def _margins(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Pixels the kernel reaches before and after each pixel, per axis: the true
        convolution ``Σ_j k[j] x[n − j + c]`` reads ``x[n − (kh − 1 − c) … n + c]``."""
        kh, kw = self._kernel_size
        return (kh - 1 - kh // 2, kh // 2), (kw - 1 - kw // 2, kw // 2)

    def image_shape(self, y: Array) -> tuple[int, int]:
        height, width = y.shape[-3] * self.scale, y.shape[-2] * self.scale
        if self.boundary == "valid":
            kh, kw = self._kernel_size
            return height + kh - 1, width + kw - 1
        return height, width

    def _measured_shape(self, height: int, width: int) -> tuple[int, int]:
        kh, kw = self._kernel_size
        if self.boundary == "valid":
            height, width = height - kh + 1, width - kw + 1
            if height < 1 or width < 1:
                raise ValueError(f"forward: kernel {kh}×{kw} is larger than the image")
        elif kh > height or kw > width:
            raise ValueError(f"forward: kernel {kh}×{kw} is larger than the image")
        if height % self.scale or width % self.scale:
            what = "image size less the kernel size plus one" if self.boundary == "valid" else ""
            raise ValueError(
                f"forward: the blurred size {height}×{width} ({what or 'the image size'}) is not "
                f"divisible by the scale {self.scale}"
            )
        return height // self.scale, width // self.scale

    def _grid(self, height: int, width: int) -> tuple[int, int]:
        """The periodic grid the blur is computed on: the image, padded for "reflect"/"zero"."""
        if self.boundary in ("valid", "circular"):
            return height, width
        (top, bottom), (left, right) = self._margins()
        return height + top + bottom, width + left + right

    def prepare(self, image_shape: tuple[int, int]) -> Self:
        """This operator with the kernel spectrum of its periodic grid computed for ``(H, W)``
        images, so that the CG iterations do not recompute it (an operator already prepared for
        that size is returned as it is)."""
        grid = self._grid(*image_shape)
        spectra = self.blur.spectra
        if spectra is not None and spectra.otf.shape[-2:] == grid:
            return self
        _, aux = self.tree_flatten()
        return type(self).tree_unflatten(aux, (self.kernel, self.blur.prepare(grid)))

    def forward(self, x: ArrayLike) -> Array:
        """``(..., H, W, C) → (..., h, w, C)``; ``h = H/s``, or ``(H − kh + 1)/s`` for
        ``"valid"``.

        Computed as a circular blur (the FFT of :class:`~suppa_jax.physics.circulant.Blur`) of
        the image padded by the kernel's reach, cropped to the pixels whose every tap is in the
        padded image: exactly the non-circular convolution, at FFT cost for any kernel size.
        """
        x = jnp.asarray(x)
        check_image("forward: x", x)
        height, width = x.shape[-3], x.shape[-2]
        self._measured_shape(height, width)
        (top, bottom), (left, right) = self._margins()
        if self.boundary in ("reflect", "zero"):
            pad = [(0, 0)] * (x.ndim - 3) + [(top, bottom), (left, right), (0, 0)]
            x = jnp.pad(x, pad, mode="reflect" if self.boundary == "reflect" else "constant")
            rows, cols = slice(top, top + height, self.scale), slice(left, left + width, self.scale)
        elif self.boundary == "valid":
            rows = slice(top, height - bottom, self.scale)
            cols = slice(left, width - right, self.scale)
        else:
            rows = cols = slice(None, None, self.scale)
        return self.blur.forward(x)[..., rows, cols, :]

    def initial(self, y: ArrayLike) -> Array:
        """``x₀``: bicubic upsampling of ``y`` by ``s`` (``y`` itself for ``s = 1``); for
        ``"valid"``, extended to the image size by repeating the edge pixels."""
        y = jnp.asarray(y)
        check_image("initial: y", y)
        x = y if self.scale == 1 else bicubic_upsample(y, self.scale, self.interpolation_a)
        if self.boundary == "valid":
            pad = [(0, 0)] * (x.ndim - 3) + [*self._margins(), (0, 0)]
            x = jnp.pad(x, pad, mode="edge")
        return x
