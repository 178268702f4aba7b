"""The model registry: one entry per denoiser architecture, looked up by ``config.model.name``.

An architecture is a Flax module called as ``module(x, σ)`` (the convention of
:mod:`suppa_jax.models.base`). Its entry (:class:`ModelSpec`) names the module class, the
attributes that define it (read from ``config.model`` by the trainer and stored in weight files
as the architecture record) and a check of their values. The builders, the config's validation,
the weight files and the CLIs ask the registry, so a new architecture is its own module plus one
:func:`register` call; a module registered from a notebook trains, fine-tunes and evaluates
through the same code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "ModelSpec",
    "architecture",
    "build",
    "check_params",
    "describe",
    "get",
    "names",
    "param_shapes",
    "positive_int",
    "register",
    "spec_of",
    "unregister",
]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A denoiser architecture as the rest of the project sees it.

    Attributes:
      name: its key, the value of ``config.model.name`` and of a weight file's record.
      module: the Flax module class; ``module(**{f: values[f] for f in fields})`` builds it.
      fields: the module attributes that define the architecture (``channels`` among them);
        each is a ``config.model`` field of the same name.
      check: ``check(values)`` raises ``ValueError("<field> must …, got …")`` for a bad value of
        one of ``fields`` (callers prefix it with ``config.model.`` or the file's path).
      summary: one line for listings and docs.
    """

    name: str
    module: type[nn.Module]
    fields: tuple[str, ...]
    check: Callable[[Mapping[str, Any]], None]
    summary: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` under ``spec.name`` (an existing name is an error); returns it."""
    if spec.name in _REGISTRY:
        raise ValueError(f"a model named {spec.name!r} is already registered")
    if "channels" not in spec.fields:
        raise ValueError(f"model {spec.name!r}: its fields must include 'channels'")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove the model ``name`` (for tests and interactive sessions)."""
    _REGISTRY.pop(name)


def names() -> tuple[str, ...]:
    """The registered model names, in registration order."""
    return tuple(_REGISTRY)


def get(name: str) -> ModelSpec:
    """The entry of model ``name``; a ``ValueError`` lists the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def spec_of(module: nn.Module) -> ModelSpec:
    """The entry whose class ``module`` is an instance of."""
    for spec in _REGISTRY.values():
        if type(module) is spec.module:
            return spec
    raise ValueError(f"{type(module).__name__} is not a registered model")


def positive_int(value: Any) -> bool:
    """``value`` is an ``int`` (not a ``bool``) above zero: the common check of sizes."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0


def _tuples(value: Any) -> Any:
    """Lists (from JSON or msgpack) back to tuples, so that modules hash and compare."""
    return tuple(value) if isinstance(value, list) else value


def build(name: str, values: Mapping[str, Any]) -> nn.Module:
    """The module of model ``name`` from ``values`` (``config.model``, or a weight file's
    record); fields the model does not use are ignored, a missing or bad one is a
    ``ValueError`` naming it."""
    spec = get(name)
    missing = [field for field in spec.fields if field not in values]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)} of model {name!r}")
    chosen = {field: _tuples(values[field]) for field in spec.fields}
    if not positive_int(chosen["channels"]):
        raise ValueError(f"channels must be a positive int, got {chosen['channels']!r}")
    spec.check(chosen)
    return spec.module(**chosen)


def architecture(module: nn.Module) -> dict[str, Any]:
    """``{"name": …, field: value, …}``: what :func:`build` needs to make ``module`` again
    (tuples as lists, so that it serialises to JSON or msgpack)."""
    spec = spec_of(module)
    record = {field: getattr(module, field) for field in spec.fields}
    return {"name": spec.name} | {
        k: list(v) if isinstance(v, tuple) else v for k, v in record.items()
    }


def describe(module: nn.Module) -> str:
    """``"drunet (widths (16, 32, 64, 64), num_blocks 1, channels 3, residual True)"``."""
    spec = spec_of(module)
    fields = ", ".join(f"{field} {getattr(module, field)}" for field in spec.fields)
    return f"{spec.name} ({fields})"


def param_shapes(module: nn.Module) -> Any:
    """The ``params`` collection ``module`` initialises, as ``jax.ShapeDtypeStruct`` leaves
    (traced on an 8×8 image: parameter shapes do not depend on the image size)."""
    x = jax.ShapeDtypeStruct((1, 8, 8, module.channels), jnp.float32)
    variables = jax.eval_shape(module.init, jax.random.key(0), x, 0.1)
    return variables["params"]


def _paths(tree: Any) -> dict[str, tuple[int, ...]]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {
        "/".join(str(getattr(k, "key", k)) for k in path): tuple(np.shape(leaf))
        for path, leaf in flat
    }


def _listed(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def check_params(module: nn.Module, params: Any) -> None:
    """``params`` are ``module``'s: the same parameter paths, each of the same shape.

    Raises ``ValueError`` naming the architecture and a missing, unexpected or mis-shaped
    parameter.
    """
    want, have = _paths(param_shapes(module)), _paths(params)
    what = f"the parameters of {describe(module)}"
    if missing := [k for k in want if k not in have]:
        raise ValueError(f"{what}: missing {_listed(missing)}")
    if unexpected := [k for k in have if k not in want]:
        raise ValueError(f"{what}: unexpected {_listed(unexpected)}")
    for key, shape in want.items():
        if have[key] != shape:
            raise ValueError(f"{what}: {key!r} has shape {have[key]}, expected {shape}")
