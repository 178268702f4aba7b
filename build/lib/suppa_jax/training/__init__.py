"""Training: one optimiser step as a pure function (:mod:`~suppa_jax.training.step`), the
program behind ``train.py`` (:mod:`~suppa_jax.training.loop`:
``loop.train_and_evaluate(config, workdir)``) and its checkpoints
(:mod:`~suppa_jax.training.checkpoints`).

This package's namespace holds the step only (JAX and optax); the loop and the checkpoints
(orbax, grain, TensorBoard) are imported from their modules.
"""

from suppa_jax.training.step import (
    TrainState,
    example_keys,
    init_state,
    make_optimizer,
    parameter_groups,
    train_step,
    update,
)

__all__ = [
    "TrainState",
    "example_keys",
    "init_state",
    "make_optimizer",
    "parameter_groups",
    "train_step",
    "update",
]
