"""``make demo``: restores the held-out sample images with the shipped pre-trained weights.

The shipped weights are not in this version yet, so the demo says so and exits with an error
instead of showing results of an untrained network.
"""

import sys

if __name__ == "__main__":
    sys.exit(
        "make demo: the pre-trained DRUNet that the demo restores with does not ship yet in "
        "this version of suppa_jax; `make test` exercises everything that exists."
    )
