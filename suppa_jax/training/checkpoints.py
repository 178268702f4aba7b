"""Checkpoints of a ``train.py`` run (orbax): the latest states and the best trainables.

In a workdir::

    checkpoints/<step>/   TrainState (params, Adam moments, step) and the grain iterator state
                          of every process; the last ``keep`` kept
    best/<step>/          the trainables with the best validation PSNR so far

orbax writes each checkpoint to a temporary directory and renames it when complete, so a kill
leaves the earlier ones intact.
"""

from __future__ import annotations

from pathlib import Path

import jax
import orbax.checkpoint as ocp

from suppa_jax.typing import Trainable

__all__ = ["best_trainable", "managers"]


def managers(workdir: Path, keep: int) -> tuple[ocp.CheckpointManager, ocp.CheckpointManager]:
    """The managers of ``workdir/checkpoints`` (the last ``keep``) and ``workdir/best`` (one,
    by the highest ``val_psnr``)."""
    latest = ocp.CheckpointManager(
        workdir / "checkpoints",
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
    )
    best = ocp.CheckpointManager(
        workdir / "best",
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, best_fn=lambda m: m["val_psnr"], best_mode="max", create=True
        ),
    )
    return latest, best


def best_trainable(workdir: str | Path) -> tuple[int, Trainable]:
    """The step and trainables (denoiser params and learned scalars) of a run's best validation.

    Read onto this process's first device, whatever the topology of the run that saved them.
    """
    directory = Path(workdir).resolve() / "best"
    steps = sorted(int(p.name) for p in directory.glob("*") if p.name.isdigit())
    if not steps:
        raise FileNotFoundError(f"{workdir}: no best/ checkpoint (is it a train.py workdir?)")
    path = directory / str(steps[-1]) / "trainable"
    checkpointer = ocp.StandardCheckpointer()
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
        checkpointer.metadata(path).item_metadata.tree,
    )
    return steps[-1], checkpointer.restore(path, target)
