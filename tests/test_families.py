"""Operators drawn per example: inpainting, batched circulant operators, the blur and mask
families, per-example noise levels, and methods and training on them."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tiny_runs

from suppa_jax import build, classical, evaluation, physics, tasks, training
from suppa_jax import config as config_lib
from suppa_jax.methods import suppa
from suppa_jax.training import loop

HEIGHT, WIDTH = 8, 6


@pytest.fixture
def x64():
    """float64 for the checks against dense algebra."""
    with jax.enable_x64(True):
        yield


def _mask(rng, shape, rate=0.4):
    return (rng.random(shape) >= rate).astype(np.float64)


def _dense(fn, shape):
    """The matrix of a linear ``fn`` on arrays of ``shape``, column by column."""
    n = int(np.prod(shape))
    columns = [np.asarray(fn(np.eye(n)[i].reshape(shape))).reshape(-1) for i in range(n)]
    return np.stack(columns, axis=1)


# ------------------------------------------------------------------------------ inpainting


@pytest.mark.usefixtures("x64")
def test_inpainting_against_dense_algebra(rng):
    mask = _mask(rng, (HEIGHT, WIDTH, 1))
    op = physics.Inpainting(mask)
    shape = (HEIGHT, WIDTH, 3)
    x, y, z = (rng.random(shape) for _ in range(3))
    A = np.diag(np.broadcast_to(mask, shape).reshape(-1))
    np.testing.assert_allclose(_dense(op.forward, shape), A, atol=1e-12)
    np.testing.assert_allclose(_dense(op.adjoint, shape), A.T, atol=1e-12)
    rho = 0.3
    want = np.linalg.solve(A.T @ A + rho * np.eye(A.shape[0]), A.T @ y.ravel() + rho * z.ravel())
    np.testing.assert_allclose(np.asarray(op.data_prox(z, y, rho)).ravel(), want, atol=1e-10)
    np.testing.assert_allclose(np.asarray(op.forward(x)), mask * x)


@pytest.mark.usefixtures("x64")
def test_inpainting_tikhonov_against_a_dense_solve(rng):
    mask = _mask(rng, (HEIGHT, WIDTH, 1))
    op = physics.Inpainting(mask, cg_tol=1e-12, cg_max_iters=500)
    shape = (HEIGHT, WIDTH, 1)
    y = mask * rng.random(shape)
    mu = 0.05
    penalty = np.asarray(mu * (classical.gradient_power((HEIGHT, WIDTH)) + 1e-6))

    def circulant(x):
        return np.fft.ifft2(np.fft.fft2(x, axes=(0, 1)) * penalty[..., None], axes=(0, 1)).real

    normal = np.diag(mask.reshape(-1)) + _dense(circulant, shape)
    want = np.linalg.solve(normal, (mask * y).reshape(-1))
    got = classical.tikhonov(op, y[None], mu)[0]
    np.testing.assert_allclose(np.asarray(got).reshape(-1), want, atol=1e-8)


@pytest.mark.usefixtures("x64")
def test_inpainting_start_keeps_observed_pixels_and_constants(rng):
    mask = physics.box_mask(jax.random.key(3), (32, 32), boxes=2, max_size=0.5)
    assert 0 < float(jnp.mean(mask)) < 1
    op = physics.Inpainting(mask)
    constant = np.full((2, 32, 32, 3), 0.3)
    np.testing.assert_allclose(np.asarray(op.initial(op.forward(constant))), constant, atol=1e-9)
    x = rng.random((32, 32, 3))
    start = np.asarray(op.initial(op.forward(x)))
    observed = np.asarray(mask[..., 0]) == 1
    np.testing.assert_allclose(start[observed], x[observed])
    assert np.all(np.isfinite(start))
    assert start.min() >= 0
    assert start.max() <= 1


@pytest.mark.usefixtures("x64")
def test_the_start_is_the_harmonic_fill_of_a_dense_solve(rng):
    """``x_M = −L_MM⁻¹ L_MO y_O`` for the circular 5-point Laplacian ``L``, per channel."""
    mask = _mask(rng, (HEIGHT, WIDTH, 1), rate=0.5)
    op = physics.Inpainting(mask, cg_tol=1e-12, cg_max_iters=500)
    y = op.forward(rng.random((HEIGHT, WIDTH, 2)))
    got = np.asarray(op.initial(y))
    eye = np.eye(HEIGHT * WIDTH).reshape(-1, HEIGHT, WIDTH)
    shifts = [np.roll(eye, s, a) for s in (1, -1) for a in (1, 2)]
    laplacian = (4 * eye - sum(shifts)).reshape(HEIGHT * WIDTH, -1)
    missing = mask.reshape(-1) == 0
    for c in range(2):
        observed = np.asarray(y[..., c]).reshape(-1)[~missing]
        lmm = laplacian[np.ix_(missing, missing)]
        want = -np.linalg.solve(lmm, laplacian[np.ix_(missing, ~missing)] @ observed)
        np.testing.assert_allclose(got[..., c].reshape(-1)[missing], want, atol=1e-9)
        np.testing.assert_array_equal(got[..., c].reshape(-1)[~missing], observed)


def test_masks_have_their_rate_and_boxes():
    masks = jax.vmap(lambda k: physics.pixel_mask(k, (64, 64), 0.7))(
        jax.random.split(jax.random.key(0), 4)
    )
    assert masks.shape == (4, 64, 64, 1)
    assert abs(1 - float(masks.mean()) - 0.7) < 0.02
    assert not np.array_equal(masks[0], masks[1])  # one mask per key
    box = np.asarray(physics.box_mask(jax.random.key(1), (40, 60), boxes=1, max_size=0.25))[..., 0]
    rows, cols = np.nonzero(box == 0)
    height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert (height * width) == (box == 0).sum()  # one rectangle
    assert 5 <= height <= 10
    assert 7 <= width <= 15


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: physics.Inpainting(np.full((4, 4, 1), 0.5)), "0 .missing. or 1"),
        (lambda: physics.Inpainting(np.ones((4, 4))), r"\(\.\.\., H, W, C\)"),
        (lambda: physics.Inpainting(np.ones((4, 4, 1))).forward(np.ones((5, 4, 3))), "fit"),
        (lambda: physics.MaskFamily("lines"), "kind must be one of"),
        (lambda: physics.MaskFamily(rate=1.0), "rate"),
        (lambda: physics.BlurFamily(("disc",)), "kinds must be some of"),
        (lambda: physics.BlurFamily(sigma_range=(2.0, 1.0)), "sigma_range"),
    ],
)
def test_bad_family_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------- kernels and batched ops


@pytest.mark.usefixtures("x64")
def test_gaussian_kernels_of_the_family():
    isotropic = physics.gaussian_kernel_2d(jnp.array([1.3, 1.3]), jnp.array(0.7), 9)
    np.testing.assert_allclose(isotropic, physics.gaussian_kernel(1.3, 9), atol=1e-7)
    wide_rows = physics.gaussian_kernel_2d(jnp.array([2.0, 0.8]), jnp.array(0.0), 11)
    turned = physics.gaussian_kernel_2d(jnp.array([2.0, 0.8]), jnp.array(np.pi / 2), 11)
    np.testing.assert_allclose(turned, wide_rows.T, atol=1e-6)
    np.testing.assert_allclose(
        wide_rows,
        np.outer(*[physics.gaussian_kernel(s, (11, 1))[:, 0] for s in (2.0, 0.8)]),
        atol=1e-7,
    )


def test_motion_kernels_have_their_length():
    for seed, length in [(0, 7.0), (1, 12.0), (2, 18.0)]:
        kernel = np.asarray(physics.motion_kernel(jax.random.key(seed), 25, jnp.array(length)))
        assert kernel.shape == (25, 25)
        assert kernel.min() >= 0
        np.testing.assert_allclose(kernel.sum(), 1.0, rtol=1e-6)
        rows, cols = np.nonzero(kernel > 0)
        extent = max(rows.max() - rows.min(), cols.max() - cols.min())
        assert length - 1 <= extent <= length + 1  # bilinear splats add at most a pixel


@pytest.mark.usefixtures("x64")
def test_a_batched_circulant_operator_is_each_examples_operator(rng):
    family = physics.BlurFamily(size=7, sigma_range=(0.5, 2.0), length_range=(3.0, 5.0))
    keys = jax.random.split(jax.random.key(0), 3)
    batched = family.draw_batch(keys, (16, 16))
    assert batched.kernel.shape == (3, 7, 7)
    singles = [family.draw(k, (16, 16)) for k in keys]
    x, z = rng.random((3, 16, 16, 3)), rng.random((3, 16, 16, 3))
    y = np.asarray(batched.forward(x))
    rho = np.array([0.1, 0.2, 0.3])
    penalty = 0.01 * (classical.gradient_power((16, 16)) + 1e-6)
    for i, op in enumerate(singles):
        np.testing.assert_allclose(y[i], op.forward(x[i]), atol=1e-12)
        np.testing.assert_allclose(batched.adjoint(y)[i], op.adjoint(y[i]), atol=1e-12)
        np.testing.assert_allclose(
            batched.data_prox(z, y, rho)[i], op.data_prox(z[i], y[i], rho[i]), atol=1e-12
        )
        np.testing.assert_allclose(
            batched.quadratic_solve(y, penalty)[i], op.quadratic_solve(y[i], penalty), atol=1e-12
        )
    prepared = batched.prepare((16, 16))
    assert prepared.spectra.otf.shape == (3, 16, 16)
    np.testing.assert_allclose(prepared.forward(x), y, atol=1e-12)


@pytest.mark.usefixtures("x64")
def test_a_batched_super_resolution_operator_is_each_examples_operator(rng):
    kernels = rng.random((2, 5, 5))
    batched = jax.vmap(lambda k: physics.SuperResolution(2, k))(kernels)
    x, z = rng.random((2, 8, 8, 3)), rng.random((2, 8, 8, 3))
    y = batched.forward(x)
    for i in range(2):
        op = physics.SuperResolution(2, kernels[i])
        np.testing.assert_allclose(y[i], op.forward(x[i]), atol=1e-12)
        np.testing.assert_allclose(
            batched.data_prox(z, y, 0.4)[i], op.data_prox(z[i], y[i], 0.4), atol=1e-12
        )


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("boundary", ["valid", "reflect"])
def test_a_batched_padded_blur_is_each_examples_operator(rng, boundary):
    """A camera's boundary over the family: each image's CG solves use its own kernel."""
    family = physics.BlurFamily(
        size=5, sigma_range=(0.5, 2.0), boundary=boundary, cg_tol=1e-12, cg_max_iters=400
    )
    keys = jax.random.split(jax.random.key(1), 2)
    batched = family.draw_batch(keys, (12, 12))
    assert isinstance(batched, physics.PaddedBlur)
    assert batched.batch_shape == (2,)
    singles = [family.draw(k, (12, 12)) for k in keys]
    x, z = rng.random((2, 12, 12, 3)), rng.random((2, 12, 12, 3))
    y = np.asarray(batched.forward(x))
    assert y.shape == ((2, 8, 8, 3) if boundary == "valid" else (2, 12, 12, 3))
    rho = np.array([0.1, 0.3])
    penalty = 0.01 * (classical.gradient_power((12, 12)) + 1e-6)
    prox, tikhonov = batched.data_prox(z, y, rho), batched.quadratic_solve(y, penalty)
    for i, op in enumerate(singles):
        np.testing.assert_allclose(y[i], op.forward(x[i]), atol=1e-12)
        np.testing.assert_allclose(batched.adjoint(y)[i], op.adjoint(y[i]), atol=1e-12)
        np.testing.assert_allclose(prox[i], op.data_prox(z[i], y[i], rho[i]), atol=1e-10)
        np.testing.assert_allclose(tikhonov[i], op.quadratic_solve(y[i], penalty), atol=1e-10)
    # More leading dimensions than the operator's: it is broadcast over them.
    stacked = batched.data_prox(np.stack([z, z]), np.stack([y, y]), 0.2)
    np.testing.assert_allclose(stacked[1, 1], singles[1].data_prox(z[1], y[1], 0.2), atol=1e-10)
    with pytest.raises(ValueError, match=r"batched over \(2,\) and images of leading shape"):
        batched.data_prox(z[:1], y[:1], 0.2)


# ------------------------------------------------------------------------ measurements


def test_measure_draws_each_examples_operator_and_noise_from_its_seed(rng):
    family = physics.BlurFamily(size=7)
    hr = rng.random((4, 16, 16, 3))
    seeds = np.array([5, 9, 2, 7], np.uint32)
    measure = jax.jit(
        lambda b: physics.measure(family, b, noise_sigma=0.01, noise_sigma_max=0.05, quantize=False)
    )
    whole = measure({"hr": hr, "seed": seeds})
    split = [measure({"hr": hr[i : i + 2], "seed": seeds[i : i + 2]}) for i in (0, 2)]
    np.testing.assert_allclose(np.concatenate([s["y"] for s in split]), whole["y"], atol=1e-12)
    np.testing.assert_allclose(
        np.concatenate([s["op"].kernel for s in split]), whole["op"].kernel, atol=1e-15
    )
    assert len({np.asarray(k).tobytes() for k in whole["op"].kernel}) == 4
    levels = physics.measurement.noise_levels(jnp.asarray(seeds), 0.01, 0.05)
    assert np.all((levels >= 0.01) & (levels <= 0.05))
    assert len(set(levels.tolist())) == 4


def test_noise_levels_drawn_per_example_are_the_measured_ones():
    seeds = jnp.arange(6, dtype=jnp.uint32)
    batch = {"hr": np.full((6, 64, 64, 3), 0.5), "seed": seeds}
    identity = physics.Fixed(physics.Blur(np.ones((1, 1))))
    measured = physics.measure(
        identity, batch, noise_sigma=0.0, noise_sigma_max=0.08, quantize=False
    )
    residual = np.asarray(measured["y"]) - 0.5
    levels = np.asarray(physics.measurement.noise_levels(seeds, 0.0, 0.08))
    np.testing.assert_allclose(residual.reshape(6, -1).std(axis=1), levels, rtol=0.05)


# ----------------------------------------------------------------------- methods, training


def _denoise(params, x, sigma):
    """A differentiable stand-in denoiser: a learned blend with a local mean."""
    smooth = (jnp.roll(x, 1, -2) + jnp.roll(x, -1, -2) + jnp.roll(x, 1, -3) + x) / 4
    return x + params["w"] * sigma * (smooth - x)


def test_methods_use_the_batchs_operators(rng):
    family = physics.MaskFamily("pixels", rate=0.5)
    hr = rng.random((3, 12, 12, 3))
    batch = physics.measure(
        family, {"hr": hr, "seed": np.arange(3, dtype=np.uint32)}, noise_sigma=0.0, quantize=True
    )
    method = suppa(_denoise, None, rho=0.1, max_iters=4)
    trainable = method.init({"w": jnp.float32(1.0)})
    keys = jax.random.split(jax.random.key(0), 3)
    value, metrics = method.loss(trainable, batch, keys)
    assert np.isfinite(value)
    assert metrics["iterations"] > 0
    together = method.predict(trainable, batch["y"], op=batch["op"]).x
    for i in range(3):
        op = physics.Inpainting(batch["op"].observed[i])
        alone = method.predict(trainable, batch["y"][i : i + 1], op=op).x
        np.testing.assert_allclose(together[i : i + 1], alone, atol=1e-5)
    with pytest.raises(ValueError, match="built without an operator"):
        method.predict(trainable, batch["y"])


def test_train_step_draws_the_operators_on_the_device(rng):
    family = physics.BlurFamily(size=5)
    method = suppa(_denoise, None, rho=0.1, max_iters=3)
    optimizer = optax.adam(1e-2)
    state = training.init_state(method, optimizer, {"w": jnp.float32(1.0)})
    batch = {"hr": rng.random((2, 16, 16, 3)), "seed": np.array([1, 2], np.uint32)}
    step = jax.jit(
        lambda s, b: training.train_step(
            method, optimizer, family, s, b, noise_sigma=0.01, noise_sigma_max=0.03, quantize=True
        )
    )
    new_state, metrics = step(state, batch)
    assert int(new_state.step) == 1
    assert np.isfinite(metrics["loss"])
    assert float(new_state.trainable["denoiser"]["w"]) != 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task.noise_sigma_max": 0.005}, r"task\.noise_sigma_max must be 0 \(off\) or >="),
        ({"task.blur_sigma_range": (2.0, 1.0)}, r"task\.blur_sigma_range must be"),
        ({"task.kernel": "disc"}, r"task\.kernel must be one of"),
    ],
)
def test_bad_family_settings_are_named(overrides, message):
    config = config_lib.apply_overrides(config_lib.experiment("deblur", cpu=True), overrides)
    with pytest.raises(ValueError, match=message):
        config_lib.validate(config)


def test_a_family_with_a_valid_boundary_trains(rng):
    """``task.kernel = random`` with ``task.boundary = valid``: each example is blurred by its
    own kernel with a camera's boundary, and SUPPA's loss runs on the CG data steps."""
    config = config_lib.apply_overrides(
        config_lib.experiment("deblur", cpu=True),
        {"task.kernel": "random", "task.boundary": "valid", "task.blur_size": 5},
    )
    config_lib.validate(config)
    family = build.build_physics(config.task)
    batch = {"hr": rng.random((2, 12, 12, 3)), "seed": np.array([3, 4], np.uint32)}
    measured = physics.measure(family, batch, noise_sigma=0.01, quantize=True)
    assert measured["y"].shape == (2, 8, 8, 3)
    assert measured["op"].kernel.shape == (2, 5, 5)
    method = suppa(_denoise, None, rho=0.1, max_iters=3)
    trainable = method.init({"w": jnp.float32(1.0)})
    grads = jax.grad(lambda t: method.loss(t, measured, jax.random.split(jax.random.key(0), 2))[0])
    assert np.isfinite(float(grads(trainable)["denoiser"]["w"]))


def test_a_random_kernel_task_has_no_single_operator():
    config = config_lib.apply_overrides(
        config_lib.experiment("deblur", cpu=True), {"task.kernel": "random_motion"}
    )
    family = build.build_physics(config.task)
    assert isinstance(family, physics.BlurFamily)
    assert family.kinds == ("motion",)
    with pytest.raises(ValueError, match="draws an operator per example"):
        build.build_operator(config.task)
    fields = tasks.measurement_fields(config.task)
    assert fields["motion_length_range"] == (5.0, 15.0)
    assert "blur_sigma_range" not in fields


@pytest.mark.parametrize(("kind", "kernel"), [("inpaint", "pixels"), ("deblur", "random")])
def test_a_family_run_trains_and_evaluates(init_file, tmp_path, kind, kernel):
    """A run over a family (each patch's own mask or kernel and noise level), then evaluated
    with every row: each validation image is measured with its own operator."""
    config = config_lib.apply_overrides(
        config_lib.experiment(kind, cpu=True),
        tiny_runs.tiny_overrides(
            init_file,
            **{
                "task.kernel": kernel,
                "task.blur_size": 5,
                "task.noise_sigma_max": 0.02 if kind == "deblur" else 0.0,
                "data.patch": 16,
                "train.epochs": 1,
                "train.batch_size": 13,
            },
        ),
    )
    config_lib.validate(config)
    summary = loop.train_and_evaluate(config, tmp_path)
    assert summary["step"] == 1
    assert np.isfinite(summary["train"]["loss"])
    model = evaluation.load_model(str(tmp_path), None)
    family = build.build_physics(model.task_config)
    rows = [evaluation.initial_restorer(family), evaluation.tikhonov_restorer(0.01), model.restorer]
    dataset = evaluation.parse_data("samples", "validation")
    (result,) = evaluation.evaluate([dataset], rows, model.task_config, max_images=2, log=None)
    assert result.images == 2
    for row in result.means.values():
        assert np.isfinite(row["psnr_rgb"])
    if kind == "deblur":  # a fixed kernel outside the family's range, by name
        wide = evaluation.load_model(str(tmp_path), "deblur_wide", log=None)
        assert (wide.task, wide.task_config.kernel, wide.task_config.blur_sigma) == (
            "deblur_wide",
            "gaussian",
            4.0,
        )
        assert "random" in wide.info["trained_on"]
        (result,) = evaluation.evaluate(
            [dataset], [wide.restorer], wide.task_config, max_images=1, log=None
        )
        assert np.isfinite(result.means[wide.restorer.label]["psnr_rgb"])
        with pytest.raises(ValueError, match="task mismatch"):
            evaluation.load_model(str(tmp_path), "sr2", log=None)
