"""Solvers: the fixed-point loop (:mod:`~suppa_jax.solvers.fixed_point`), plug-and-play ADMM
(:mod:`~suppa_jax.solvers.admm`), DPIR's plug-and-play HQS (:mod:`~suppa_jax.solvers.hqs`) and
the restoration entry point (:func:`~suppa_jax.solvers.pnp.restore`)."""

from suppa_jax.solvers import admm, fixed_point, hqs
from suppa_jax.solvers.admm import Solution, State, reference_rho, solve
from suppa_jax.solvers.fixed_point import anderson, iterate
from suppa_jax.solvers.pnp import restore

__all__ = [
    "Solution",
    "State",
    "admm",
    "anderson",
    "fixed_point",
    "hqs",
    "iterate",
    "reference_rho",
    "restore",
    "solve",
]
