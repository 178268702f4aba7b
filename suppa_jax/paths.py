"""How every entry point resolves the paths it is given, in one place.

A path is taken as given (absolute, or relative to the current directory); a relative path that
names nothing there is looked up under the project's root, where the shipped ``weights/`` and
``configs/`` live. So ``config.model.init = "weights/drunet_cpu_denoiser.msgpack"`` (the CPU
configs), ``evaluate.py --checkpoint=weights/suppa_sr2`` and ``restore.py --model=…`` find the
shipped files from any working directory, and a file of the user's with the same relative name
in the current directory wins.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ROOT", "resolve_path"]

#: The project's root: the directory above the package (the repository, for an editable install).
ROOT = Path(__file__).resolve().parents[1]


def resolve_path(path: str | os.PathLike, what: str) -> Path:
    """``path`` as given, else relative to :data:`ROOT`; a ``ValueError`` naming ``what`` (the
    option or config field) when neither exists."""
    candidate = Path(path)
    if candidate.exists():
        return candidate
    if not candidate.is_absolute() and (ROOT / candidate).exists():
        return ROOT / candidate
    raise ValueError(f"{what} {str(path)!r} does not exist")
