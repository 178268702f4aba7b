"""The data sources a config may name (``data.source``), parsed without reading any data.

:mod:`suppa_jax.data.sources` builds them; config validation checks them here.
"""

from __future__ import annotations

import re

__all__ = ["SAMPLE_SPLITS", "SOURCE_FORMS", "parse_mixture"]

#: What :func:`build_source` accepts, for messages.
SOURCE_FORMS = (
    "'samples', 'deadleaves', 'folder:PATH', 'tfds:NAME' or a mixture '0.8*deadleaves; 0.2*samples'"
)

# scikit-image's images that ship inside the package (no download), at least 192 pixels on each
# side (one ×4 patch of the paper's size). Validation: three natural RGB photographs; training:
# the other RGB images and natural grayscale ones (replicated to RGB). Left out: synthetic images
# (colorwheel, checkerboard, logo), `cat` (= chelsea), and those smaller than 192 pixels.
SAMPLE_SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut",
        "hubble_deep_field",
        "immunohistochemistry",
        "motorcycle",
        "retina",
        "brick",
        "camera",
        "cell",
        "clock",
        "coins",
        "grass",
        "gravel",
        "moon",
    ),
    "validation": ("chelsea", "coffee", "rocket"),
}


def parse_mixture(spec: str) -> list[tuple[float, str]]:
    """``"0.8*deadleaves; 0.2*samples"`` → ``[(0.8, "deadleaves"), (0.2, "samples")]``.

    Entries are separated by ``;``; each is a source, optionally preceded by ``WEIGHT*``
    (default 1). Weights are relative (they need not sum to 1) and must be positive.
    """
    entries = []
    for entry in spec.split(";"):
        entry = entry.strip()
        if not entry:
            raise ValueError(f"data source {spec!r} has an empty entry")
        match = re.fullmatch(r"((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*(.+)", entry)
        weight, source = (float(match.group(1)), match.group(2)) if match else (1.0, entry)
        if not weight > 0:
            raise ValueError(f"data source {spec!r}: the weight of {source!r} must be > 0")
        entries.append((weight, source.strip()))
    return entries
