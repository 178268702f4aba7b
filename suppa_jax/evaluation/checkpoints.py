"""What ``evaluate.py --checkpoint`` names: a ``train.py`` workdir or a denoiser params file."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from suppa_jax import build, tasks
from suppa_jax import config as config_lib
from suppa_jax.evaluation.restorers import Restorer, jitted_predict, method_restorer, pnp_restorer
from suppa_jax.evaluation.tasks import (
    check_task,
    task_config,
    task_label,
    trained_over_a_family,
)
from suppa_jax.evaluation.tuning import resolve_pnp_sigma
from suppa_jax.models import registry, weights
from suppa_jax.paths import resolve_path
from suppa_jax.training import checkpoints
from suppa_jax.typing import Params

__all__ = [
    "Model",
    "check_trainable",
    "load_denoiser",
    "load_model",
    "load_prior",
    "resolve_path",
    "run_config",
    "workdir_prior",
]


def load_prior(path: str | Path) -> weights.Prior:
    """The denoiser in a ``.msgpack`` or PyTorch ``.pth`` file, with the PnP levels it records
    (:func:`~suppa_jax.models.weights.load_prior`), the path resolved by :func:`resolve_path`.

    Raises ``ValueError`` naming the file when it is missing, of another type or not a denoiser.
    """
    path = resolve_path(str(path), "params file")
    if path.is_dir():
        raise ValueError(
            f"{path}: not a params file (expected {', '.join(weights.PARAMS_SUFFIXES)} or a "
            "train.py workdir)"
        )
    return weights.load_prior(path)


def load_denoiser(path: str | Path) -> Params:
    """The params of :func:`load_prior`."""
    return load_prior(path).params


def workdir_prior(
    workdir: Path, best: checkpoints.Best, config: ml_collections.ConfigDict
) -> weights.Prior:
    """The denoiser of a denoiser pre-training run's best checkpoint, as a prior (no stored
    PnP levels), its architecture that of the run's ``config.model``."""
    check_trainable(config, best.trainable, workdir)
    return weights.Prior(build.build_model(config), best.trainable["denoiser"], {}, workdir)


def run_config(workdir: Path, stored: Mapping[str, Any] | None) -> ml_collections.ConfigDict:
    """The config saved with the checkpoint, else (runs from before configs were saved with
    each checkpoint) the run's ``config.json``; lists back to tuples, validated."""
    path = workdir / "config.json"
    where = f"{workdir}: the best checkpoint's config" if stored is not None else str(path)
    if stored is None:
        if not path.is_file():
            raise ValueError(f"{workdir}: no config.json and no config in its best checkpoint")
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
    schema = config_lib.flatten(config_lib.base())
    values = {
        k: tuple(v) if isinstance(schema.get(k), tuple) and isinstance(v, list) else v
        for k, v in config_lib.flatten(stored).items()
    }
    try:
        config = config_lib.apply_overrides(config_lib.base(), values)
        config_lib.validate(config)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err.args[0] if err.args else err}") from err
    return config


def check_trainable(
    config: ml_collections.ConfigDict, trainable: Mapping[str, Any], workdir: Path
) -> None:
    """The trainables fit ``config``: the denoiser's architecture and the method's scalars."""
    if not isinstance(trainable, Mapping) or "denoiser" not in trainable:
        raise ValueError(f"{workdir}: the best checkpoint holds no denoiser params")
    expected = build.build_model(config)
    try:
        registry.check_params(expected, trainable["denoiser"])
    except ValueError as err:
        raise ValueError(f"architecture mismatch: {workdir}: {err} (its config.model)") from err
    method = build.build_method(config, expected, None)  # init needs no operator
    shapes = jax.eval_shape(method.init, trainable["denoiser"])
    want = {k: tuple(v.shape) for k, v in shapes.items() if k != "denoiser"}
    have = {k: tuple(np.shape(v)) for k, v in trainable.items() if k != "denoiser"}
    if want != have:
        raise ValueError(
            f"method mismatch: {workdir} holds the scalars {have} but its method "
            f"{config.method!r} needs {want}"
        )


