"""Circulant forward models: circular convolution with a kernel, then decimation by ``s``.

Conventions:

* Convolution is **circular** and a kernel ``k`` of shape ``(kh, kw)`` is centred at
  ``c = (kh // 2, kw // 2)``::

      (k ⊛ x)[n] = Σ_j k[j] · x[(n − j + c) mod (H, W)]

  (a true convolution; for the symmetric kernels used here it equals correlation). Its transfer
  function is the "psf2otf" spectrum ``K = F[roll(pad(k), −c)]``.
* Super-resolution by an integer factor ``s`` keeps one pixel in ``s`` per axis, starting at 0::

      (A x)[i, j] = (k ⊛ x)[s·i, s·j]

  Bicubic downsampling without antialiasing (LR pixel ``i`` sampled at HR coordinate
  ``(i + 0.5)·s − 0.5``, ``align_corners=False``) is this model with
  :func:`~suppa_jax.physics.kernels.bicubic_kernel`, whose taps are placed so that no separate
  decimation offset is needed (for ×3 the kernel is a shift by one pixel: pure decimation at
  offset 1).
* The data step solves ``argmin_x ½‖y − A x‖² + ρ/2‖x − z‖²`` exactly in the Fourier domain.
  ``ρ`` is the weight of the quadratic coupling in that convention (the paper's reference value
  for super-resolution is ``ρ = 0.1·s²``, for deblurring ``ρ = 0.1``).

The kernel (and any precomputed spectra) are pytree leaves and the scale is static. Kernel
spectra depend on the image size; :meth:`CirculantOperator.prepare` computes them once for a
given size so that iterative solvers do not recompute an FFT of the kernel at every iteration.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple, Self

import jax
import jax.numpy as jnp

from suppa_jax.physics.base import (
    LinearOperator,
    check_image,
    check_positive,
    check_scale,
    per_sample,
)
from suppa_jax.physics.kernels import bicubic_kernel, bicubic_upsample
from suppa_jax.typing import Array, ArrayLike

__all__ = ["Blur", "CirculantOperator", "Spectra", "SuperResolution"]

_SPATIAL_AXES = (-3, -2)


class Spectra(NamedTuple):
    """Kernel spectra for one image size ``(H, W)``.

    ``otf``: ``K = F[roll(pad(k), −c)]``, shape ``(..., H, W)``. ``aliased_power``: ``⟨|K|²⟩``,
    the mean of ``|K|²`` over the ``s × s`` aliases of each LR frequency, ``(..., H/s, W/s)``.
    The leading dimensions are the kernel's (none for one kernel, the batch's for one per
    sample).
    """

    otf: Array
    aliased_power: Array


def _otf(kernel: Array, shape: tuple[int, int]) -> Array:
    """psf2otf: the transfer function of circular convolution with a centred kernel
    ``(..., kh, kw)`` (one per sample when there are leading dimensions), ``(..., H, W)``."""
    *lead, kh, kw = kernel.shape
    padded = jnp.zeros((*lead, *shape), kernel.dtype).at[..., :kh, :kw].set(kernel)
    return jnp.fft.fft2(jnp.roll(padded, (-(kh // 2), -(kw // 2)), axis=(-2, -1)))


def _alias_mean(spectrum: Array, scale: int) -> Array:
    """``⟨X⟩``: mean over the ``s × s`` aliases ``X[q + l·H/s, r + m·W/s]`` of the spatial axes.

    Frequencies ``ω`` and ``ω + H/s`` fold onto the same frequency after keeping one pixel in
    ``s``: the spectrum of the decimated signal is ``⟨X⟩`` (unnormalised DFTs).
    """
    *lead, height, width, channels = spectrum.shape
    blocks = spectrum.reshape(*lead, scale, height // scale, scale, width // scale, channels)
    return blocks.mean(axis=(-5, -3))


def _tile(spectrum: Array, scale: int) -> Array:
    """Periodic extension of an LR spectrum to the HR grid (the inverse of folding)."""
    reps = (1,) * (spectrum.ndim - 3) + (scale, scale, 1)
    return jnp.tile(spectrum, reps)


def _fft2(x: Array) -> Array:
    return jnp.fft.fft2(x, axes=_SPATIAL_AXES)


def _ifft2_real(x: Array) -> Array:
    return jnp.fft.ifft2(x, axes=_SPATIAL_AXES).real


class CirculantOperator(LinearOperator):
    """``A x = (k ⊛ x)[s·i, s·j]``: circular convolution, then keep one pixel in ``s``.

    The shared implementation of :class:`Blur` (``s = 1``) and :class:`SuperResolution`; use
    those constructors. Every method accepts any number of leading batch dimensions and works
    channel-wise. The kernel is ``(kh, kw)``, one for every image, or ``(..., kh, kw)``, one per
    sample of a batch with those leading dimensions (a *batched* operator, as
    :meth:`~suppa_jax.physics.families.OperatorFamily.draw_batch` makes: ``jax.vmap`` of the
    constructor); spectra then carry the same leading dimensions.
    """

    kernel: Array
    scale: int
    spectra: Spectra | None
    _static_fields: ClassVar[tuple[str, ...]] = ("scale",)

    # -- pytree protocol: kernel and spectra are leaves, the static fields are aux data --------

    def tree_flatten(self) -> tuple[tuple[Array, Spectra | None], tuple]:
        return (self.kernel, self.spectra), tuple(getattr(self, f) for f in self._static_fields)

    @classmethod
    def tree_unflatten(cls, aux: tuple, children: tuple) -> Self:
        op = object.__new__(cls)
        op.kernel, op.spectra = children
        for field, value in zip(cls._static_fields, aux, strict=True):
            setattr(op, field, value)
        return op

    def _init(self, kernel: ArrayLike, scale: int) -> None:
        kernel = jnp.asarray(kernel)
        if kernel.ndim < 2 or 0 in kernel.shape:
            raise ValueError(
                f"kernel must be a non-empty (..., kh, kw) array, got shape {kernel.shape}"
            )
        if not jnp.issubdtype(kernel.dtype, jnp.floating):
            kernel = kernel.astype(jnp.result_type(float))
        self.kernel = kernel
        self.scale = scale
        self.spectra = None

    def __repr__(self) -> str:
        prepared = "" if self.spectra is None else f", prepared={self.spectra.otf.shape}"
        return f"{type(self).__name__}(scale={self.scale}, kernel={self.kernel.shape}{prepared})"

    # -- shapes -------------------------------------------------------------------------------

    def _check_size(self, what: str, height: int, width: int) -> tuple[int, int]:
        if height % self.scale or width % self.scale:
            raise ValueError(
                f"{what}: image size {height}×{width} is not divisible by the scale {self.scale}"
            )
        kh, kw = self.kernel.shape[-2:]
        if kh > height or kw > width:
            raise ValueError(f"{what}: kernel {kh}×{kw} is larger than the image {height}×{width}")
        return height, width

    def _check_x(self, what: str, x: Array) -> tuple[int, int]:
        check_image(what, x)
        return self._check_size(what, x.shape[-3], x.shape[-2])

    def _check_y(self, what: str, y: Array) -> tuple[int, int]:
        check_image(what, y)
        return self._check_size(what, *self.image_shape(y))

    # -- spectra ------------------------------------------------------------------------------

    def prepare(self, image_shape: tuple[int, int]) -> Self:
        """This operator with its kernel spectra computed for ``(H, W)`` images.

        Every method of the returned operator reuses them for images of that size (and computes
        fresh ones for any other size), so an iterative solver pays one kernel FFT in all.
        """
        image_shape = self._check_size("prepare", *image_shape)
        otf = _otf(self.kernel, image_shape)
        power = (otf.real**2 + otf.imag**2)[..., None]
        spectra = Spectra(otf, _alias_mean(power, self.scale)[..., 0])
        _, aux = self.tree_flatten()
        return type(self).tree_unflatten(aux, (self.kernel, spectra))

    def _spectra(self, image_shape: tuple[int, int]) -> Spectra:
        if self.spectra is not None and self.spectra.otf.shape[-2:] == tuple(image_shape):
            return self.spectra
        return self.prepare(image_shape).spectra

    # -- the operator -------------------------------------------------------------------------

    def forward(self, x: ArrayLike) -> Array:
        """``A x = (k ⊛ x)[s·i, s·j]``: ``(..., H, W, C) → (..., H/s, W/s, C)``."""
        x = jnp.asarray(x)
        spectra = self._spectra(self._check_x("forward: x", x))
        blurred = _ifft2_real(spectra.otf[..., None] * _fft2(x))
        return blurred[..., :: self.scale, :: self.scale, :]

    def adjoint(self, y: ArrayLike) -> Array:
        """``Aᵀ y = k̃ ⊛ (Sᵀ y)``: zero-filled upsampling then correlation with ``k``.

        The spectrum of the zero-filled ``Sᵀ y`` is the LR spectrum of ``y`` tiled ``s × s``.
        """
        y = jnp.asarray(y)
        spectra = self._spectra(self._check_y("adjoint: y", y))
        return _ifft2_real(jnp.conj(spectra.otf)[..., None] * _tile(_fft2(y), self.scale))

    def data_prox(self, z: ArrayLike, y: ArrayLike, rho: ArrayLike) -> Array:
        """Exact ``argmin_x ½‖y − A x‖² + ρ/2‖x − z‖²``, in closed form.

        The normal equations ``(AᵀA + ρI) x = Aᵀy + ρz =: r`` are diagonal per group of aliased
        frequencies. With ``R = F r = conj(K)·F(Sᵀy) + ρ·F z`` and ``⟨·⟩`` the mean over the
        ``s × s`` aliases (Zhao et al., 2016; Woodbury on each group)::

            F x = (R − conj(K) · tile(⟨K R⟩ / (⟨|K|²⟩ + ρ))) / ρ

        which for ``s = 1`` is ``F x = R / (|K|² + ρ)``. ``rho`` is a positive scalar or one
        value per sample (shape ``z.shape[:-3]``).
        """
        z, y = jnp.asarray(z), jnp.asarray(y)
        image_shape = self._check_x("data_prox: z", z)
        if self.image_shape(y) != image_shape or y.shape[-1] != z.shape[-1]:
            raise ValueError(
                f"data_prox: y of shape {y.shape} does not match z of shape {z.shape} "
                f"at scale {self.scale}"
            )
        check_positive("data_prox: rho", rho)
        spectra = self._spectra(image_shape)
        rho = per_sample(rho, z.dtype)
        otf = spectra.otf[..., None]
        rhs = jnp.conj(otf) * _tile(_fft2(y), self.scale) + rho * _fft2(z)
        if self.scale == 1:
            return _ifft2_real(rhs / (spectra.aliased_power[..., None] + rho))
        correction = _alias_mean(otf * rhs, self.scale) / (spectra.aliased_power[..., None] + rho)
        return _ifft2_real((rhs - jnp.conj(otf) * _tile(correction, self.scale)) / rho)

    def quadratic_solve(self, y: ArrayLike, penalty: ArrayLike) -> Array:
        """Exact ``argmin_x ½‖y − A x‖² + ½ xᵀ Q x`` for a circulant ``Q ⪰ 0``, in closed form.

        ``penalty`` is the spectrum of ``Q``: real, ``(H, W)`` (the HR size), positive (add a
        tiny floor where ``Q`` is singular, e.g. at DC for a gradient penalty). The normal
        equations ``(AᵀA + Q) x = Aᵀy`` are solved per group of aliased frequencies by Woodbury
        (the data term has rank one in each group): with ``w = 1/q`` and ``⟨·⟩`` the alias
        mean of :meth:`data_prox`::

            F x = w · conj(K) · tile(F y / (1 + ⟨|K|² w⟩))

        which for ``s = 1`` is ``F x = conj(K) F y / (|K|² + q)`` (Tikhonov/Wiener filtering).
        """
        y = jnp.asarray(y)
        image_shape = self._check_y("quadratic_solve: y", y)
        weight = 1.0 / jnp.asarray(penalty, y.dtype)
        if weight.shape != image_shape:
            raise ValueError(
                f"quadratic_solve: penalty of shape {weight.shape} does not match the image "
                f"size {image_shape}"
            )
        spectra = self._spectra(image_shape)
        weighted_power = (spectra.otf.real**2 + spectra.otf.imag**2) * weight
        folded = _alias_mean(weighted_power[..., None], self.scale)
        lr = _fft2(y) / (1.0 + folded)
        return _ifft2_real((weight * jnp.conj(spectra.otf))[..., None] * _tile(lr, self.scale))


@jax.tree_util.register_pytree_node_class
class Blur(CirculantOperator):
    """Circular blur ``A x = k ⊛ x`` (kernel centred at ``(kh // 2, kw // 2)``).

    ``initial(y) = y``. The paper's deblurring setting is ``Blur(gaussian_kernel(2.0, 11))``
    with noise level 0.01. Any 2-D kernel, odd or even sized, up to the image size.
    """

    def __init__(self, kernel: ArrayLike) -> None:
        self._init(kernel, scale=1)

    def initial(self, y: ArrayLike) -> Array:
        """``x₀ = y``."""
        y = jnp.asarray(y)
        self._check_y("initial: y", y)
        return y


@jax.tree_util.register_pytree_node_class
class SuperResolution(CirculantOperator):
    """Super-resolution ``A x = (k ⊛ x)[s·i, s·j]`` by an integer factor ``s``.

    ``kernel="bicubic"`` (default) is bicubic downsampling without antialiasing with Keys'
    parameter ``a`` (−0.75: PyTorch/OpenCV; −0.5: MATLAB's cubic, still without antialiasing),
    equal to ``F.interpolate(x, scale_factor=1/s, mode="bicubic", align_corners=False,
    antialias=False)`` away from the borders (ours are circular). Any other 2-D kernel is taken
    as a centred PSF followed by keeping pixels ``(s·i, s·j)``.

    ``initial(y)`` is bicubic upsampling with the same ``a`` (clamped border), i.e.
    PyTorch's ``F.interpolate(y, scale_factor=s, mode="bicubic", align_corners=False)``.
    """

    interpolation_a: float
    _static_fields: ClassVar[tuple[str, ...]] = ("scale", "interpolation_a")

    def __init__(self, scale: int, kernel: ArrayLike | str = "bicubic", a: float = -0.75) -> None:
        check_scale(scale, minimum=2)
        if isinstance(kernel, str):
            if kernel != "bicubic":
                raise ValueError(f"unknown kernel name {kernel!r}; use 'bicubic' or an array")
            kernel = bicubic_kernel(scale, a)
        self._init(kernel, scale)
        self.interpolation_a = a

    def initial(self, y: ArrayLike) -> Array:
        """``x₀``: bicubic upsampling of ``y`` by ``s`` (clamped border)."""
        y = jnp.asarray(y)
        self._check_y("initial: y", y)
        return bicubic_upsample(y, self.scale, self.interpolation_a)
