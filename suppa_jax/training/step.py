"""One training step for any method: loss, gradient, optax update, as a pure function.

The optimiser is Adam in three groups: the denoiser's weights, SUPPA's ``λ`` (the paper's two),
and the learned ADMM scalars (``σ``, and the rivals' ``ρ``), each with its own learning rate and
the same step decay (×``decay_rate`` every ``decay_steps`` optimiser steps).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from suppa_jax.methods import Method
from suppa_jax.physics import OperatorFamily, measure
from suppa_jax.typing import Array, Batch, ExampleBatch, Metrics, Params, Trainable

__all__ = [
    "TrainState",
    "example_keys",
    "init_state",
    "make_optimizer",
    "parameter_groups",
    "train_step",
    "update",
]


class TrainState(NamedTuple):
    """Everything a training step changes: the step count, the trainables, Adam's moments."""

    step: Array
    trainable: Trainable
    opt_state: Any


def parameter_groups(trainable: Trainable) -> dict[str, str]:
    """Optimiser group of each top-level entry: ``"network"`` (the denoiser's subtree),
    ``"lam"`` (SUPPA's λ), ``"admm"`` (the learned ADMM scalars ρ and σ)."""
    groups = {"denoiser": "network", "lam": "lam"}
    return {name: groups.get(name, "admm") for name in trainable}


def make_optimizer(
    *,
    lr: float,
    scalar_lr: float,
    admm_lr: float | None = None,
    decay_steps: int | None = None,
    decay_rate: float = 0.1,
) -> optax.GradientTransformation:
    """Adam in three groups, all step-decayed alike (×``decay_rate`` every ``decay_steps``).

    ``lr``: the network. ``scalar_lr``: λ (the paper's 0.1). ``admm_lr``: the learned ρ and σ
    (``None``: ``scalar_lr``). A rate of 0.1 lets Adam move σ ≈ 0.1 by up to 0.1 per step; the
    configs therefore learn ρ and σ at the network's rate.
    """

    def schedule(rate: float) -> optax.Schedule:
        if decay_steps is None:
            return optax.constant_schedule(rate)
        return optax.exponential_decay(rate, decay_steps, decay_rate, staircase=True)

    admm_lr = scalar_lr if admm_lr is None else admm_lr
    return optax.multi_transform(
        {
            "network": optax.adam(schedule(lr)),
            "lam": optax.adam(schedule(scalar_lr)),
            "admm": optax.adam(schedule(admm_lr)),
        },
        parameter_groups,
    )


def init_state(
    method: Method, optimizer: optax.GradientTransformation, denoiser: Params
) -> TrainState:
    """Step 0: the method's trainables around ``denoiser`` and fresh optimiser state."""
    trainable = method.init(denoiser)
    return TrainState(jnp.zeros((), jnp.int32), trainable, optimizer.init(trainable))


def update(
    method: Method,
    optimizer: optax.GradientTransformation,
    state: TrainState,
    batch: Batch,
    key: Array,
    axis_name: str | None = None,
) -> tuple[TrainState, Metrics]:
    """``(loss, metrics), g = ∇ loss``; Adam step. Pure: jit it with ``method``/``optimizer`` bound.

    Under ``shard_map`` pass the mesh's data ``axis_name``: gradients and metrics are averaged
    over it (``lax.pmean``), so every device applies the same update to its replica.
    """
    grads, metrics = jax.grad(method.loss, has_aux=True)(state.trainable, batch, key)
    if axis_name is not None:
        grads, metrics = jax.lax.pmean((grads, metrics), axis_name)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.trainable)
    trainable = optax.apply_updates(state.trainable, updates)
    return TrainState(state.step + 1, trainable, opt_state), metrics


def example_keys(seeds: Array) -> Array:
    """One PRNG key per example for the method's own randomness (SUPPA's reservoir draws, the
    denoiser's noise), from the example seeds of the input pipeline
    (:mod:`suppa_jax.data.pipeline`). It is a different stream from the measurement noise
    (``jax.random.key(seed)``), and independent of how the batch is split across devices."""
    return jax.vmap(lambda seed: jax.random.fold_in(jax.random.key(seed), 1))(seeds)


def train_step(
    method: Method,
    optimizer: optax.GradientTransformation,
    physics: OperatorFamily,
    state: TrainState,
    batch: ExampleBatch,
    *,
    noise_sigma: float,
    quantize: bool,
    noise_sigma_max: float = 0.0,
    axis_name: str | None = None,
) -> tuple[TrainState, Metrics]:
    """One step from a data batch ``{"hr", "seed"}``: measurements made here, then :func:`update`.

    Each example's operator is drawn from ``physics`` (one operator for every example with
    :class:`~suppa_jax.physics.Fixed`), its noise level is ``noise_sigma`` or uniform up to
    ``noise_sigma_max``, and ``y = degrade(hr)`` with 8-bit quantisation
    (:func:`suppa_jax.physics.measure`), all on the device: the pipeline ships clean patches
    only.
    """
    data = measure(
        physics, batch, noise_sigma=noise_sigma, quantize=quantize, noise_sigma_max=noise_sigma_max
    )
    return update(method, optimizer, state, data, example_keys(batch["seed"]), axis_name)
