"""Experiment configurations: the schema, the builders behind ``configs/*.py``, validation.

Every file in ``configs/`` is a few lines that call a builder::

    from suppa_jax.config import experiment

    def get_config():
        return experiment("sr", scale=2)

and ``train.py`` loads it (``--config=configs/sr_x2.py``, :func:`suppa_jax.cli.load_config`),
where any field can be overridden from the command line (``--config.train.lr=1e-5``,
``--config.method=deq``, ``--config.model.widths='(16, 32, 64, 64)'``). The builders return
*locked* ``ConfigDict`` s: existing fields can be changed, a misspelt one cannot be added (on the
command line :func:`suppa_jax.cli.config_overrides` rejects it, naming the key). Then
:func:`validate` checks the values and raises a ``ValueError`` that names the field's full path
and the bad value, e.g. ``config.train.lr must be > 0, got -1e-05``.

Modules: :mod:`~suppa_jax.config.schema` (every field, its default and meaning),
:mod:`~suppa_jax.config.experiments` (the paper's experiments and their CPU variants),
:mod:`~suppa_jax.config.validation`. See ``configs/README.md`` for the files and fields.
"""

from suppa_jax.config.experiments import (
    BSDS500,
    CPU_DATA,
    CPU_DENOISER,
    WATERLOO,
    cpu_overrides,
    denoiser,
    experiment,
    task_experiment,
)
from suppa_jax.config.schema import DIV2K, DPIR_DENOISER, ConfigDict, apply_overrides, base, flatten
from suppa_jax.config.validation import PATCH_MULTIPLE, check_batch_divisible, validate

__all__ = [
    "BSDS500",
    "CPU_DATA",
    "CPU_DENOISER",
    "DIV2K",
    "DPIR_DENOISER",
    "PATCH_MULTIPLE",
    "WATERLOO",
    "ConfigDict",
    "apply_overrides",
    "base",
    "check_batch_divisible",
    "cpu_overrides",
    "denoiser",
    "experiment",
    "flatten",
    "task_experiment",
    "validate",
]
