"""The PyTorch DRUNet of the parity tests: a re-export of :mod:`benchmarks.torch_reference`.

There is one PyTorch DRUNet in the project, in ``benchmarks/torch_reference.py`` (with the rest
of the PyTorch reference pipeline); this module keeps the tests' ``from torch_drunet import
TorchDRUNet`` working however pytest was started.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from benchmarks.torch_reference import ResBlock, TorchDRUNet  # noqa: E402

__all__ = ["ResBlock", "TorchDRUNet"]
