"""DPIR's plug-and-play HQS: its schedule, and the solver against a plain Python loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from suppa_jax import metrics, physics
from suppa_jax.solvers import hqs


def test_the_schedule_descends_log_spaced_to_the_noise_level():
    schedule = hqs.dpir_schedule(0.01, 8)
    sigma, rho = np.asarray(schedule.sigma, np.float64), np.asarray(schedule.rho, np.float64)
    assert sigma.shape == rho.shape == (8,)
    np.testing.assert_allclose([sigma[0], sigma[-1]], [49 / 255, 0.01], rtol=1e-6)
    ratios = sigma[1:] / sigma[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-5)  # log-spaced
    np.testing.assert_allclose(rho, 0.23 * 0.01**2 / sigma**2, rtol=1e-5)
    assert np.all(np.diff(rho) > 0)  # the data term gains weight


def test_a_noise_free_schedule_ends_at_the_floor():
    schedule = hqs.dpir_schedule(0.0, 24)
    assert float(schedule.sigma[-1]) == pytest.approx(hqs.NOISE_FLOOR, rel=1e-6)
    assert float(schedule.rho[-1]) == pytest.approx(0.23, rel=1e-5)
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        hqs.dpir_schedule(0.01, 0)


def _shrink(x: jax.Array, sigma: jax.Array) -> jax.Array:
    """A toy denoiser: pull each image towards its mean by σ."""
    mean = jnp.mean(x, axis=(-3, -2), keepdims=True)
    return x + 3 * sigma * (mean - x)


@pytest.mark.parametrize(
    "op", [physics.Blur(physics.gaussian_kernel(1.0, 5)), physics.SuperResolution(2)]
)
def test_solve_is_the_alternation_of_data_steps_and_denoising(op, rng):
    gt = jnp.asarray(rng.random((2, 16, 16, 3)), jnp.float32)
    y = op.forward(gt) + 0.01 * jnp.asarray(rng.standard_normal(op.forward(gt).shape), jnp.float32)
    schedule = hqs.dpir_schedule(0.01, hqs.dpir_iterations(op))
    solution = jax.jit(hqs.solve, static_argnums=0)(_shrink, op, y, schedule, gt)

    z, curve = op.initial(y), []
    curve.append(metrics.psnr(z, gt))
    for rho, sigma in zip(schedule.rho, schedule.sigma, strict=True):
        z = _shrink(op.data_prox(z, y, rho), sigma)
        curve.append(metrics.psnr(z, gt))
    np.testing.assert_allclose(solution.x, z, atol=1e-5)
    np.testing.assert_allclose(solution.psnr, jnp.stack(curve), atol=1e-3)
    assert solution.iterations.tolist() == [hqs.dpir_iterations(op)] * 2
    assert hqs.dpir_iterations(op) == (8 if op.scale == 1 else 24)
