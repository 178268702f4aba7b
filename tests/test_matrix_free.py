"""Matrix-free operators: against dense matrices written from their definition, against the
circulant closed forms, and their implicit gradients against finite differences."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_runs
from jax.test_util import check_grads

from suppa_jax import build, evaluation, methods, metrics, physics, tasks, training
from suppa_jax import config as config_lib
from suppa_jax.solvers import admm
from suppa_jax.training import loop

HEIGHT, WIDTH, CHANNELS = 8, 10, 2
EXACT = {"cg_tol": 1e-12, "cg_max_iters": 500}  # float64 tests: CG run to machine precision


def _random_kernel(shape: tuple[int, int], seed: int) -> np.ndarray:
    kernel = np.random.default_rng(seed).random(shape)
    return kernel / kernel.sum()


def _source_index(n: int, size: int, boundary: str) -> int | None:
    """The image pixel that extended position ``n`` reads (``None``: a zero)."""
    if 0 <= n < size:
        return n
    if boundary == "reflect":
        return -n if n < 0 else 2 * (size - 1) - n
    if boundary == "circular":
        return n % size
    return None


def dense_padded_blur(kernel: np.ndarray, boundary: str, scale: int) -> np.ndarray:
    """``A`` from the definition ``(A x)[i] = Σ_j k[j] x[ext(n(i) − j + c)]``, with ``n(i) = s·i``
    (offset by ``kh − 1 − c`` for ``"valid"``) and ``ext`` the boundary; channels independent,
    images flattened in ``(H, W, C)`` order."""
    kh, kw = kernel.shape
    ch, cw = kh // 2, kw // 2
    if boundary == "valid":
        rows, cols = range(kh - 1 - ch, HEIGHT - ch, scale), range(kw - 1 - cw, WIDTH - cw, scale)
    else:
        rows, cols = range(0, HEIGHT, scale), range(0, WIDTH, scale)
    matrix = np.zeros((len(rows), len(cols), HEIGHT, WIDTH))
    for i, n in enumerate(rows):
        for j, m in enumerate(cols):
            for a in range(kh):
                for b in range(kw):
                    r = _source_index(n - a + ch, HEIGHT, boundary)
                    c = _source_index(m - b + cw, WIDTH, boundary)
                    if r is not None and c is not None:
                        matrix[i, j, r, c] += kernel[a, b]
    single = matrix.reshape(len(rows) * len(cols), HEIGHT * WIDTH)
    return np.kron(single, np.eye(CHANNELS))


# (kernel shape, scale): odd and even kernels with no symmetry pin the convention; with
# "valid" the blurred 6×6 of a 3×5 kernel decimates by 2.
CASES = [((3, 5), 1), ((4, 2), 1), ((3, 5), 2)]


def _case_id(case) -> str:
    (kh, kw), scale = case
    return f"k{kh}x{kw}-s{scale}"


@pytest.mark.parametrize("boundary", physics.BOUNDARIES)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_padded_blur_is_its_dense_matrix_and_the_data_step_its_normal_solve(boundary, case, rng):
    shape, scale = case
    kernel = _random_kernel(shape, seed=shape[0] + 10 * scale)
    matrix = dense_padded_blur(kernel, boundary, scale)
    with jax.enable_x64(True):
        op = physics.PaddedBlur(kernel, boundary, scale, **EXACT)
        x = rng.standard_normal((2, HEIGHT, WIDTH, CHANNELS))
        y = op.forward(x)
        assert y.shape[1:] == (*(s for s in _measured(boundary, shape, scale)), CHANNELS)
        np.testing.assert_allclose(y.reshape(2, -1), x.reshape(2, -1) @ matrix.T, atol=1e-12)
        v = rng.standard_normal(y.shape)
        np.testing.assert_allclose(
            op.adjoint(v).reshape(2, -1), v.reshape(2, -1) @ matrix, atol=1e-12
        )
        z, rho = rng.standard_normal(x.shape), np.array([0.05, 0.7])
        expected = [
            np.linalg.solve(
                matrix.T @ matrix + r * np.eye(matrix.shape[1]),
                matrix.T @ yi.ravel() + r * zi.ravel(),
            )
            for yi, zi, r in zip(np.asarray(v), z, rho, strict=True)
        ]
        np.testing.assert_allclose(
            op.data_prox(z, v, rho).reshape(2, -1), np.stack(expected), atol=1e-9
        )
        assert op.image_shape(y) == (HEIGHT, WIDTH)
        assert op.initial(y).shape == x.shape


def _measured(boundary: str, shape: tuple[int, int], scale: int) -> tuple[int, int]:
    height, width = HEIGHT, WIDTH
    if boundary == "valid":
        height, width = height - shape[0] + 1, width - shape[1] + 1
    return height // scale, width // scale


@pytest.mark.parametrize("scale", [1, 2])
def test_the_circular_cg_path_equals_the_fourier_closed_form(scale, rng):
    kernel = _random_kernel((3, 5), seed=7)
    with jax.enable_x64(True):
        closed = physics.Blur(kernel) if scale == 1 else physics.SuperResolution(2, kernel)
        cg = physics.PaddedBlur(kernel, "circular", scale, **EXACT)
        x = rng.standard_normal((2, HEIGHT, WIDTH, CHANNELS))
        np.testing.assert_allclose(cg.forward(x), closed.forward(x), atol=1e-12)
        y, z = cg.forward(x) + 0.1 * rng.standard_normal(cg.forward(x).shape), x[::-1]
        rho = np.array([0.1, 0.02])
        np.testing.assert_allclose(cg.data_prox(z, y, rho), closed.data_prox(z, y, rho), atol=1e-9)

        def loss(op, z, y, rho):
            return jnp.sum(jnp.sin(op.data_prox(z, y, rho)))

        grads_cg = jax.grad(functools.partial(loss, cg), argnums=(0, 1, 2))(z, y, rho)
        grads_closed = jax.grad(functools.partial(loss, closed), argnums=(0, 1, 2))(z, y, rho)
        for got, expected in zip(grads_cg, grads_closed, strict=True):
            np.testing.assert_allclose(got, expected, atol=1e-8)


@pytest.mark.parametrize("boundary", ["valid", "reflect"])
def test_implicit_gradients_match_finite_differences(boundary, rng):
    with jax.enable_x64(True):
        op = physics.PaddedBlur(_random_kernel((3, 3), seed=3), boundary, **EXACT)
        z = rng.standard_normal((HEIGHT, WIDTH, CHANNELS))
        y = op.forward(z) + 0.1 * rng.standard_normal(op.forward(z).shape)

        def loss(z, y, rho):
            return jnp.sum(jnp.cos(op.data_prox(z, y, rho)))

        check_grads(loss, (z, y, 0.3), order=1, modes=["fwd", "rev"], eps=1e-6)


def test_gradient_memory_does_not_grow_with_cg_iterations(rng):
    z = jnp.asarray(rng.random((1, 32, 32, 3)), jnp.float32)

    def temp_bytes(iterations: int) -> int:
        # tol 0: every one of the iterations runs.
        op = physics.PaddedBlur(
            _random_kernel((5, 5), 1), "reflect", cg_tol=0.0, cg_max_iters=iterations
        )
        y = op.forward(z)
        grad = jax.jit(jax.grad(lambda z: jnp.sum(op.data_prox(z, y, 0.1) ** 2)))
        return grad.lower(z).compile().memory_analysis().temp_size_in_bytes

    assert temp_bytes(40) == temp_bytes(4)


def _user_forward(x: jax.Array) -> jax.Array:
    """A user's own ``A`` in a few lines: a masked two-tap horizontal blur, then ×2
    decimation."""
    mask = (jnp.arange(x.shape[0])[:, None] + jnp.arange(x.shape[1])) % 3 != 0
    blurred = 0.7 * x + 0.3 * jnp.roll(x, 1, axis=1)
    return (mask[..., None] * blurred)[::2, ::2]


def test_a_user_operator_gets_its_exact_adjoint_and_data_step(rng):
    with jax.enable_x64(True):
        op = physics.MatrixFree(_user_forward, scale=2, **EXACT)
        basis = np.eye(HEIGHT * WIDTH * CHANNELS).reshape(-1, HEIGHT, WIDTH, CHANNELS)
        matrix = np.stack([np.ravel(_user_forward(jnp.asarray(e))) for e in basis], axis=1)
        y = rng.standard_normal((3, HEIGHT // 2, WIDTH // 2, CHANNELS))
        np.testing.assert_allclose(
            op.adjoint(y).reshape(3, -1), y.reshape(3, -1) @ matrix, atol=1e-12
        )
        z = rng.standard_normal((3, HEIGHT, WIDTH, CHANNELS))
        expected = np.linalg.solve(
            matrix.T @ matrix + 0.2 * np.eye(matrix.shape[1]),
            (y.reshape(3, -1) @ matrix + 0.2 * z.reshape(3, -1)).T,
        ).T
        prox = jax.jit(lambda op, z, y: op.data_prox(z, y, 0.2))
        np.testing.assert_allclose(prox(op, z, y).reshape(3, -1), expected, atol=1e-9)
        mapped = jax.vmap(lambda z, y: op.data_prox(z, y, 0.2))(z, y)
        np.testing.assert_allclose(mapped, prox(op, z, y), atol=1e-12)


def test_admm_runs_on_a_matrix_free_operator(rng):
    op = physics.PaddedBlur(physics.gaussian_kernel(1.0, 5), "valid")
    x = jnp.asarray(rng.random((2, 12, 12, 3)), jnp.float32)
    y = op.forward(x)
    smooth = physics.Blur(physics.gaussian_kernel(0.5, 3))
    solution = jax.jit(
        lambda y: admm.solve(lambda v, s: smooth.forward(v), op, y, rho=0.1, sigma=0.0, max_iters=5)
    )(y)
    assert solution.x.shape == x.shape
    assert np.all(np.isfinite(solution.x))
    residual = lambda v: float(jnp.linalg.norm(op.forward(v) - y))  # noqa: E731
    assert residual(solution.x) < residual(op.initial(y))


def test_suppa_fine_tunes_a_prior_for_a_users_operator_through_the_public_api(rng):
    """A forward model in three lines of ``jnp``, a prior with one learned number, a few SUPPA
    steps: the trained restoration of unseen images beats the untrained one."""

    def motion_blur(x):  # one image (H, W, C) -> (H, W - 2, C): a 3-pixel blur, "valid"
        return (x[:, :-2] + x[:, 1:-1] + x[:, 2:]) / 3

    op = physics.MatrixFree(motion_blur, image_shape=lambda size: (size[0], size[1] + 2))
    smooth = physics.Blur(physics.gaussian_kernel(1.0, 5))

    def shrink(params, z, sigma):  # a "denoiser": z moved towards its smoothed copy by a
        return z + params["a"] * (smooth.forward(z) - z)

    method = methods.make("suppa", shrink, op, rho=0.1, max_iters=10, sigma=0.1)
    optimizer = training.make_optimizer(lr=0.05, scalar_lr=0.05)
    step = jax.jit(lambda state, batch, key: training.update(method, optimizer, state, batch, key))
    state = training.init_state(method, optimizer, {"a": jnp.asarray(0.0)})
    noise = rng.standard_normal((12, 12, 14, 3)).astype(np.float32)
    images = 0.5 + 2.0 * smooth.forward(smooth.forward(jnp.asarray(noise)))  # smooth, not flat
    measured = physics.degrade(op, images, jax.random.key(0), noise_sigma=0.05, quantize=False)
    train, test = slice(0, 8), slice(8, 12)
    for k in range(20):
        chosen = jax.random.permutation(jax.random.key(k), 8)[:4]
        batch = {"y": measured[train][chosen], "gt": images[train][chosen]}
        state, _ = step(state, batch, jax.random.key(k))

    def held_out_psnr(trainable) -> float:
        restored = method.predict(trainable, measured[test]).x
        return float(jnp.mean(metrics.psnr(restored, images[test])))

    untrained = method.init({"a": jnp.asarray(0.0)})
    assert float(state.trainable["denoiser"]["a"]) > 0.05
    assert (
        held_out_psnr(state.trainable) > held_out_psnr(untrained) + 3.0
    )  # measured: 20.0 against 14.3


def test_bad_padded_blurs_are_named():
    with pytest.raises(ValueError, match=r"unknown boundary 'mirror'; use one of"):
        physics.PaddedBlur(np.ones((3, 3)), "mirror")
    with pytest.raises(
        ValueError, match=r"kernel must be a non-empty \(kh, kw\) array, or \(\.\.\., kh, kw\)"
    ):
        physics.PaddedBlur(np.ones(3))
    with pytest.raises(ValueError, match=r"got shape \(2, 0, 3\)"):
        physics.PaddedBlur(np.ones((2, 0, 3)))
    with pytest.raises(ValueError, match=r"kernel 9×9 is larger than the image"):
        physics.PaddedBlur(np.ones((9, 9)), "valid").forward(jnp.zeros((8, 8, 1)))
    with pytest.raises(ValueError, match=r"blurred size 7×7 .* not divisible by the scale 2"):
        physics.PaddedBlur(np.ones((2, 2)), "valid", 2).forward(jnp.zeros((8, 8, 1)))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task.boundary": "valid"}, r"task\.boundary must be one of \['circular', 'reflect', "),
        ({"task.boundary": "mirror"}, r"task\.boundary must be one of"),
        ({"task.cg_tol": 0.0}, r"task\.cg_tol must be > 0"),
        ({"task.cg_max_iters": 0}, r"task\.cg_max_iters must be >= 1"),
    ],
)
def test_bad_boundary_settings_are_named(overrides, message):
    config = config_lib.apply_overrides(config_lib.experiment("sr", scale=2, cpu=True), overrides)
    with pytest.raises(ValueError, match=message):
        config_lib.validate(config)


def test_a_valid_boundary_deblurring_run_trains_and_evaluates(init_file, tmp_path):
    """The config's ``task.boundary`` reaches the operator, training (one SUPPA step) and every
    evaluation row, the classical one by conjugate gradients."""
    config = config_lib.apply_overrides(
        config_lib.experiment("deblur", cpu=True),
        tiny_runs.tiny_overrides(
            init_file,
            **{
                "task.boundary": "valid",
                "task.blur_sigma": 1.0,
                "task.blur_size": 5,
                "data.patch": 16,
                "train.epochs": 1,
                "train.batch_size": 13,
            },
        ),
    )
    config_lib.validate(config)
    op = build.build_operator(config.task)
    assert isinstance(op, physics.PaddedBlur)
    assert (op.boundary, op.kernel.shape, op.cg_max_iters) == ("valid", (5, 5), 100)
    assert tasks.measurement_fields(config.task)["boundary"] == "valid"
    assert "boundary" not in tasks.measurement_fields(config_lib.experiment("deblur").task)

    summary = loop.train_and_evaluate(config, tmp_path)
    assert summary["step"] == 1
    assert np.isfinite(summary["train"]["loss"])

    model = evaluation.load_model(str(tmp_path), None)
    rows = [
        evaluation.initial_restorer(op),
        evaluation.tikhonov_restorer(0.03),
        model.restorer,
    ]
    dataset = evaluation.parse_data("samples", "validation")
    (result,) = evaluation.evaluate([dataset], rows, model.task_config, max_images=1, log=None)
    means = result.means
    assert set(means) == {"initial(y)", "Tikhonov", model.restorer.label}
    # The measured 28×28 centre of a 32×32 crop, edge-padded, against a real deconvolution.
    assert means["Tikhonov"]["psnr_rgb"] > means["initial(y)"]["psnr_rgb"]
    assert all(np.isfinite(row["psnr_rgb"]) for row in means.values())


def test_prepare_computes_the_padded_grids_spectrum_once():
    op = physics.PaddedBlur(_random_kernel((3, 5), 1), "reflect").prepare((HEIGHT, WIDTH))
    assert op.blur.spectra.otf.shape == (HEIGHT + 2, WIDTH + 4)  # padded by the kernel's reach
    assert op.prepare((HEIGHT, WIDTH)) is op
    assert op.prepare((HEIGHT + 2, WIDTH)).blur.spectra.otf.shape == (HEIGHT + 4, WIDTH + 4)
