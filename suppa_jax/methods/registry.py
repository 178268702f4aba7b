"""The method registry: one entry per training method, looked up by ``config.method``.

An entry (:class:`MethodSpec`) names the factory ``(apply, op, **settings) -> Method``, its row
label in evaluation tables, how its settings are read from an experiment config, the task kinds
it trains on, and which setting holds its iteration count. Everything else (the config's
validation, the builders, evaluation, the memory benchmark) asks the registry, so a new method
is its own module plus one :func:`register` call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from suppa_jax.methods.base import Method
from suppa_jax.physics.base import LinearOperator
from suppa_jax.typing import DenoiserApply

__all__ = ["MethodSpec", "get", "make", "names", "register", "unregister"]


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A training method as the rest of the project sees it.

    ``settings(config)`` maps an experiment config (``ml_collections.ConfigDict``) to the
    factory's keyword settings. ``task_kinds``: the ``config.task.kind`` values it trains on
    (``None``: every kind of the task registry except ``"denoise"``, the prior's pre-training).
    ``iterations_setting``: the setting that bounds the forward iterations (``"max_iters"`` for
    the fixed-point methods, ``"iters"`` for explicit unrolling), or ``None``; with
    ``fixed_iterations`` the method always runs exactly that many (``predict`` included).
    """

    name: str
    factory: Callable[..., Method]
    label: str
    settings: Callable[[Any], dict[str, Any]]
    task_kinds: tuple[str, ...] | None = None
    iterations_setting: str | None = "max_iters"
    fixed_iterations: bool = False


_REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` under ``spec.name`` (an existing name is an error); returns it."""
    if spec.name in _REGISTRY:
        raise ValueError(f"a method named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove the method ``name`` (for tests and interactive sessions)."""
    _REGISTRY.pop(name)


def names() -> tuple[str, ...]:
    """The registered method names, in registration order."""
    return tuple(_REGISTRY)


def get(name: str) -> MethodSpec:
    """The entry of method ``name``; a ``ValueError`` lists the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown training method {name!r}; choose one of {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def make(name: str, apply: DenoiserApply, op: LinearOperator | None, **settings: Any) -> Method:
    """The method called ``name`` with keyword ``settings``; a wrong setting is a
    ``ValueError`` naming the method."""
    spec = get(name)
    try:
        return spec.factory(apply, op, **settings)
    except TypeError as error:  # an unknown or missing setting
        raise ValueError(f"method {name!r}: {error}") from None
