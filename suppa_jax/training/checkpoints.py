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

:class:`RunCheckpoints` is what the training loop holds: both managers, the data iterator whose
position is saved with each state, the run's config saved beside each checkpoint, and the
set-aside policy on start; :class:`Saves` turns a save's failure in orbax's writer thread into
a :class:`~suppa_jax.errors.WorkdirError`. :func:`check_resumable` refuses to resume a run
under another config (:mod:`suppa_jax.config.changes`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grain
import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from suppa_jax.config import changes
from suppa_jax.errors import WorkdirError
from suppa_jax.training.step import TrainState
from suppa_jax.typing import Trainable

__all__ = [
    "BEST_KEPT",
    "Best",
    "OtherConfigError",
    "RunCheckpoints",
    "Saves",
    "WorkdirError",
    "best_steps",
    "best_trainable",
    "check_config",
    "check_resumable",
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


# ------------------------------------------------------------------ a training run's checkpoints


def _holds_checkpoints(workdir: Path) -> bool:
    return any(p.name.isdigit() for d in ("checkpoints", "best") for p in (workdir / d).glob("*"))


def check_resumable(workdir: Path, config: dict[str, Any], allow_config_change: bool) -> None:
    """Refuse to resume the run in ``workdir`` with a config other than its ``config.json``
    (beyond :data:`~suppa_jax.config.changes.RESUMABLE_FIELDS`) unless
    ``allow_config_change``; an unreadable ``config.json`` is reported and left to the
    checkpoints' own configs."""
    path = workdir / "config.json"
    if allow_config_change or not path.is_file() or not _holds_checkpoints(workdir):
        return
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        print(f"warning: {path} cannot be read ({reason(error)})", file=sys.stderr)
        return
    changed = changes.differences(stored, config)
    if changed:
        raise ValueError(
            f"{workdir} holds a run with another config ({changes.describe(changed)}): use "
            "another --workdir, or resume this run with these changes by adding "
            "--allow_config_change"
        )


@dataclasses.dataclass
class Saves:
    """One orbax manager's asynchronous saves: the newest confirmed step and the one in flight.

    A save's failure (a full disk, a read-only directory) surfaces in orbax's writer thread,
    so it is confirmed at the next save or at the end; either way it becomes a
    :class:`~suppa_jax.training.WorkdirError` naming the step, the directory and
    the newest complete checkpoint (which, like every earlier one, is untouched).
    """

    manager: ocp.CheckpointManager
    complete: int | None = None
    pending: int | None = None

    @property
    def directory(self) -> Path:
        return Path(self.manager.directory)

    def confirm(self) -> None:
        if self.pending is None:
            return
        try:
            self.manager.wait_until_finished()
        except Exception as error:  # whatever orbax's writer raised
            raise self._failed(self.pending, error) from error
        self.complete, self.pending = self.pending, None

    def save(self, step: int, args: ocp.args.Composite, **kwargs: Any) -> None:
        if step in (self.complete, self.pending):
            return
        self.confirm()
        try:
            self.manager.save(step, args=args, **kwargs)
        except Exception as error:  # e.g. PermissionError making its temporary directory
            raise self._failed(step, error) from error
        self.pending = step

    def _failed(self, step: int, error: Exception) -> WorkdirError:
        intact = "none yet" if self.complete is None else f"step {self.complete} and earlier"
        return WorkdirError(
            f"cannot save the checkpoint of step {step} in {self.directory} "
            f"({reason(error)}); stopped. Complete checkpoints ({intact}) are "
            "untouched: free space (or make the directory writable) and run the same command "
            "to resume"
        )


class RunCheckpoints:
    """The run's latest states (with the data iterator's position) and best trainables, each
    saved with the run's config. On start, a checkpoint that cannot be used (unreadable, or
    saved with another config unless ``accept_other_config``) is set aside for the next older
    one (:mod:`suppa_jax.training.checkpoints`)."""

    def __init__(
        self,
        workdir: Path,
        keep: int,
        iterator: Any,
        config: dict[str, Any],
        accept_other_config: bool,
    ) -> None:
        self.workdir, self.iterator, self.config = workdir, iterator, config
        self.accept_other_config = accept_other_config
        bad_metrics = unreadable_metrics(workdir / "best")
        for step in bad_metrics:
            print(
                f"warning: best checkpoint in {workdir / 'best'}, step {step}, cannot be used "
                "(its metrics cannot be read); skipped",
                file=sys.stderr,
            )
        self._set_aside(workdir / "best", bad_metrics)
        latest, best = managers(workdir, keep)
        self.latest, self.best = Saves(latest), Saves(best)

    @property
    def last_saved(self) -> int | None:
        return self.latest.complete

    def _check_config(self, step_directory: Path) -> None:
        if not self.accept_other_config:
            check_config(stored_config(step_directory), self.config)

    def _set_aside(self, directory: Path, steps: list[int]) -> None:
        """Move ``steps`` of ``directory`` to ``set_aside/`` (process 0; the others wait)."""
        if not steps:
            return
        if jax.process_index() == 0:
            for step in steps:
                target = set_aside(directory, step, self.workdir)
                print(f"Moved {directory / str(step)} aside to {target}.", file=sys.stderr)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("suppa_jax: checkpoints set aside")

    def restore(self, abstract: TrainState) -> TrainState | None:
        """The newest usable state (``abstract``: its shapes and shardings), the iterator set
        to its position; ``None`` for a fresh run. Raises ``WorkdirError`` listing every
        checkpoint when none can be used (and leaves them where they are)."""
        steps = sorted(self.latest.manager.all_steps(), reverse=True)
        if not steps:
            return None

        def read(step: int) -> TrainState:
            self._check_config(self.latest.directory / str(step))
            restored = self.latest.manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract),
                    data=grain.checkpoint.CheckpointRestore(self.iterator),
                ),
            )
            return TrainState(*restored.state)

        what = f"checkpoint in {self.latest.directory}"
        step, state, failures = first_readable(steps, read, what=what)
        self._set_aside(self.latest.directory, [bad for bad, _ in failures])
        self.latest.manager.reload()
        self.latest.complete = step
        print(f"Resumed from {self.latest.directory} at step {step}.")
        return state

    def check_best(self, abstract: Trainable) -> None:
        """Set aside best checkpoints that cannot be used, down to the first that can; if none
        can, all are set aside with a warning and the run's validations start a new best/."""
        steps = best_steps(self.best.directory)

        def read(step: int) -> None:
            self._check_config(self.best.directory / str(step))
            self.best.manager.restore(
                step, args=ocp.args.Composite(trainable=ocp.args.StandardRestore(abstract))
            )

        if not steps:
            return
        try:
            _, _, failures = first_readable(
                steps, read, what=f"best checkpoint in {self.best.directory}"
            )
        except WorkdirError:
            print(f"warning: {self.best.directory} starts anew", file=sys.stderr)
            failures = [(step, "") for step in steps]
        self._set_aside(self.best.directory, [bad for bad, _ in failures])
        self.best.manager.reload()

    def save(self, step: int, state: TrainState) -> None:
        """Save ``state``, the iterator's position and the config at ``step`` (once per step)."""
        # One manager's save at a time: with several processes, orbax's saves enter barriers
        # of fixed names, and two managers saving at once reuse one ("Barrier
        # ThreadSaveMultiHostValueHolder:set_value_start is already ongoing").
        self.best.confirm()
        self.latest.save(
            step,
            ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                data=grain.checkpoint.CheckpointSave(self.iterator),
                config=ocp.args.JsonSave(self.config),
            ),
        )

    def save_best(self, step: int, trainable: Trainable, values: dict[str, float]) -> None:
        """Offer the validated trainables to ``best/`` (kept if their ``val_psnr`` is among the
        best). A step already there (validated again after resuming from an older checkpoint,
        with the same result) is kept as it is."""
        if step in self.best.manager.all_steps():
            return
        self.latest.confirm()  # one manager's save at a time (see save)
        self.best.save(
            step,
            ocp.args.Composite(
                trainable=ocp.args.StandardSave(trainable), config=ocp.args.JsonSave(self.config)
            ),
            metrics=values,
        )

    def close(self, *, failing: bool = False) -> None:
        """Wait for the saves in flight; when the run is ``failing`` already, a save's failure
        is not raised over the error that stopped it."""
        for saves in (self.latest, self.best):
            try:
                saves.confirm()
            except WorkdirError:
                if not failing:
                    raise
