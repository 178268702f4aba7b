"""Forward models ``y = A x + e``.

* :mod:`~suppa_jax.physics.base`: :class:`LinearOperator`, the protocol every solver and method
  uses (forward, adjoint, data step, starting estimate).
* :mod:`~suppa_jax.physics.circulant`: circular convolution then decimation, with exact
  closed-form data steps: :class:`Blur` and :class:`SuperResolution`.
* :mod:`~suppa_jax.physics.matrix_free`: any linear ``A`` from its ``forward`` (adjoint by
  transposition, data step by conjugate gradients with implicit gradients): :class:`MatrixFree`,
  and :class:`PaddedBlur`, blur and decimation with a non-circular boundary.
* :mod:`~suppa_jax.physics.mosaic`: Bayer demosaicing, :class:`Mosaic` (a diagonal projection,
  exact data step, bilinear start).
* :mod:`~suppa_jax.physics.kernels`: the Gaussian and bicubic kernels, bicubic upsampling.
* :mod:`~suppa_jax.physics.measurement`: the noise and quantisation model (:func:`degrade`).

A new forward model is a module here with a :class:`LinearOperator` subclass (a pytree), plus
one entry in the task registry (:mod:`suppa_jax.tasks`).
"""

from suppa_jax.physics.base import LinearOperator
from suppa_jax.physics.circulant import Blur, CirculantOperator, Spectra, SuperResolution
from suppa_jax.physics.kernels import (
    bicubic_kernel,
    bicubic_upsample,
    cubic_weight,
    gaussian_kernel,
)
from suppa_jax.physics.matrix_free import (
    BOUNDARIES,
    ConjugateGradientOperator,
    MatrixFree,
    PaddedBlur,
)
from suppa_jax.physics.measurement import degrade, degrade_batch
from suppa_jax.physics.mosaic import PATTERNS, Mosaic, bayer_mask

__all__ = [
    "BOUNDARIES",
    "PATTERNS",
    "Blur",
    "CirculantOperator",
    "ConjugateGradientOperator",
    "LinearOperator",
    "MatrixFree",
    "Mosaic",
    "PaddedBlur",
    "Spectra",
    "SuperResolution",
    "bayer_mask",
    "bicubic_kernel",
    "bicubic_upsample",
    "cubic_weight",
    "degrade",
    "degrade_batch",
    "gaussian_kernel",
]
