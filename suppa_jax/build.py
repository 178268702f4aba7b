"""From an experiment config to the objects it names: operator, model, method, initial params.

Light on purpose (JAX and Flax only: no checkpointing, input pipeline or image I/O), so that the
trainer, evaluation, the converter and the benchmarks share these builders. Each looks its name
up in a registry: the operator in :mod:`suppa_jax.tasks`, the denoiser's architecture in
:mod:`suppa_jax.models.registry`, the method in :mod:`suppa_jax.methods`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from suppa_jax import methods, tasks
from suppa_jax.models import base, registry, weights
from suppa_jax.paths import resolve_path
from suppa_jax.physics.base import LinearOperator
from suppa_jax.physics.families import OperatorFamily, as_family
from suppa_jax.typing import Params

__all__ = [
    "build_method",
    "build_model",
    "build_operator",
    "build_physics",
    "initial_params",
    "method_settings",
]


def build_physics(task: ml_collections.ConfigDict) -> OperatorFamily:
    """The forward models of a ``config.task`` section (its kind's factory in the task
    registry), as a family: :class:`~suppa_jax.physics.Fixed` for one operator."""
    return as_family(tasks.get_kind(task.kind).physics(task))


def build_operator(task: ml_collections.ConfigDict) -> LinearOperator:
    """The forward model of a ``config.task`` section with one operator; a ``ValueError`` for
    kernels drawn per example (use :func:`build_physics`)."""
    physics = build_physics(task)
    if physics.fixed is None:
        raise ValueError(
            f"task.kernel {task.kernel!r} draws an operator per example ({physics!r}): "
            "there is no single operator (build_physics)"
        )
    return physics.fixed


def build_model(config: ml_collections.ConfigDict) -> nn.Module:
    """The denoiser of ``config.model``: the registered architecture ``config.model.name``
    built from the fields it reads (:func:`suppa_jax.models.registry.build`)."""
    try:
        return registry.build(config.model.name, config.model)
    except ValueError as err:
        raise ValueError(f"config.model.{err}") from err


def method_settings(config: ml_collections.ConfigDict) -> dict:
    """The keyword settings of ``config.method``, as its registry entry reads them."""
    return methods.get(config.method).settings(config)


def build_method(
    config: ml_collections.ConfigDict, model: nn.Module, op: LinearOperator | None
) -> methods.Method:
    """``config.method`` around ``model`` (in ``config.model.compute_dtype``) and ``op``
    (``None``: the operator comes with each batch, and is given to ``predict``)."""
    apply = base.with_compute_dtype(base.FlaxApply(model), config.model.compute_dtype)
    return methods.make(config.method, apply, op, **method_settings(config))


def initial_params(config: ml_collections.ConfigDict, model: nn.Module) -> Params:
    """``config.model.init``: a params file (ours or a PyTorch ``.pth``; the path resolved by
    :func:`suppa_jax.paths.resolve_path`), or random weights (seed ``config.train.seed``) when it
    is ``""``. The file's architecture must be ``model``."""
    path = config.model.init
    if not path:
        dummy = jnp.zeros((1, 8, 8, model.channels), jnp.float32)
        key = jax.random.key(config.train.seed)
        return jax.jit(model.init)(key, dummy, 0.1)["params"]
    try:
        path = resolve_path(path, "config.model.init")
    except ValueError as err:
        raise FileNotFoundError(f"config.model.init: no such file {config.model.init!r}") from err
    if not path.is_file():
        raise FileNotFoundError(f"config.model.init: {str(path)!r} is not a file")
    try:
        prior = weights.load_prior(path)
    except ValueError as err:
        raise ValueError(f"config.model.init: {err}") from err
    if prior.model != model:
        raise ValueError(
            f"config.model.init: {path} holds {registry.describe(prior.model)}, but config.model "
            f"asks for {registry.describe(model)}"
        )
    return prior.params
