"""Checkpoints of a ``train.py`` run (orbax): the latest states and the best trainables.

In a workdir::

    checkpoints/<step>/   state: TrainState (params, Adam moments, step); data: the grain
                          iterator state of every process; config: the run's config; the last
                          ``keep`` kept
    best/<step>/          trainable: the trainables of the best validations so far (two kept,
                          so that one can stand in for the other); config; metrics
    set_aside/            checkpoints that could not be used, moved here (never deleted)

orbax writes each checkpoint to a temporary directory and renames it when complete, so a kill
leaves the earlier ones intact. A checkpoint that cannot be used all the same (truncated or
missing files, another structure, another config) is passed over by :func:`first_readable`
for the next older one, with a warning naming its step and the reason.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import jax
import orbax.checkpoint as ocp

from suppa_jax.config import changes
from suppa_jax.errors import WorkdirError
from suppa_jax.typing import Trainable

__all__ = [
    "BEST_KEPT",
    "Best",
    "OtherConfigError",
    "WorkdirError",
    "best_steps",
    "best_trainable",
    "check_config",
    "first_readable",
    "managers",
    "reason",
    "set_aside",
    "stored_config",
    "unreadable_metrics",
]

#: Best checkpoints kept: the best and a stand-in should it be unreadable.
BEST_KEPT = 2

T = TypeVar("T")


class OtherConfigError(ValueError):
    """A checkpoint was saved by a run with another config."""


def managers(workdir: Path, keep: int) -> tuple[ocp.CheckpointManager, ocp.CheckpointManager]:
    """The managers of ``workdir/checkpoints`` (the last ``keep``) and ``workdir/best``
    (:data:`BEST_KEPT`, by the highest ``val_psnr``)."""
    # A kill during a save leaves its temporary directory: incomplete, never a checkpoint, so
    # removed on start (cleanup_tmp_directories) lest the step's next save meet it.
    latest = ocp.CheckpointManager(
        workdir / "checkpoints",
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, cleanup_tmp_directories=True
        ),
    )
    best = ocp.CheckpointManager(
        workdir / "best",
        options=ocp.CheckpointManagerOptions(
            max_to_keep=BEST_KEPT,
            best_fn=lambda m: m["val_psnr"],
            best_mode="max",
            create=True,
            cleanup_tmp_directories=True,
        ),
    )
    return latest, best


def reason(error: BaseException, limit: int = 240) -> str:
    """One short line for ``error``: its type and the first line of its message. A longer one
    (tensorstore's embed paths and kilobytes of JSON) keeps its head and its tail, where the
    cause is (``… No space left on device [os_error_code='28']``)."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    if len(text) <= limit:
        return text
    head = limit * 3 // 5
    return f"{text[:head]} … {text[head - limit + 3 :]}"


def first_readable(
    steps: Sequence[int],
    read: Callable[[int], T],
    *,
    what: str,
    warn: Callable[[str], None] | None = None,
) -> tuple[int, T, list[tuple[int, str]]]:
    """``(step, read(step), failures)`` for the first of ``steps`` that ``read`` accepts.

    Each step that fails is reported by ``warn`` (default: one line on stderr) with its reason
    and collected in ``failures`` as ``(step, reason)``; the caller decides what to do with it
    (:func:`set_aside`). Any exception of ``read`` counts as unreadable: orbax and tensorstore
    raise ``ValueError``, ``FileNotFoundError``, ``OSError`` and others for damaged files.
    Raises :class:`WorkdirError` listing every step and its reason when none can be read.
    """
    warn = warn or (lambda line: print(line, file=sys.stderr))
    failures = []
    for step in steps:
        try:
            return step, read(step), failures
        except Exception as error:  # any failure to read: try the next one (see docstring)
            failures.append((step, reason(error)))
            warn(f"warning: {what}, step {step}, cannot be used ({failures[-1][1]}); skipped")
    listed = "; ".join(f"step {step}: {why}" for step, why in failures)
    raise WorkdirError(f"no {what} can be used ({listed})")


def set_aside(directory: Path, step: int, workdir: Path) -> Path:
    """Move ``directory/<step>`` to ``workdir/set_aside/<directory name>-<step>`` (with ``-2``,
    ``-3``… if taken), out of orbax's sight but kept; returns where it went."""
    aside = workdir / "set_aside"
    aside.mkdir(exist_ok=True)
    stem = f"{directory.name}-{step}"
    names = itertools.chain([stem], (f"{stem}-{n}" for n in itertools.count(2)))
    target = next(aside / name for name in names if not (aside / name).exists())
    (directory / str(step)).rename(target)
    return target


def stored_config(step_directory: Path) -> dict[str, Any] | None:
    """The config saved beside a checkpoint; ``None`` for checkpoints saved before configs
    were (their run's ``config.json`` describes them)."""
    if not (step_directory / "config").is_dir():
        return None
    return ocp.Checkpointer(ocp.JsonCheckpointHandler()).restore(step_directory / "config")


def check_config(stored: Mapping[str, Any] | None, config: Mapping[str, Any]) -> None:
    """Raise :class:`OtherConfigError` naming the fields in which a checkpoint's ``stored``
    config differs from ``config`` (beyond :data:`~suppa_jax.config.changes.RESUMABLE_FIELDS`)."""
    changed = {} if stored is None else changes.differences(stored, config)
    if changed:
        raise OtherConfigError(f"saved with another config: {changes.describe(changed)}")


def _val_psnr(step_directory: Path) -> float:
    """The ``val_psnr`` a best checkpoint was saved with; ``-inf`` when unreadable."""
    try:
        return float(json.loads((step_directory / "metrics" / "metrics").read_text())["val_psnr"])
    except (OSError, ValueError, KeyError, TypeError):
        return float("-inf")


def unreadable_metrics(directory: Path) -> list[int]:
    """The steps of a ``best/`` directory whose saved metrics cannot be read: orbax's manager
    cannot even open a directory that holds one, so they are set aside before it does."""
    steps = [int(p.name) for p in directory.glob("*") if p.name.isdigit() and p.is_dir()]
    return sorted(step for step in steps if _val_psnr(directory / str(step)) == float("-inf"))


def best_steps(directory: Path) -> list[int]:
    """The steps in ``directory`` (a run's ``best/``), best validation PSNR first."""
    steps = [int(p.name) for p in directory.glob("*") if p.name.isdigit() and p.is_dir()]
    return sorted(steps, key=lambda step: (-_val_psnr(directory / str(step)), -step))


def _read_trainable(path: Path) -> Trainable:
    """The trainables at ``path``, on this process's first device, whatever the topology of
    the run that saved them."""
    checkpointer = ocp.StandardCheckpointer()
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    metadata = checkpointer.metadata(path).item_metadata
    if metadata is None:  # what orbax returns when the array files are damaged
        raise ValueError(f"the array metadata in {path} cannot be read")
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), metadata.tree
    )
    return checkpointer.restore(path, target)


@dataclasses.dataclass(frozen=True)
class Best:
    """A run's best readable validation checkpoint: its step, its trainables (denoiser params
    and learned scalars) and the config saved with it (``None`` for older runs)."""

    step: int
    trainable: Trainable
    config: dict[str, Any] | None


def best_trainable(workdir: str | Path, warn: Callable[[str], None] | None = None) -> Best:
    """The best validation checkpoint of a ``train.py`` run that can be read.

    Unreadable ones are skipped with a warning (and left in place); :class:`WorkdirError` when
    none can be read or there is none.
    """
    directory = Path(workdir).resolve() / "best"
    steps = best_steps(directory)
    if not steps:
        raise WorkdirError(f"{workdir}: no best/ checkpoint (is it a train.py workdir?)")

    def read(step: int) -> Best:
        path = directory / str(step)
        return Best(step, _read_trainable(path / "trainable"), stored_config(path))

    return first_readable(steps, read, what=f"best checkpoint in {directory}", warn=warn)[1]
