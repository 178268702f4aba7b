"""The errors of a run's files that a user can cause, beside Python's own (``ValueError`` for a
bad value, ``OSError`` for a file): :mod:`suppa_jax.cli` reports each as one line."""

from __future__ import annotations

__all__ = ["WorkdirError"]


class WorkdirError(RuntimeError):
    """A run's checkpoints cannot be read, or its workdir cannot be written. The message names
    the directory, each step at fault and why, and what is still intact."""
