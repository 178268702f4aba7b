"""Forward models ``y = A x + e``.

* :mod:`~suppa_jax.physics.base`: :class:`LinearOperator`, the protocol every solver and method
  uses (forward, adjoint, data step, starting estimate).
* :mod:`~suppa_jax.physics.circulant`: circular convolution then decimation, with exact
  closed-form data steps: :class:`Blur` and :class:`SuperResolution`.
* :mod:`~suppa_jax.physics.matrix_free`: any linear ``A`` from its ``forward`` (adjoint by
  transposition, data step by conjugate gradients with implicit gradients): :class:`MatrixFree`,
  and :class:`PaddedBlur`, blur and decimation with a non-circular boundary.
* :mod:`~suppa_jax.physics.diagonal`: ``A = diag(m)`` for a 0/1 mask, with the exact data step:
  :mod:`~suppa_jax.physics.mosaic` (Bayer demosaicing, :class:`Mosaic`, bilinear start) and
  :mod:`~suppa_jax.physics.inpainting` (:class:`Inpainting`, a mask per image).
* :mod:`~suppa_jax.physics.families`: operators drawn per example inside the training step
  (:class:`BlurFamily`: Gaussian, anisotropic and motion kernels; :class:`MaskFamily`), and
  :class:`Fixed`, the family of one operator.
* :mod:`~suppa_jax.physics.kernels`: the Gaussian and bicubic kernels, bicubic upsampling.
* :mod:`~suppa_jax.physics.measurement`: the noise and quantisation model (:func:`degrade`,
  and :func:`measure`: a batch's operators and noise levels drawn, then degraded).

A new forward model is a module here with a :class:`LinearOperator` subclass (a pytree), plus
one entry in the task registry (:mod:`suppa_jax.tasks`).
"""

from suppa_jax.physics.base import LinearOperator
from suppa_jax.physics.circulant import Blur, CirculantOperator, Spectra, SuperResolution
from suppa_jax.physics.diagonal import DiagonalMask
from suppa_jax.physics.families import (
    BLUR_KINDS,
    MASK_KINDS,
    BlurFamily,
    Fixed,
    MaskFamily,
    OperatorFamily,
    as_family,
    gaussian_kernel_2d,
    motion_kernel,
)
from suppa_jax.physics.inpainting import Inpainting, box_mask, harmonic_fill, pixel_mask
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
from suppa_jax.physics.measurement import degrade, degrade_batch, measure
from suppa_jax.physics.mosaic import PATTERNS, Mosaic, bayer_mask

__all__ = [
    "BLUR_KINDS",
    "BOUNDARIES",
    "MASK_KINDS",
    "PATTERNS",
    "Blur",
    "BlurFamily",
    "CirculantOperator",
    "ConjugateGradientOperator",
    "DiagonalMask",
    "Fixed",
    "Inpainting",
    "LinearOperator",
    "MaskFamily",
    "MatrixFree",
    "Mosaic",
    "OperatorFamily",
    "PaddedBlur",
    "Spectra",
    "SuperResolution",
    "as_family",
    "bayer_mask",
    "bicubic_kernel",
    "bicubic_upsample",
    "box_mask",
    "cubic_weight",
    "degrade",
    "degrade_batch",
    "gaussian_kernel",
    "gaussian_kernel_2d",
    "harmonic_fill",
    "measure",
    "motion_kernel",
    "pixel_mask",
]
