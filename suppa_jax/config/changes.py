"""What a resumed run may change: the config of a checkpoint against the config it resumes with.

A ``train.py`` run stores its config beside every checkpoint (and in ``config.json``). Resuming
it with another config would silently train a different run under the old one's name, so
:func:`differences` lists the fields that differ, except :data:`RESUMABLE_FIELDS`: the ones
that set how long a run lasts and how it logs, saves and is launched, never what a training step
computes. A resumed run with only those changed is bitwise the run it continues.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from suppa_jax.config.schema import ConfigDict, base, flatten

__all__ = ["RESUMABLE_FIELDS", "as_json", "describe", "differences"]

#: Fields a resumed run may change without being another run.
RESUMABLE_FIELDS = frozenset(
    {
        "train.epochs",
        "train.log_every_steps",
        "train.checkpoint_every_steps",
        "train.keep_checkpoints",
        "train.eval_every_epochs",
        "data.worker_count",
        "data.read_threads",
        "parallel.coordinator_address",
        "parallel.process_id",
    }
)


def as_json(config: ConfigDict | Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as the plain JSON values it is stored as (tuples become lists)."""
    if isinstance(config, ConfigDict):
        return json.loads(config.to_json_best_effort())
    return json.loads(json.dumps(config))


def differences(
    stored: ConfigDict | Mapping[str, Any], current: ConfigDict | Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """``{field: (stored value, current value)}`` for every field outside
    :data:`RESUMABLE_FIELDS` that differs (a field missing on one side shows as ``None``).

    A field the stored config lacks because it was added to the schema after the run was saved
    counts as its default: a new field's default keeps what runs did before it existed (e.g.
    ``model.name = "drunet"``), so such a run resumes unchanged.
    """
    old, new = flatten(as_json(stored)), flatten(as_json(current))
    defaults = flatten(as_json(base()))
    old |= {key: defaults[key] for key in defaults.keys() - old.keys()}
    return {
        key: (old.get(key), new.get(key))
        for key in sorted(old.keys() | new.keys())
        if key not in RESUMABLE_FIELDS and old.get(key) != new.get(key)
    }


def describe(changes: Mapping[str, tuple[Any, Any]]) -> str:
    """``"train.lr: 0.0001 → 0.001, model.widths: [8, 8] → [16, 16]"``."""
    return ", ".join(f"{key}: {old!r} → {new!r}" for key, (old, new) in changes.items())
