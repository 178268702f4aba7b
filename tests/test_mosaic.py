"""Bayer demosaicing: the mask, the exact data step and Tikhonov against dense algebra, and the
bilinear start against a direct neighbour average."""

import jax
import numpy as np
import pytest

from suppa_jax import build, classical, physics
from suppa_jax import config as config_lib

HEIGHT, WIDTH = 6, 8


@pytest.mark.parametrize("pattern", physics.PATTERNS)
def test_every_pixel_senses_one_colour_of_its_phase(pattern):
    mask = physics.bayer_mask(pattern, HEIGHT, WIDTH)
    np.testing.assert_array_equal(mask.sum(-1), 1)
    for position, colour in enumerate(pattern):
        row, col = divmod(position, 2)
        assert mask[row, col, "rgb".index(colour)] == 1
        assert mask[row + 2, col + 4, "rgb".index(colour)] == 1  # 2×2-periodic
    assert mask[..., 1].sum() == HEIGHT * WIDTH / 2  # half the pixels are green


@pytest.mark.parametrize("pattern", physics.PATTERNS)
def test_data_step_and_tikhonov_are_their_dense_solves(pattern, rng):
    with jax.enable_x64(True):
        op = physics.Mosaic(pattern, cg_tol=1e-13, cg_max_iters=2000)
        matrix = np.diag(physics.bayer_mask(pattern, HEIGHT, WIDTH).ravel())
        x = rng.random((2, HEIGHT, WIDTH, 3))
        np.testing.assert_allclose(op.forward(x).reshape(2, -1), x.reshape(2, -1) @ matrix.T)
        y, z, rho = op.forward(x) + 0.05, rng.random(x.shape), np.array([0.1, 2.0])
        expected = [
            np.linalg.solve(matrix + r * np.eye(len(matrix)), matrix @ yi.ravel() + r * zi.ravel())
            for yi, zi, r in zip(np.asarray(y), z, rho, strict=True)
        ]
        np.testing.assert_allclose(
            op.data_prox(z, y, rho).reshape(2, -1), np.stack(expected), atol=1e-12
        )
        # Tikhonov: (AᵀA + μ DᵀD) x = Aᵀy, DᵀD circulant per channel.
        mu = 0.05
        spectrum = mu * (np.asarray(classical.gradient_power((HEIGHT, WIDTH), np.float64)) + 1e-6)
        basis = np.eye(HEIGHT * WIDTH).reshape(-1, HEIGHT, WIDTH)
        laplacian = np.stack(
            [np.fft.ifft2(np.fft.fft2(e) * spectrum).real.ravel() for e in basis], axis=1
        )
        penalty = np.kron(laplacian, np.eye(3))
        dense = np.linalg.solve(matrix + penalty, (y.reshape(2, -1) @ matrix).T).T
        np.testing.assert_allclose(classical.tikhonov(op, y, mu).reshape(2, -1), dense, atol=1e-9)


def test_bilinear_start_keeps_samples_and_averages_the_nearest_of_each_colour(rng):
    op = physics.Mosaic("grbg")
    x = rng.random((HEIGHT, WIDTH, 3)).astype(np.float32)
    mask = physics.bayer_mask("grbg", HEIGHT, WIDTH)
    start = np.asarray(op.initial(op.forward(x)))
    for i in range(HEIGHT):
        for j in range(WIDTH):
            for c in range(3):
                if mask[i, j, c]:
                    expected = x[i, j, c]
                else:
                    # The nearest sensed pixels of colour c: edge neighbours first, else corners.
                    for ring in (
                        [(-1, 0), (1, 0), (0, -1), (0, 1)],
                        [(-1, -1), (-1, 1), (1, -1), (1, 1)],
                    ):
                        near = [
                            x[(i + di) % HEIGHT, (j + dj) % WIDTH, c]
                            for di, dj in ring
                            if mask[(i + di) % HEIGHT, (j + dj) % WIDTH, c]
                        ]
                        if near:
                            break
                    expected = np.mean(near)
                assert start[i, j, c] == pytest.approx(expected, abs=1e-6), (i, j, c)


def test_the_demosaic_task_builds_a_mosaic_and_rejects_other_kernels():
    config = config_lib.experiment("demosaic", cpu=True)
    config_lib.validate(config)
    op = build.build_operator(config.task)
    assert isinstance(op, physics.Mosaic)
    assert op.pattern == "rggb"
    bad = config_lib.apply_overrides(config, {"task.kernel": "gaussian"})
    with pytest.raises(ValueError, match=r"task\.kernel must be one of \['rggb', 'grbg'"):
        config_lib.validate(bad)
    with pytest.raises(ValueError, match=r"unknown Bayer pattern 'rgbg'"):
        physics.Mosaic("rgbg")
    with pytest.raises(ValueError, match=r"images must be RGB"):
        op.forward(np.zeros((4, 4, 1)))
