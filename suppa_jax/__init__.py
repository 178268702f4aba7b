"""suppa_jax: learned unrolled ADMM for linear image inverse problems, in JAX.

Packages and modules, from the math up (each imports only those above it):

* :mod:`~suppa_jax.typing`: the shared type aliases and typed structures;
* :mod:`~suppa_jax.physics`: forward models (the :class:`~suppa_jax.physics.LinearOperator`
  protocol, circulant blur and super-resolution, kernels, the measurement model);
* :mod:`~suppa_jax.models`: the denoiser convention (:class:`~suppa_jax.models.Denoiser`), the
  architecture registry (DRUNet, DnCNN) and weight files;
* :mod:`~suppa_jax.solvers`: the fixed-point loop, plug-and-play ADMM, :func:`restore`;
* :mod:`~suppa_jax.methods`: SUPPA and its rivals as pure losses, and their registry;
* :mod:`~suppa_jax.tasks`: the task registry (forward models by name, named tasks);
* :mod:`~suppa_jax.build`: config → operator, model, method, initial params;
* :mod:`~suppa_jax.config`, :mod:`~suppa_jax.data`, :mod:`~suppa_jax.training`,
  :mod:`~suppa_jax.evaluation`: experiments, input pipeline, training program, evaluation;
* :mod:`~suppa_jax.classical`, :mod:`~suppa_jax.metrics`: the Tikhonov baseline, PSNR/SSIM.

Importing the package changes nothing in the environment; :func:`use_fast_xla_cpu_flags` is
the one call that speeds up XLA:CPU (the command-line entry points make it).

The one-line entry point is :func:`restore`.
"""

from suppa_jax import methods, metrics, models, physics, solvers, tasks
from suppa_jax.models import Denoiser
from suppa_jax.physics import Blur, LinearOperator, SuperResolution, gaussian_kernel
from suppa_jax.solvers import Solution, restore
from suppa_jax.xla import XLA_CPU_FLAGS, use_fast_xla_cpu_flags

__all__ = [
    "XLA_CPU_FLAGS",
    "Blur",
    "Denoiser",
    "LinearOperator",
    "Solution",
    "SuperResolution",
    "gaussian_kernel",
    "methods",
    "metrics",
    "models",
    "physics",
    "restore",
    "solvers",
    "tasks",
    "use_fast_xla_cpu_flags",
]
__version__ = "0.1.0"
