"""Evaluate a trained model: ``python evaluate.py --checkpoint=... --task=... --data=...``.

The evaluation tool is being built; this entry point exists so that the layout is stable. It
does not evaluate yet, and says so. Restoration itself is available as ``suppa_jax.restore``.
"""

import sys

MESSAGE = (
    "evaluate.py: the evaluation tool is not available yet in this version of suppa_jax.\n"
    "To restore images now, call suppa_jax.restore(params, y, op): see the README."
)

if __name__ == "__main__":
    sys.exit(MESSAGE)
