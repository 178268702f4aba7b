"""Train unrolled ADMM with SUPPA or a rival method: ``python train.py --config=... --workdir=...``.

The training program (configs, checkpoints, resume, multi-device) is being built; this entry
point exists so that the layout is stable. It does not train yet, and says so.
"""

import sys

MESSAGE = (
    "train.py: the training program is not available yet in this version of suppa_jax.\n"
    "The training losses and one optimiser step are: see suppa_jax.methods and "
    "suppa_jax.training, and the README."
)

if __name__ == "__main__":
    sys.exit(MESSAGE)
