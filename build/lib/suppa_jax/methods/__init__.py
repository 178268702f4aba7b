"""Training methods for unrolled ADMM, written once each as pure losses, and their registry.

All share the ADMM iteration ``f`` of :mod:`suppa_jax.solvers.admm` (``s = (x, u)``,
``f(s) = step(D_θ, A, y, s, ρ, σ)``) and differ only in how the gradient reaches ``θ``:

================== ===================================================== ===================
method             gradient path                                         memory in K
================== ===================================================== ===================
``suppa``          two differentiable steps from detached states         constant
``unrolled``       backprop through K steps (``lax.scan``)               linear
``unrolled_remat`` the same with ``jax.checkpoint`` on each step         linear, small slope
``deq``            implicit: adjoint fixed point ``g = J_fᵀ g + ∂ℓ/∂s*`` constant
``jfb``            one differentiable step at the fixed point            constant
``denoiser``       Gaussian-denoiser pre-training of the prior           —
================== ===================================================== ===================

Each lives in its own module (:mod:`~suppa_jax.methods.suppa`,
:mod:`~suppa_jax.methods.unrolled`, :mod:`~suppa_jax.methods.equilibrium`,
:mod:`~suppa_jax.methods.denoiser`) with its registry entry; :mod:`~suppa_jax.methods.base`
holds the :class:`Method` triple and the shared pieces. A new method is a module that defines a
factory ``(apply, op, **settings) -> Method`` and a :class:`MethodSpec`, and one
:func:`register` call (here, or in the user's own code).
"""

from suppa_jax.methods import denoiser as _denoiser
from suppa_jax.methods import equilibrium as _equilibrium
from suppa_jax.methods import suppa as _suppa
from suppa_jax.methods import unrolled as _unrolled
from suppa_jax.methods.base import Method
from suppa_jax.methods.denoiser import denoiser, noise_level
from suppa_jax.methods.equilibrium import deq, jfb
from suppa_jax.methods.registry import (
    MethodSpec,
    get,
    make,
    names,
    register,
    unregister,
)
from suppa_jax.methods.suppa import suppa, suppa_forward, suppa_objective
from suppa_jax.methods.unrolled import unrolled

for _spec in (
    _suppa.SPEC,
    _unrolled.SPEC,
    _unrolled.REMAT_SPEC,
    _equilibrium.DEQ_SPEC,
    _equilibrium.JFB_SPEC,
    _denoiser.SPEC,
):
    register(_spec)

__all__ = [
    "Method",
    "MethodSpec",
    "denoiser",
    "deq",
    "get",
    "jfb",
    "make",
    "names",
    "noise_level",
    "register",
    "suppa",
    "suppa_forward",
    "suppa_objective",
    "unregister",
    "unrolled",
]
