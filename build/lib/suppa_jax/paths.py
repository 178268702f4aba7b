"""How every entry point resolves the paths it is given, in one place.

A path is taken as given (absolute, or relative to the current directory); a relative path that
names nothing there is looked up under the project's root (the repository, where ``configs/``
lives), then in the installed package, which ships ``weights/`` as package data
(``suppa_jax/weights``; the repository's ``weights`` is a link to it). So
``config.model.init = "weights/drunet_cpu_denoiser.msgpack"`` (the CPU configs),
``evaluate.py --checkpoint=weights/suppa_sr2`` and ``restore.py --model=…`` find the shipped
files from any working directory and after a non-editable ``pip install .``, and a file of the
user's with the same relative name in the current directory wins.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PACKAGE", "ROOT", "WEIGHTS", "resolve_path"]

#: The installed package's directory; it holds the shipped weights.
PACKAGE = Path(__file__).resolve().parent

#: The shipped weights (package data): the CPU prior and the fine-tuned SUPPA runs.
WEIGHTS = PACKAGE / "weights"

#: The project's root: the directory above the package (the repository, for an editable install).
ROOT = PACKAGE.parent


def resolve_path(path: str | os.PathLike, what: str) -> Path:
    """``path`` as given, else relative to :data:`ROOT`, else to :data:`PACKAGE`; a
    ``ValueError`` naming ``what`` (the option or config field) when none exists."""
    candidate = Path(path)
    if candidate.exists():
        return candidate
    if not candidate.is_absolute():
        for base in (ROOT, PACKAGE):
            if (base / candidate).exists():
                return base / candidate
    raise ValueError(f"{what} {str(path)!r} does not exist")