@dataclasses.dataclass(frozen=True)
class Model:
    """What ``--checkpoint`` resolves to: the model's row, the task (its label, see
    :func:`~suppa_jax.evaluation.tasks.task_label`, and its ``config.task`` section), and the
    pre-trained denoiser it started from (the PnP baseline's; ``None`` when unknown), and the
    image channels it restores (3: RGB, 1: grayscale)."""

    restorer: Restorer
    task: str
    task_config: ml_collections.ConfigDict
    pretrained: str | None
    channels: int
    info: Mapping[str, Any]


def load_model(
    checkpoint: str,
    task: str | None,
    *,
    max_iters: int = 50,
    tol: float = 1e-3,
    pnp_sigma: float | str | None = None,
    log: Callable[[str], None] | None = print,
) -> Model:
    """Resolve ``checkpoint``: a ``train.py`` workdir (its best validation checkpoint, run as its
    method with the evaluation's ``max_iters``/``tol``) or a params file (plug-and-play ADMM
    with that denoiser and ``pnp_sigma``, see :func:`resolve_pnp_sigma`).

    ``task`` (a named task) must be the workdir's task; ``None`` takes the workdir's, whatever
    its kernel, scale and noise level. A params file needs a named task.
    Raises ``ValueError`` with a one-line message naming the mismatch: a missing checkpoint, a
    directory that is not a workdir, an architecture or method that does not fit the run's
    config, a task other than the run's.
    """
    path = Path(checkpoint)
    if not path.exists():
        raise ValueError(f"checkpoint {checkpoint!r} does not exist")
    if task is not None:
        tasks.get_task(task)  # raises for an unknown name
    if path.is_dir():
        if not (path / "best").is_dir():
            raise ValueError(f"{path} is a directory but not a train.py workdir (no best/)")
        best = checkpoints.best_trainable(path)
        config = run_config(path, best.config)
        if config.method != "denoiser":
            return _load_run(path, config, best, task, max_iters, tol)
        prior = workdir_prior(path, best, config)
        source = f"{path} (best denoiser, step {best.step})"
    else:
        prior, source = load_prior(path), str(path)
    if task is None:
        raise ValueError(f"--task is needed with a denoiser checkpoint ({checkpoint})")
    task_cfg = task_config(task)
    op = build.build_physics(task_cfg)
    sigma = resolve_pnp_sigma(pnp_sigma, prior, task_cfg, log)
    row = pnp_restorer(
        prior.denoiser,
        op,
        sigma=sigma,
        max_iters=max_iters,
        tol=tol,
        label=f"PnP-ADMM ({path.stem or path.name})",
        slug="pnp_model",
    )
    info = {"kind": "denoiser", "checkpoint": source, **row.info}
    return Model(row, task, task_cfg, None, prior.model.channels, info)


def _load_run(
    workdir: Path,
    config: ml_collections.ConfigDict,
    best: checkpoints.Best,
    task: str | None,
    max_iters: int,
    tol: float,
) -> Model:
    if task is not None:
        check_task(task, config.task, str(workdir))
    step, trainable = best.step, best.trainable
    check_trainable(config, trainable, workdir)
    config.admm.max_iters, config.admm.tol = max_iters, tol
    op = build.build_physics(config.task).fixed
    row = method_restorer(config, trainable, jitted_predict(config, op))
    info = {"kind": "train.py workdir", "checkpoint": str(workdir), "step": step, **row.info}
    measured_on, label = config.task, task_label(config.task)
    if task is not None and trained_over_a_family(config.task):
        # A run over a family is measured on the task asked for (check_task allowed it).
        measured_on, label = task_config(task), task
        info["trained_on"] = task_label(config.task)
    return Model(row, label, measured_on, config.model.init or None, config.model.channels, info)
