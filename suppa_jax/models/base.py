"""The one denoiser convention of the project: a pure function and its weights.

A denoiser is ``apply(params, x, σ) → x̂`` with ``x`` of shape ``(..., H, W, C)`` in [0, 1] and
``σ`` the noise standard deviation on that scale (a scalar, one per image, or a map), together
with its ``params`` (any pytree). :class:`Denoiser` holds the pair; it is itself a pytree whose
leaves are the params and whose ``apply`` is static, so it passes through ``jit``, ``vmap`` and
``grad`` as an ordinary argument, and calling it, ``denoiser(x, σ)``, is the proximal step
``prox_{σ²·φ}(x)`` of the prior ``φ`` that the solvers need.

Where each part is used:

* what *runs* a denoiser takes a :class:`Denoiser` or any callable ``(x, σ) → x``:
  :func:`suppa_jax.solvers.admm.solve`, :func:`suppa_jax.restore`, ``restore.py``;
* what *trains* one takes ``apply`` and starts from ``params``:
  ``methods.make(name, denoiser.apply, op, ...).init(denoiser.params)``, ``train.py``;
* a Flax module ``module(x, σ)`` becomes one with :meth:`Denoiser.of`; the architectures
  ``config.model.name`` can name are in :mod:`suppa_jax.models.registry`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from suppa_jax.typing import Array, ArrayLike, DenoiserApply, Params

__all__ = ["COMPUTE_DTYPES", "Denoiser", "FlaxApply", "as_denoiser", "with_compute_dtype"]


@dataclasses.dataclass(frozen=True)
class FlaxApply:
    """``apply(params, x, σ) = module.apply({"params": params}, x, σ)``.

    A frozen dataclass rather than a lambda: it compares equal for equal modules, so a jitted
    function that takes a :class:`Denoiser` compiles once per architecture, not once per call.
    """

    module: nn.Module

    def __call__(self, params: Params, x: Array, sigma: ArrayLike) -> Array:
        return self.module.apply({"params": params}, x, sigma)


@dataclasses.dataclass(frozen=True)
class _IgnoringParams:
    """``apply(params, x, σ) = denoise(x, σ)`` for a denoiser given as a bare callable."""

    denoise: Callable[[Array, ArrayLike], Array]

    def __call__(self, params: Params, x: Array, sigma: ArrayLike) -> Array:
        del params
        return self.denoise(x, sigma)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Denoiser:
    """``denoiser(x, σ) = apply(params, x, σ)``: a denoiser and its weights, as one pytree.

    Attributes:
      apply: the pure function ``(params, x, σ) → x̂`` (static: part of the tree structure).
      params: its weights (the pytree's leaves); ``()`` for a denoiser without any.
    """

    apply: DenoiserApply = dataclasses.field(metadata={"static": True})
    params: Params = ()

    def __call__(self, x: Array, sigma: ArrayLike) -> Array:
        return self.apply(self.params, x, sigma)

    @classmethod
    def of(cls, module: nn.Module, params: Params) -> Denoiser:
        """The denoiser of a Flax module ``module(x, σ)`` with its ``params`` collection (or
        a ``{"params": ...}`` variables dict)."""
        params = params["params"] if _is_variables(params) else params
        return cls(FlaxApply(module), params)


def _is_variables(tree: Any) -> bool:
    return isinstance(tree, dict) and set(tree) == {"params"}


def as_denoiser(denoise: Denoiser | Callable[[Array, ArrayLike], Array]) -> Denoiser:
    """``denoise`` as a :class:`Denoiser`: itself, or a callable ``(x, σ) → x`` wrapped with no
    params (jitted functions then treat it as static, compiled once per callable)."""
    if isinstance(denoise, Denoiser):
        return denoise
    if not callable(denoise):
        raise TypeError(f"a denoiser must be callable as denoise(x, sigma), got {denoise!r}")
    return Denoiser(_IgnoringParams(denoise))


COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def with_compute_dtype(apply: DenoiserApply, dtype: str) -> DenoiserApply:
    """``apply`` computing in ``dtype`` (a key of :data:`COMPUTE_DTYPES`): mixed precision.

    The weights, the image and ``sigma`` are cast to ``dtype`` on entry and the output back to
    the input's dtype, so the parameters, their gradients (through the cast), the optimiser
    state and everything outside the network (the FFT data step, the losses) stay float32.
    ``"float32"`` returns ``apply`` itself.
    """
    if dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute dtype must be one of {list(COMPUTE_DTYPES)}, got {dtype!r}")
    if dtype == "float32":
        return apply
    compute = COMPUTE_DTYPES[dtype]

    def cast(tree: Any) -> Any:
        return jax.tree.map(lambda leaf: jnp.asarray(leaf).astype(compute), tree)

    def apply_in_dtype(params: Params, x: Array, sigma: Any) -> Array:
        return apply(cast(params), cast(x), cast(sigma)).astype(x.dtype)

    return apply_in_dtype
