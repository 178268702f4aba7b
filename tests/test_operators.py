"""Operators against dense linear algebra, PyTorch's interpolate and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.nn import functional

from suppa_jax import physics
from suppa_jax import physics as ops

SIZE = 12  # divisible by 2, 3 and 4; large enough for a 7×7 kernel


def _random_kernel(shape: tuple[int, int], seed: int) -> np.ndarray:
    kernel = np.random.default_rng(seed).random(shape)
    return kernel / kernel.sum()


# name → (constructor, scale). Random kernels have no symmetry, so they pin the convention.
CASES = {
    "blur-gaussian": (lambda: ops.Blur(ops.gaussian_kernel(1.5, 5)), 1),
    "blur-random-odd": (lambda: ops.Blur(_random_kernel((5, 3), 1)), 1),
    "blur-random-even": (lambda: ops.Blur(_random_kernel((4, 6), 2)), 1),
    "sr2-bicubic": (lambda: ops.SuperResolution(2), 2),
    "sr3-bicubic": (lambda: ops.SuperResolution(3), 3),
    "sr4-bicubic": (lambda: ops.SuperResolution(4), 4),
    "sr2-bicubic-a0.5": (lambda: ops.SuperResolution(2, a=-0.5), 2),
    "sr3-bicubic-a0.5": (lambda: ops.SuperResolution(3, a=-0.5), 3),
    "sr4-bicubic-a0.5": (lambda: ops.SuperResolution(4, a=-0.5), 4),
    "sr2-random-even": (lambda: ops.SuperResolution(2, _random_kernel((4, 4), 3)), 2),
    "sr3-gaussian": (lambda: ops.SuperResolution(3, ops.gaussian_kernel(1.2, 7)), 3),
    "sr4-random-odd": (lambda: ops.SuperResolution(4, _random_kernel((5, 7), 4)), 4),
}


def dense_matrix(kernel: np.ndarray, scale: int, size: int = SIZE) -> np.ndarray:
    """``A`` written out from the definition ``(A x)[i] = Σ_j k[j] x[(s·i − j + c) mod n]``."""
    kh, kw = kernel.shape
    low = size // scale
    matrix = np.zeros((low, low, size, size))
    for i in range(low):
        for j in range(low):
            for a in range(kh):
                for b in range(kw):
                    row = (scale * i - a + kh // 2) % size
                    col = (scale * j - b + kw // 2) % size
                    matrix[i, j, row, col] += kernel[a, b]
    return matrix.reshape(low * low, size * size)


def as_image(vector: np.ndarray, side: int) -> np.ndarray:
    return vector.reshape(side, side, 1)


def _dense_checks(op: ops.CirculantOperator, scale: int, dtype, seed: int) -> dict[str, float]:
    """Relative errors of forward, adjoint, data_prox and quadratic_solve against the dense
    matrix."""
    rng = np.random.default_rng(seed)
    A = dense_matrix(np.asarray(op.kernel, np.float64), scale)
    low = SIZE // scale
    x = rng.random(SIZE * SIZE)
    y = rng.random(low * low)
    z = rng.random(SIZE * SIZE)
    rho = 0.37
    # A random circulant Q ⪰ 0.05·I: the spectrum |F g|² + 0.05 of a random kernel g.
    penalty = np.abs(np.fft.fft2(rng.standard_normal((SIZE, SIZE)))) ** 2 / SIZE**2 + 0.05
    basis = np.eye(SIZE * SIZE).reshape(-1, SIZE, SIZE)
    Q = np.fft.ifft2(penalty * np.fft.fft2(basis)).real.reshape(SIZE * SIZE, -1).T
    expected = {
        "forward": A @ x,
        "adjoint": A.T @ y,
        "data_prox": np.linalg.solve(A.T @ A + rho * np.eye(SIZE * SIZE), A.T @ y + rho * z),
        "quadratic_solve": np.linalg.solve(A.T @ A + Q, A.T @ y),
    }
    got = {
        "forward": op.forward(as_image(x, SIZE).astype(dtype)),
        "adjoint": op.adjoint(as_image(y, low).astype(dtype)),
        "data_prox": op.data_prox(
            as_image(z, SIZE).astype(dtype), as_image(y, low).astype(dtype), rho
        ),
        "quadratic_solve": op.quadratic_solve(
            as_image(y, low).astype(dtype), penalty.astype(dtype)
        ),
    }
    return {
        name: np.linalg.norm(np.ravel(got[name]) - expected[name]) / np.linalg.norm(expected[name])
        for name in expected
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_dense_float64(case):
    make, scale = CASES[case]
    with jax.enable_x64(True):
        errors = _dense_checks(make(), scale, np.float64, seed=len(case))
    assert max(errors.values()) <= 1e-5, errors


@pytest.mark.parametrize("case", sorted(CASES))
def test_dense_float32(case):
    make, scale = CASES[case]
    errors = _dense_checks(make(), scale, np.float32, seed=len(case))
    assert max(errors.values()) <= 1e-4, errors


def test_float64_is_tight():
    """In float64 the closed forms are exact to rounding, far below the 1e-5 tolerance."""
    make, scale = CASES["sr4-random-odd"]
    with jax.enable_x64(True):
        errors = _dense_checks(make(), scale, np.float64, seed=0)
    assert max(errors.values()) < 1e-12, errors


def _reference_bicubic_downsample(x: np.ndarray, scale: int, a: float) -> np.ndarray:
    """Bicubic downsampling from its definition, circular border, one axis at a time."""

    def along(v: np.ndarray, axis: int) -> np.ndarray:
        n = v.shape[axis]
        out = []
        for i in range(n // scale):
            center = (i + 0.5) * scale - 0.5
            first = int(np.floor(center)) - 1
            taps = [
                ops.cubic_weight(np.array(center - t), a) * np.take(v, t % n, axis=axis)
                for t in range(first, first + 4)
            ]
            out.append(sum(taps))
        return np.stack(out, axis=axis)

    return along(along(x, 0), 1)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("a", [-0.75, -0.5])
def test_bicubic_kernel_matches_definition(scale, a, rng):
    x = rng.random((SIZE, SIZE, 2))
    with jax.enable_x64(True):
        got = np.asarray(ops.SuperResolution(scale, a=a).forward(x))
    np.testing.assert_allclose(got, _reference_bicubic_downsample(x, scale, a), atol=1e-12)


def test_bicubic_taps_documented():
    """Bicubic kernels: the ×2 weights, and ×3 as pure decimation at offset 1."""
    row = ops.bicubic_kernel(2)[2] / ops.bicubic_kernel(2)[2].sum()
    np.testing.assert_allclose(row[:4], [-0.09375, 0.59375, 0.59375, -0.09375])
    x = np.random.default_rng(1).random((1, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(ops.SuperResolution(3).forward(x), x[:, 1::3, 1::3], atol=1e-6)


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_matches_torch_interior(scale, rng):
    x = rng.random((2, 24, 24, 3)).astype(np.float32)
    ours = np.asarray(ops.SuperResolution(scale).forward(x))
    theirs = functional.interpolate(
        _nchw(x), scale_factor=1 / scale, mode="bicubic", align_corners=False, antialias=False
    )
    theirs = theirs.numpy().transpose(0, 2, 3, 1)
    # Borders differ (circular vs clamped); the bicubic taps reach at most 2 LR pixels in.
    np.testing.assert_allclose(ours[:, 2:-2, 2:-2], theirs[:, 2:-2, 2:-2], rtol=0, atol=1e-6)
    assert np.abs(ours - theirs).max() > 1e-3 or scale != 2  # ×2 borders really are circular


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_initial_matches_torch(scale, rng):
    y = rng.random((2, 7, 9, 3)).astype(np.float32)
    ours = np.asarray(ops.SuperResolution(scale).initial(y))
    theirs = functional.interpolate(
        _nchw(y), scale_factor=scale, mode="bicubic", align_corners=False
    )
    np.testing.assert_allclose(ours, theirs.numpy().transpose(0, 2, 3, 1), rtol=0, atol=2e-6)


def test_blur_initial_is_y(rng):
    y = rng.random((SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_array_equal(ops.Blur(ops.gaussian_kernel()).initial(y), y)


def test_gaussian_kernel():
    k = ops.gaussian_kernel(2.0, 11)
    assert k.shape == (11, 11)
    np.testing.assert_allclose(k.sum(), 1.0)
    np.testing.assert_allclose(k, k.T)
    taps = np.exp(-(np.arange(-5, 6) ** 2) / 8.0)
    np.testing.assert_allclose(k, np.outer(taps, taps) / taps.sum() ** 2)


@pytest.mark.parametrize("case", ["blur-random-odd", "sr2-bicubic", "sr3-gaussian", "sr4-bicubic"])
def test_adjoint_identity_batched_multichannel(case, rng):
    make, scale = CASES[case]
    op = make()
    x = rng.standard_normal((2, 3, 24, 24, 3)).astype(np.float32)
    y = rng.standard_normal((2, 3, 24 // scale, 24 // scale, 3)).astype(np.float32)
    lhs = float(jnp.vdot(op.forward(x), y))
    rhs = float(jnp.vdot(x, op.adjoint(y)))
    assert abs(lhs - rhs) <= 1e-5 * np.sqrt(x.size * y.size)
    assert abs(lhs) > 1.0  # the identity is not vacuous


@pytest.mark.parametrize("case", ["blur-random-even", "sr3-bicubic"])
def test_batched_equals_per_image(case, rng):
    op = CASES[case][0]()
    x = rng.random((2, 2, SIZE, SIZE, 3)).astype(np.float32)
    y = op.forward(x)
    z = rng.random(x.shape).astype(np.float32)
    rho = np.array([[0.5, 1.0], [2.0, 0.1]], np.float32)  # one rho per sample
    batched = op.data_prox(z, y, rho)
    for i in range(2):
        for j in range(2):
            single = op.data_prox(z[i, j], y[i, j], rho[i, j])
            np.testing.assert_allclose(batched[i, j], single, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(y[i, j], op.forward(x[i, j]), rtol=1e-5, atol=1e-6)


def test_data_prox_minimises_objective(rng):
    """Perturbing the prox output in any direction increases ½‖y − Ax‖² + ρ/2‖x − z‖²."""
    op = ops.SuperResolution(2)
    z = rng.random((SIZE, SIZE, 3)).astype(np.float32)
    y = rng.random((SIZE // 2, SIZE // 2, 3)).astype(np.float32)
    rho = 0.2

    def objective(x):
        return 0.5 * jnp.sum((y - op.forward(x)) ** 2) + 0.5 * rho * jnp.sum((x - z) ** 2)

    x = op.data_prox(z, y, rho)
    grad = jax.grad(objective)(x)
    assert float(jnp.max(jnp.abs(grad))) < 1e-5
    assert float(objective(x)) < float(objective(x + 1e-2 * rng.standard_normal(x.shape)))


# ---------------------------------------------------------------- jit / vmap / grad


def _methods(op: ops.CirculantOperator, scale: int):
    """Each method as a function of its array arguments (noise-free, unquantised degrade)."""
    key = jax.random.key(0)
    return {
        "forward": (lambda x: op.forward(x), [(SIZE, SIZE, 3)]),
        "adjoint": (lambda y: op.adjoint(y), [(SIZE // scale, SIZE // scale, 3)]),
        "data_prox": (
            lambda z, y, rho: op.data_prox(z, y, rho),
            [(SIZE, SIZE, 3), (SIZE // scale, SIZE // scale, 3), ()],
        ),
        "initial": (lambda y: op.initial(y), [(SIZE // scale, SIZE // scale, 3)]),
        "degrade": (
            lambda x: physics.degrade(op, x, key, 0.0, quantize=False),
            [(SIZE, SIZE, 3)],
        ),
    }


@pytest.mark.parametrize("case", ["blur-gaussian", "sr2-bicubic", "sr4-random-odd"])
def test_jit_vmap_grad(case, rng):
    make, scale = CASES[case]
    op = make()
    for name, (fn, shapes) in _methods(op, scale).items():
        args = [
            (rng.random(s) * 0.8 + 0.1 if s else np.float64(0.3)).astype(np.float32) for s in shapes
        ]
        eager = fn(*args)
        np.testing.assert_allclose(jax.jit(fn)(*args), eager, rtol=1e-5, atol=1e-6)
        # vmap over a batch of 3 inputs equals three calls.
        batch = [np.stack([a, a * 0.5, a * 0.25]) for a in args]
        mapped = jax.vmap(fn)(*batch)
        for i in range(3):
            np.testing.assert_allclose(
                mapped[i], fn(*[b[i] for b in batch]), rtol=1e-5, atol=1e-6, err_msg=name
            )
        # grad of a random linear functional equals a central finite difference (float64).
        with jax.enable_x64(True):
            args64 = [np.asarray(a, np.float64) for a in args]
            weights = rng.standard_normal(np.shape(eager))

            def scalar(*a, weights=weights, fn=fn):
                return jnp.vdot(weights, fn(*a))

            grads = jax.grad(scalar, argnums=tuple(range(len(args))))(*args64)
            for index, (arg, grad) in enumerate(zip(args64, grads, strict=True)):
                direction = rng.standard_normal(np.shape(arg))
                eps = 1e-6
                plus = [a + eps * direction if i == index else a for i, a in enumerate(args64)]
                minus = [a - eps * direction if i == index else a for i, a in enumerate(args64)]
                numeric = (scalar(*plus) - scalar(*minus)) / (2 * eps)
                analytic = float(jnp.vdot(grad, direction))
                assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), (name, index)


def test_operator_is_a_pytree_vmap_over_kernels(rng):
    """A batch of operators (one kernel each) goes through vmap as an argument."""
    kernels = np.stack([_random_kernel((5, 5), s) for s in range(3)])
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[ops.Blur(k) for k in kernels])
    x = rng.random((3, SIZE, SIZE, 3)).astype(np.float32)
    mapped = jax.jit(jax.vmap(lambda op, x: op.forward(x)))(stacked, x)
    for i in range(3):
        np.testing.assert_allclose(mapped[i], ops.Blur(kernels[i]).forward(x[i]), atol=1e-6)


def test_prepare_reuses_spectra(rng):
    """A prepared operator computes no kernel FFT: one FFT pair fewer in data_prox."""
    op = ops.SuperResolution(2)
    prepared = op.prepare((SIZE, SIZE))
    z = rng.random((SIZE, SIZE, 3)).astype(np.float32)
    y = op.forward(z)

    def count_ffts(jaxpr) -> int:
        count = 0
        for eqn in jaxpr.eqns:
            count += eqn.primitive.name == "fft"
            for param in eqn.params.values():
                inner = getattr(param, "jaxpr", None)
                count += count_ffts(inner) if inner is not None else 0
        return count

    def ffts_in_data_prox(operator) -> int:
        return count_ffts(jax.make_jaxpr(lambda o: o.data_prox(z, y, 0.5))(operator).jaxpr)

    assert ffts_in_data_prox(prepared) == ffts_in_data_prox(op) - 1 == 3
    np.testing.assert_allclose(prepared.data_prox(z, y, 0.5), op.data_prox(z, y, 0.5), atol=1e-6)
    # Another image size ignores the cached spectra instead of misusing them.
    other = rng.random((24, 24, 3)).astype(np.float32)
    np.testing.assert_allclose(prepared.forward(other), op.forward(other), atol=1e-6)


def test_degrade_noise_and_quantisation(rng):
    op = ops.Blur(ops.gaussian_kernel(2.0, 11))
    x = rng.random((64, 64, 3)).astype(np.float32) * 0.6 + 0.2
    clean = op.forward(x)
    key = jax.random.key(3)
    exact = physics.degrade(op, x, key, 0.0, quantize=False)
    np.testing.assert_allclose(exact, np.clip(clean, 0, 1), atol=1e-7)
    noisy = physics.degrade(op, x, key, 0.05, quantize=False)
    assert abs(float(jnp.std(noisy - clean)) - 0.05) < 0.002
    assert not np.allclose(noisy, physics.degrade(op, x, jax.random.key(4), 0.05, quantize=False))
    quantized = np.asarray(physics.degrade(op, x, key, 0.05))
    np.testing.assert_allclose(quantized * 255, np.round(quantized * 255), atol=1e-4)
    assert np.abs(quantized - noisy).max() <= 0.5 / 255 + 1e-6
    assert quantized.min() >= 0.0
    assert quantized.max() <= 1.0


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ops.SuperResolution(2).forward(np.ones((13, 12, 3))), "not divisible"),
        (
            lambda: ops.SuperResolution(3).data_prox(np.ones((12, 10, 1)), np.ones((4, 3, 1)), 1.0),
            "not divisible",
        ),
        (lambda: ops.Blur(np.ones((3, 3))).forward(np.ones((12, 12))), "shape"),
        (lambda: ops.Blur(np.ones((3, 3))).adjoint(np.ones(12)), "shape"),
        (
            lambda: ops.Blur(np.ones((3, 3))).data_prox(
                np.ones((8, 8, 1)), np.ones((8, 8, 1)), 0.0
            ),
            "rho must be positive",
        ),
        (
            lambda: ops.SuperResolution(2).data_prox(np.ones((8, 8, 1)), np.ones((4, 4, 1)), -1.0),
            "rho must be positive",
        ),
        (
            lambda: ops.SuperResolution(2).data_prox(np.ones((8, 8, 1)), np.ones((8, 8, 1)), 1.0),
            "does not match",
        ),
        (lambda: ops.Blur(np.ones((13, 3))).forward(np.ones((12, 12, 1))), "larger than the image"),
        (lambda: ops.SuperResolution(4).initial(np.ones((1, 1, 1))), "larger than the image"),
        (lambda: ops.Blur(np.ones(3)), r"\(\.\.\., kh, kw\)"),
        (lambda: ops.SuperResolution(1), "scale"),
        (lambda: ops.SuperResolution(2.5), "scale"),
        (lambda: ops.SuperResolution(2, kernel="lanczos"), "lanczos"),
        (lambda: ops.gaussian_kernel(-1.0), "sigma"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_antialiased_bicubic_is_pillows_reduction_away_from_the_borders(scale, rng):
    """Pillow's BICUBIC resize (a = −0.5, the cubic widened by the factor, normalised weights)
    is MATLAB's imresize; ours is circular, Pillow's renormalises at the borders."""
    from PIL import Image

    x = rng.random((48, 48)).astype(np.float32)
    size = 48 // scale
    expected = np.asarray(
        Image.fromarray(x, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    )
    op = ops.SuperResolution(scale, ops.bicubic_kernel(scale, a=-0.5, antialias=True), a=-0.5)
    got = np.asarray(op.forward(jnp.asarray(x)[..., None]))[..., 0]
    margin = 3  # LR pixels whose taps reach the border (2s HR pixels) or wrap around
    np.testing.assert_allclose(
        got[margin:-margin, margin:-margin], expected[margin:-margin, margin:-margin], atol=1e-5
    )
    assert ops.bicubic_kernel(scale, -0.5, antialias=True).sum() == pytest.approx(1.0)
