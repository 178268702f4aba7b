"""Forward models that keep some pixels and drop the others: ``A = diag(m)``, ``m ∈ {0, 1}``.

The measurement keeps the image layout with zeros where nothing is sensed, so ``Aᵀ = A`` and
``AᵀA = diag(m)``, and the data step is exact per pixel::

    argmin_x ½‖y − m ⊙ x‖² + ρ/2‖x − z‖²  =  (m ⊙ y + ρ z) / (m + ρ)

(noise added where ``m = 0`` is ignored: ``m ⊙ y`` drops it). The Tikhonov baseline
(``quadratic_solve``) is conjugate gradients per image on ``(diag(m) + Q) x = m ⊙ y``. Clients:
:class:`~suppa_jax.physics.mosaic.Mosaic` (a Bayer mask) and
:class:`~suppa_jax.physics.inpainting.Inpainting` (any mask, one per image).
"""

from __future__ import annotations

import abc

import jax.numpy as jnp

from suppa_jax.physics.base import check_image, check_positive, per_sample
from suppa_jax.physics.matrix_free import (
    ConjugateGradientOperator,
    circulant_penalty,
    per_image,
)
from suppa_jax.typing import Array, ArrayLike

__all__ = ["DiagonalMask"]


class DiagonalMask(ConjugateGradientOperator):
    """``A x = m ⊙ x`` for the 0/1 mask ``m = mask(x)`` (see the module docstring).

    Subclasses give :meth:`mask` (broadcastable against the images: ``(..., H, W, 1)`` or
    ``(..., H, W, C)``) and ``initial``.
    """

    @abc.abstractmethod
    def mask(self, x: Array) -> Array:
        """The mask for images like ``x``, in ``x``'s dtype."""

    def forward(self, x: ArrayLike) -> Array:
        """``m ⊙ x``: the sensed values, zeros elsewhere."""
        x = jnp.asarray(x)
        check_image("forward: x", x)
        return self.mask(x) * x

    def adjoint(self, y: ArrayLike) -> Array:
        """``m ⊙ y`` (``A`` is a diagonal projection)."""
        return self.forward(y)

    def data_prox(self, z: ArrayLike, y: ArrayLike, rho: ArrayLike) -> Array:
        """Exact ``(m ⊙ y + ρ z) / (m + ρ)``; ``rho`` a positive scalar or one per sample."""
        z, y = jnp.asarray(z), jnp.asarray(y)
        check_image("data_prox: z", z)
        if z.shape[-3:] != y.shape[-3:]:
            raise ValueError(f"data_prox: y of shape {y.shape} does not match z of {z.shape}")
        check_positive("data_prox: rho", rho)
        mask, rho = self.mask(z), per_sample(rho, z.dtype)
        return (mask * y + rho * z) / (mask + rho)

    def quadratic_solve(self, y: ArrayLike, penalty: ArrayLike) -> Array:
        """``argmin_x ½‖y − m ⊙ x‖² + ½ xᵀ Q x`` for a circulant ``Q`` of real spectrum
        ``penalty`` ``(H, W)``: CG per image on ``(diag(m) + Q) x = m ⊙ y`` from ``m ⊙ y``."""
        y = jnp.asarray(y)
        check_image("quadratic_solve: y", y)
        apply_penalty = circulant_penalty(penalty, y.shape[-3:-1], y.dtype)
        mask = jnp.broadcast_to(self.mask(y), y.shape)

        def one(y: Array, mask: Array) -> Array:
            def normal(x: Array) -> Array:
                return mask * x + apply_penalty(x)

            return self._normal_solve(normal, mask * y, mask * y)

        return per_image(one, y, mask)
