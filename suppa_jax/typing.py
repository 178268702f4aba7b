"""The type aliases and typed structures shared by every module (defined here only).

Images are float arrays ``(..., H, W, C)`` in [0, 1]. A *denoiser* maps ``(x, σ) -> x``; its
*apply* form takes the network's params first (the convention: :mod:`suppa_jax.models.base`).
Batches and trainables are plain dicts (they are pytrees and are stored as such in
checkpoints), typed here as ``TypedDict`` s.
"""

from collections.abc import Callable
from typing import Any, NotRequired, TypedDict

import jax

__all__ = [
    "Array",
    "ArrayLike",
    "Batch",
    "DenoiseFn",
    "DenoiserApply",
    "ExampleBatch",
    "Metrics",
    "Params",
    "Trainable",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

#: A network's parameters: the flax ``params`` collection (a nested dict of arrays).
Params = Any
#: ``denoise(x, sigma) -> x``: the prior's proximal step inside a solver (a
#: :class:`suppa_jax.models.Denoiser` is one).
DenoiseFn = Callable[[Array, ArrayLike], Array]
#: ``apply(params, x, sigma) -> x``: a denoiser with its params as the first argument.
DenoiserApply = Callable[[Params, Array, ArrayLike], Array]
#: Scalar metrics of a training step, by name (``loss``, ``psnr``, ``iterations``, …).
Metrics = dict[str, Array]


class ExampleBatch(TypedDict):
    """What the input pipeline yields: clean HR patches and one seed per example.

    ``hr``: ``(B, H, W, C)`` float32 in [0, 1]. ``seed``: ``(B,)`` uint32; example ``i``'s
    measurement noise and its method's randomness are drawn from it.
    """

    hr: Array
    seed: Array


class Batch(TypedDict):
    """A measured batch, as a method's loss sees it: ``y`` ``(B, h, w, C)`` and ``gt``
    ``(B, H, W, C)``; ``op``, when present, is the operator of these measurements (a
    :class:`suppa_jax.physics.LinearOperator`, batched when drawn per example), used instead of
    the one the method was built with."""

    y: Array
    gt: Array
    op: NotRequired[Any]


class Trainable(TypedDict):
    """What a method learns: the denoiser's params and its learned scalars, raw.

    Each method has its own scalars (SUPPA: ``sigma``, ``lam``; DEQ and JFB: ``rho``, ``sigma``;
    unrolling: one ``rho`` and ``sigma`` per step); everything but ``denoiser`` is a scalar or a
    short vector, optimised in its own group (:func:`suppa_jax.training.make_optimizer`).
    """

    denoiser: Params
    sigma: NotRequired[Array]
    lam: NotRequired[Array]
    rho: NotRequired[Array]
