"""Start-up validation of a whole config: one ``ValueError`` naming the field and its value."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from suppa_jax import methods, tasks
from suppa_jax.config import sources as specs
from suppa_jax.config.schema import ConfigDict, base, flatten
from suppa_jax.models import registry
from suppa_jax.models.base import COMPUTE_DTYPES
from suppa_jax.models.weights import PARAMS_SUFFIXES

__all__ = ["PATCH_MULTIPLE", "check_batch_divisible", "validate"]

#: DRUNet's three stride-2 levels: HR training patches must be a multiple of this.
PATCH_MULTIPLE = 8


def _fail(path: str, requirement: str, value: Any) -> ValueError:
    return ValueError(f"config.{path} must {requirement}, got {value!r}")


def _type_matches(value: Any, reference: Any) -> bool:
    """``int`` is a ``float``; ``bool`` is not an ``int``; tuples compare element-wise."""
    if isinstance(reference, bool):
        return isinstance(value, bool)
    if isinstance(reference, int):
        return isinstance(value, int | np.integer) and not isinstance(value, bool)
    if isinstance(reference, float):
        return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        )
    if isinstance(reference, tuple):
        return isinstance(value, tuple | list) and all(
            _type_matches(v, reference[0]) for v in value
        )
    return isinstance(value, type(reference))


def _check_schema(values: dict[str, Any]) -> None:
    """The config has exactly the fields of :func:`base`, each of its type, floats finite."""
    schema = flatten(base())
    for path in values:
        if path not in schema:
            section = path.rpartition(".")[0]
            known = [p.rpartition(".")[2] for p in schema if p.rpartition(".")[0] == section]
            where = f"config.{section}" if section else "config"
            raise ValueError(
                f"config.{path} is not a known field; those of {where}: {', '.join(known)}"
            )
    for path, reference in schema.items():
        if path not in values:
            raise ValueError(f"config.{path} is missing")
        value = values[path]
        if not _type_matches(value, reference):
            kind = type(reference).__name__
            if isinstance(reference, tuple):
                kind = f"tuple of {type(reference[0]).__name__}"
            raise _fail(path, f"be of type {kind}", value)
        if isinstance(reference, float) and not math.isfinite(value):
            raise _fail(path, "be finite", value)


_Rule = tuple[str, Callable[[Any], bool], str]

_NOISE_SCALE = "(noise levels are on the [0, 1] scale: 25/255, not 25)"

# (path, predicate, requirement): the per-field range checks.
_RULES: tuple[_Rule, ...] = (
    ("task.blur_sigma", lambda v: v > 0, "be > 0"),
    ("task.blur_size", lambda v: v >= 1, "be >= 1"),
    ("task.noise_sigma", lambda v: 0 <= v <= 1, f"be in [0, 1] {_NOISE_SCALE}"),
    ("task.noise_sigma_max", lambda v: 0 <= v <= 1, f"be in [0, 1] {_NOISE_SCALE}"),
    (
        "task.blur_sigma_range",
        lambda v: len(v) == 2 and 0 < v[0] <= v[1],
        "be (low, high) with 0 < low <= high",
    ),
    (
        "task.motion_length_range",
        lambda v: len(v) == 2 and 0 < v[0] <= v[1],
        "be (low, high) with 0 < low <= high",
    ),
    ("task.mask_rate", lambda v: 0 <= v < 1, "be in [0, 1) (the fraction of missing pixels)"),
    ("task.mask_boxes", lambda v: v >= 1, "be >= 1"),
    ("task.mask_box_size", lambda v: 0 < v < 1, "be in (0, 1) (of the image's side)"),
    ("admm.rho", lambda v: v > 0, "be > 0"),
    ("admm.sigma", lambda v: 0 < v <= 1, f"be in (0, 1] {_NOISE_SCALE}"),
    ("admm.max_iters", lambda v: v >= 1, "be >= 1"),
    ("admm.tol", lambda v: v > 0, "be > 0"),
    ("admm.unrolled_iters", lambda v: v >= 1, "be >= 1"),
    ("admm.lam", lambda v: v >= 0, "be >= 0"),
    ("admm.random_states", lambda v: v >= 1, "be >= 1"),
    ("admm.backward_max_iters", lambda v: v >= 1, "be >= 1"),
    ("admm.backward_tol", lambda v: v > 0, "be > 0"),
    ("admm.anderson_memory", lambda v: v >= 0, "be >= 0 (0: no Anderson acceleration)"),
    ("denoiser.sigma_min", lambda v: 0 <= v <= 1, f"be in [0, 1] {_NOISE_SCALE}"),
    ("denoiser.sigma_max", lambda v: 0 < v <= 1, f"be in (0, 1] {_NOISE_SCALE}"),
    ("denoiser.sigma_power", lambda v: v > 0, "be > 0 (1: uniform noise levels)"),
    ("model.channels", lambda v: v in (1, 3), "be 3 (RGB) or 1 (grayscale)"),
    (
        "model.compute_dtype",
        lambda v: v in COMPUTE_DTYPES,
        f"be one of {list(COMPUTE_DTYPES)}",
    ),
    (
        "model.init",
        lambda v: v == "" or v.lower().endswith(PARAMS_SUFFIXES),
        f"be '' (random init) or a params file ending in {' or '.join(PARAMS_SUFFIXES)}",
    ),
    ("data.feature", lambda v: v != "", "be a TFDS image feature name"),
    ("data.patch", lambda v: v >= 1, "be >= 1"),
    ("data.patches_per_image", lambda v: v >= 1, "be >= 1"),
    ("data.deadleaves_images", lambda v: v >= 1, "be >= 1"),
    ("data.deadleaves_size", lambda v: v >= 0, "be >= 0 (0: the HR patch, patch·scale)"),
    ("data.seed", lambda v: v >= 0, "be >= 0"),
    ("data.worker_count", lambda v: v >= 0, "be >= 0"),
    ("task.cg_tol", lambda v: v > 0, "be > 0"),
    ("task.cg_max_iters", lambda v: v >= 1, "be >= 1"),
    ("data.read_threads", lambda v: v >= 1, "be >= 1"),
    ("data.max_eval_images", lambda v: v >= 0, "be >= 0 (0: all)"),
    ("data.eval_crop", lambda v: v >= 0, "be >= 0 (0: full images)"),
    ("train.epochs", lambda v: v >= 1, "be >= 1"),
    ("train.batch_size", lambda v: v >= 1, "be >= 1"),
    ("train.lr", lambda v: v > 0, "be > 0"),
    ("train.scalar_lr", lambda v: v > 0, "be > 0"),
    ("train.admm_lr", lambda v: v > 0, "be > 0"),
    ("train.decay_epochs", lambda v: v >= 1, "be >= 1"),
    ("train.decay_rate", lambda v: 0 < v <= 1, "be in (0, 1] (1: no decay)"),
    ("train.seed", lambda v: v >= 0, "be >= 0"),
    ("train.log_every_steps", lambda v: v >= 1, "be >= 1"),
    ("train.checkpoint_every_steps", lambda v: v >= 1, "be >= 1"),
    ("train.eval_every_epochs", lambda v: v >= 1, "be >= 1"),
    ("train.keep_checkpoints", lambda v: v >= 1, "be >= 1"),
    ("parallel.num_processes", lambda v: v >= 0, "be >= 0 (0: from the environment)"),
    ("parallel.process_id", lambda v: v >= -1, "be >= 0, or -1 (from the environment)"),
    (
        "parallel.coordinator_address",
        lambda v: v == "" or re.fullmatch(r"[^\s:]+:\d+", v) is not None,
        "be 'host:port' or '' (from the environment)",
    ),
)


def _check_method_and_task(values: dict[str, Any]) -> None:
    """The method and task kind are registered, the scale and kernel are the kind's, and the
    method trains on that kind (:class:`suppa_jax.methods.MethodSpec`)."""
    method, kind = values["method"], values["task.kind"]
    if method not in methods.names():
        raise _fail("method", f"be one of {list(methods.names())}", method)
    if kind not in tasks.kinds():
        raise _fail("task.kind", f"be one of {list(tasks.kinds())}", kind)
    task_kind = tasks.get_kind(kind)
    scale, kernel = values["task.scale"], values["task.kernel"]
    if scale not in task_kind.scales:
        allowed = task_kind.scales[0] if len(task_kind.scales) == 1 else list(task_kind.scales)
        requirement = f"be {'one of ' * (len(task_kind.scales) > 1)}{allowed} for kind {kind!r}"
        raise _fail("task.scale", requirement, scale)
    if kernel not in task_kind.kernels:
        raise _fail("task.kernel", f"be one of {list(task_kind.kernels)} for kind {kind!r}", kernel)
    if (boundary := values["task.boundary"]) not in task_kind.boundaries:
        requirement = f"be one of {list(task_kind.boundaries)} for kind {kind!r}"
        raise _fail("task.boundary", requirement, boundary)
    low, high = values["task.noise_sigma"], values["task.noise_sigma_max"]
    if high and high < low:
        raise _fail("task.noise_sigma_max", f"be 0 (off) or >= task.noise_sigma ({low})", high)
    spec = methods.get(method)
    trains_on = spec.task_kinds or tuple(k for k in tasks.kinds() if k != "denoise")
    if kind not in trains_on:
        raise ValueError(
            f"config.method {method!r} does not fit config.task.kind {kind!r}: "
            f"method {method!r} trains on kind {' or '.join(map(repr, trains_on))}"
        )


def _check_model(values: dict[str, Any]) -> None:
    """The architecture is registered and its own fields are valid (its entry's check); the
    pre-trained weights and the denoiser's noise range."""
    name = values["model.name"]
    if name not in registry.names():
        raise _fail("model.name", f"be one of {list(registry.names())}", name)
    model = {
        path.removeprefix("model."): v for path, v in values.items() if path.startswith("model.")
    }
    try:
        registry.build(name, model)
    except ValueError as err:
        raise ValueError(f"config.model.{err}") from None
    if values["model.init"] == "" and values["method"] != "denoiser":
        raise _fail(
            "model.init",
            f"name pre-trained denoiser weights for method {values['method']!r} ('' = random "
            "init is for method 'denoiser' only)",
            "",
        )
    if values["denoiser.sigma_min"] > values["denoiser.sigma_max"]:
        raise _fail(
            "denoiser.sigma_min",
            f"be <= config.denoiser.sigma_max ({values['denoiser.sigma_max']!r})",
            values["denoiser.sigma_min"],
        )


def _check_source(source_key: str, source: str, split_key: str, split: str) -> None:
    try:
        entries = specs.parse_mixture(source)
    except ValueError as err:
        raise _fail(source_key, f"be {specs.SOURCE_FORMS} ({err})", source) from None
    for _, entry in entries:
        kind, colon, location = entry.partition(":")
        bare = kind in ("samples", "deadleaves") and not colon
        if not bare and not (kind in ("folder", "tfds") and location):
            raise _fail(source_key, f"be {specs.SOURCE_FORMS}", source)
        if kind == "samples" and split not in specs.SAMPLE_SPLITS:
            requirement = f"be one of {list(specs.SAMPLE_SPLITS)} for source 'samples'"
            raise _fail(split_key, requirement, split)
        if kind == "tfds" and not split:
            raise _fail(split_key, "name a TFDS split (e.g. 'train', 'validation')", split)


def _check_data(values: dict[str, Any]) -> None:
    _check_source(
        "data.source", values["data.source"], "data.train_split", values["data.train_split"]
    )
    eval_key = "data.eval_source" if values["data.eval_source"] else "data.source"
    _check_source(eval_key, values[eval_key], "data.eval_split", values["data.eval_split"])
    patch, scale = values["data.patch"], values["task.scale"]
    leaves = values["data.deadleaves_size"]
    if leaves and leaves < patch * scale and "deadleaves" in values["data.source"]:
        raise _fail(
            "data.deadleaves_size",
            f"be 0 or at least the HR patch patch·scale = {patch * scale}",
            leaves,
        )
    if (patch * scale) % PATCH_MULTIPLE:
        raise _fail(
            "data.patch",
            f"give an HR patch patch·scale = {patch}·{scale} = {patch * scale} that is a multiple "
            f"of {PATCH_MULTIPLE} (DRUNet's three stride-2 levels)",
            patch,
        )


def _check_parallel(values: dict[str, Any]) -> None:
    processes, process_id = values["parallel.num_processes"], values["parallel.process_id"]
    if processes and process_id >= processes:
        requirement = f"be < config.parallel.num_processes ({processes})"
        raise _fail("parallel.process_id", requirement, process_id)
    if not values["parallel.multi_host"]:
        for path, unset in (
            ("parallel.coordinator_address", ""),
            ("parallel.num_processes", 0),
            ("parallel.process_id", -1),
        ):
            if values[path] != unset:
                raise _fail(path, f"stay {unset!r} unless config.parallel.multi_host", values[path])


def validate(config: ConfigDict | Mapping[str, Any]) -> None:
    """Check a whole config at start-up; raise ``ValueError`` naming the field and its value.

    Checks: exactly the fields of :func:`base` with their types (finite floats); the method, the
    task kind and its scale (2, 3, 4 for ``sr``, else 1) and kernel; method ``denoiser`` with
    kind ``denoise`` and only then; the model's architecture (a registered name, 1 or 3
    channels, and the fields that architecture reads); positive learning rates, ``rho``,
    tolerances, iteration counts, sizes and epochs; noise levels in [0, 1]; ``decay_rate`` in
    (0, 1]; pre-trained weights unless pre-training the denoiser; the data sources' forms (and
    the sample splits); an HR patch ``patch·scale`` that is a multiple of 8; the multi-host
    fields. It does not touch the file system (weights and image folders are checked where they
    are read) and does not know the device count (see :func:`check_batch_divisible`).
    """
    values = flatten(config)
    _check_schema(values)
    for path, ok, requirement in _RULES:
        if not ok(values[path]):
            raise _fail(path, requirement, values[path])
    _check_method_and_task(values)
    _check_model(values)
    _check_data(values)
    _check_parallel(values)


def check_batch_divisible(config: ConfigDict | Mapping[str, Any], device_count: int) -> None:
    """Raise unless the global ``train.batch_size`` splits evenly over ``device_count`` devices
    (``jax.device_count()``: all devices of all processes)."""
    batch_size = config["train"]["batch_size"]
    if batch_size % device_count:
        raise _fail(
            "train.batch_size",
            f"be divisible by the number of devices ({device_count})",
            batch_size,
        )
