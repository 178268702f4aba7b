"""Named tasks in evaluation: their ``config.task`` sections, and matching a run's task."""

from __future__ import annotations

import math
from typing import Any

import ml_collections

from suppa_jax import config as config_lib
from suppa_jax import tasks
from suppa_jax.tasks import measurement_fields

__all__ = [
    "check_task",
    "describe",
    "task_config",
    "task_label",
    "task_name",
    "trained_over_a_family",
]


def task_config(task: str) -> ml_collections.ConfigDict:
    """The ``config.task`` section of the named task ``task`` (:func:`suppa_jax.tasks.task_names`):
    its kind's experiment at its scale, with the task's own settings."""
    return config_lib.task_experiment(task).task


def _same(a: Any, b: Any) -> bool:
    """Equal, floats up to rounding (``0.1·s²`` computed two ways); ``None`` = absent."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def task_name(task: ml_collections.ConfigDict) -> str | None:
    """The name of the named task whose measurements ``task`` makes, or ``None``."""
    fields = measurement_fields(task)
    for name in tasks.task_names():
        reference = measurement_fields(task_config(name))
        if fields.keys() == reference.keys() and all(
            _same(fields[k], reference[k]) for k in fields
        ):
            return name
    return None


def task_label(task: ml_collections.ConfigDict) -> str:
    """A short name for the measurements of ``task``: the named task's (``"sr2"``), or the
    nearest named task of the same kind and scale and the fields that differ
    (``"deblur (noise_sigma=0.02)"``), or else :func:`describe`."""
    name = task_name(task)
    if name is not None:
        return name
    fields = measurement_fields(task)
    for candidate in tasks.task_names():
        reference = measurement_fields(task_config(candidate))
        if (reference["kind"], reference["scale"]) == (fields["kind"], fields["scale"]):
            differ = [f"{k}={v!r}" for k, v in fields.items() if not _same(v, reference.get(k))]
            return f"{candidate} ({', '.join(differ)})"
    return describe(task)


def describe(task: ml_collections.ConfigDict) -> str:
    """``kind='sr', scale=2, …``: the measurement fields of a task section."""
    return ", ".join(f"{k}={v!r}" for k, v in measurement_fields(task).items())


def trained_over_a_family(task: ml_collections.ConfigDict) -> bool:
    """Whether ``task`` draws its measurements' operator or noise level per example."""
    random_kernel = task.kernel in tasks.get_kind(task.kind).random_kernels
    return random_kernel or task.noise_sigma_max > task.noise_sigma


def check_task(requested: str, trained: ml_collections.ConfigDict, where: str) -> None:
    """Raise a ``ValueError`` naming both tasks unless ``trained`` is the task ``requested``.

    A run trained over a family (random kernels or masks, a range of noise levels) may be
    evaluated on any named task of its kind, scale and boundary: fixed kernels inside and
    outside the family, other noise levels."""
    asked, found = measurement_fields(task_config(requested)), measurement_fields(trained)
    if trained_over_a_family(trained):
        asked = {k: asked.get(k) for k in ("kind", "scale", "boundary")}
        found = {k: found.get(k) for k in asked}
    differ = [
        f"task.{k} {asked.get(k)!r} vs {found.get(k)!r}"
        for k in dict.fromkeys([*asked, *found])
        if not _same(asked.get(k), found.get(k))
    ]
    if differ:
        trained_name = task_name(trained) or describe(trained)
        raise ValueError(
            f"task mismatch: --task={requested} but {where} was trained for {trained_name} "
            f"({'; '.join(differ)})"
        )
