"""ADMM: closed-form fixed points, a NumPy transcription of one step, and the stopping rule."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

from suppa_jax import metrics
from suppa_jax import physics as ops
from suppa_jax.solvers import admm, fixed_point

SIZE = 12


def shrink(x, sigma):
    """Tikhonov shrinkage ``x / (1 + σ)``: the prox of ``(ρσ/2)‖x‖²`` at penalty ρ."""
    return x / (1.0 + jnp.asarray(sigma).reshape((*jnp.shape(sigma), 1, 1, 1)))


def curved(x, sigma):
    """A nonlinear closed-form 'denoiser' for the transcription test."""
    return x / (1.0 + sigma * x**2)


def dense(op: ops.CirculantOperator, channels: int = 1) -> np.ndarray:
    """The matrix of ``op.forward`` on ``SIZE × SIZE × channels`` images (float64)."""
    n = SIZE * SIZE * channels
    basis = np.eye(n).reshape(n, SIZE, SIZE, channels)
    return np.asarray(jax.vmap(op.forward)(basis)).reshape(n, -1).T


@pytest.fixture(scope="module")
def jit_solve():
    return jax.jit(admm.solve, static_argnames=("max_iters", "trace"))


@pytest.mark.parametrize(
    "make_op", [lambda: ops.SuperResolution(2), lambda: ops.Blur(ops.gaussian_kernel(1.0, 5))]
)
def test_converges_to_tikhonov_minimiser(make_op, jit_solve):
    """With D(w) = w/(1+c), ADMM minimises ½‖y − Ax‖² + (ρc/2)‖x‖²."""
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        op = make_op()  # float64 kernel
        A = dense(op)
        y = rng.random((SIZE // op.scale, SIZE // op.scale, 1))
        rho, c = 0.4, 0.05
        expected = np.linalg.solve(A.T @ A + rho * c * np.eye(A.shape[1]), A.T @ y.ravel())
        solution = jit_solve(Partial(shrink), op, y, rho=rho, sigma=c, max_iters=2000, tol=1e-12)
        assert int(solution.iterations) < 2000
        np.testing.assert_allclose(np.ravel(solution.x), expected, rtol=1e-7, atol=1e-9)


def test_step_matches_numpy_transcription():
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        op = ops.SuperResolution(3, ops.gaussian_kernel(1.1, 5))
        A = dense(op, channels=1)
        y = rng.random((2, SIZE // 3, SIZE // 3, 1))
        x = rng.random((2, SIZE, SIZE, 1))
        u = rng.standard_normal((2, SIZE, SIZE, 1)) * 0.1
        rho, sigma = 0.7, 0.3
        new = admm.step(curved, op, y, admm.State(x, u), rho, sigma)
        for i in range(2):
            w = x[i] + u[i]
            v = w / (1 + sigma * w**2)
            rhs = A.T @ y[i].ravel() + rho * (v - u[i]).ravel()
            x_next = np.linalg.solve(A.T @ A + rho * np.eye(A.shape[1]), rhs).reshape(x[i].shape)
            np.testing.assert_allclose(new.x[i], x_next, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(new.u[i], u[i] + x_next - v, rtol=1e-9, atol=1e-12)


def test_init():
    y = np.random.default_rng(3).random((2, 6, 6, 3)).astype(np.float32)
    op = ops.SuperResolution(2)
    state = admm.init(op, y)
    np.testing.assert_array_equal(state.x, op.initial(y))
    assert state.u.shape == state.x.shape
    assert not np.any(state.u)


def _python_loop(op, y, rho, sigma, tol, max_iters):
    """Reference for one sample: iterate until the relative change drops below tol."""
    state = admm.init(op, y)
    for k in range(1, max_iters + 1):
        new = admm.step(shrink, op, y, state, rho, sigma)
        change = float(fixed_point.relative_change(new.x, state.x))
        state = new
        if change < tol:
            return state.x, k
    return state.x, max_iters


def test_stop_rule_is_per_sample(jit_solve):
    """A strongly regularised sample converges early and is frozen while the other continues."""
    rng = np.random.default_rng(4)
    op = ops.SuperResolution(2)
    y = rng.random((2, SIZE // 2, SIZE // 2, 3)).astype(np.float32)
    sigma = np.array([5.0, 0.02], np.float32)  # per-sample shrinkage: fast vs slow
    reference = rng.random((2, SIZE, SIZE, 3)).astype(np.float32)
    tol, max_iters = 1e-4, 60
    solution = jit_solve(
        Partial(shrink),
        op,
        y,
        rho=0.4,
        sigma=sigma,
        max_iters=max_iters,
        tol=tol,
        trace=True,
        reference=reference,
    )
    iters = np.asarray(solution.iterations)
    assert iters[0] < iters[1] <= max_iters
    for i in range(2):
        x_ref, k_ref = _python_loop(op, y[i], 0.4, sigma[i], tol, max_iters)
        assert iters[i] == k_ref
        np.testing.assert_allclose(solution.x[i], x_ref, rtol=1e-5, atol=1e-6)
    # The early sample's trace is flat after it stopped; the other's keeps moving.
    trace = np.asarray(solution.estimates)
    assert trace.shape == (max_iters + 1, *y.shape[:-3], SIZE, SIZE, 3)
    np.testing.assert_array_equal(
        trace[iters[0] :, 0], np.broadcast_to(trace[-1, 0], trace[iters[0] :, 0].shape)
    )
    assert np.abs(trace[iters[0], 1] - trace[iters[0] + 1, 1]).max() > 0
    np.testing.assert_allclose(trace[0], op.initial(y), atol=1e-6)
    np.testing.assert_array_equal(trace[-1], solution.x)
    # The PSNR curve is the PSNR of the traced estimates.
    np.testing.assert_allclose(
        solution.psnr, metrics.psnr(trace, reference[None]), rtol=1e-5, atol=1e-4
    )


def test_loop_stops_at_cap(jit_solve):
    rng = np.random.default_rng(5)
    y = rng.random((SIZE // 2, SIZE // 2, 3)).astype(np.float32)
    solution = jit_solve(
        Partial(shrink), ops.SuperResolution(2), y, rho=0.4, sigma=0.02, max_iters=3, tol=1e-9
    )
    assert int(solution.iterations) == 3
    assert solution.estimates is None
    assert solution.psnr is None


def test_solve_under_jit_vmap_and_grad():
    """solve is a pure function: vmap over images, grad through the loop's result via sigma."""
    rng = np.random.default_rng(6)
    op = ops.Blur(ops.gaussian_kernel(1.0, 5))
    y = rng.random((3, SIZE, SIZE, 1)).astype(np.float32)
    run = functools.partial(admm.solve, max_iters=5, tol=0.0)
    batched = jax.jit(lambda y: run(shrink, op, y, rho=0.3, sigma=0.1).x)(y)
    mapped = jax.jit(jax.vmap(lambda y: run(shrink, op, y, rho=0.3, sigma=0.1).x))(y)
    np.testing.assert_allclose(batched, mapped, rtol=1e-5, atol=1e-6)
    # while_loop is forward-differentiable: d x_5 / d sigma against a finite difference.
    f = lambda s: jnp.sum(run(shrink, op, y, rho=0.3, sigma=s).x)  # noqa: E731
    tangent = jax.jvp(f, (0.1,), (1.0,))[1]
    numeric = (f(0.1 + 1e-3) - f(0.1 - 1e-3)) / 2e-3
    np.testing.assert_allclose(tangent, numeric, rtol=1e-2)


def test_reference_rho():
    assert admm.reference_rho(ops.SuperResolution(3)) == pytest.approx(0.9)
    assert admm.reference_rho(ops.Blur(np.ones((3, 3)) / 9)) == pytest.approx(0.1)


def test_anderson_reaches_the_same_fixed_point_faster():
    rng = np.random.default_rng(7)
    op = ops.SuperResolution(2).prepare((SIZE, SIZE))
    y = jnp.asarray(rng.random((2, SIZE // 2, SIZE // 2, 3)), jnp.float32)
    contractive = lambda x, sigma: 0.5 * x / (1 + sigma) + 0.3 * jnp.tanh(x)  # noqa: E731
    f = lambda s: admm.step(contractive, op, y, s, 0.4, 0.1)  # noqa: E731
    start = admm.init(op, y)
    plain, plain_iters, _ = jax.jit(lambda s: fixed_point.iterate(f, s, max_iters=300, tol=1e-6))(
        start
    )
    fast, fast_iters = jax.jit(lambda s: fixed_point.anderson(f, s, max_iters=300, tol=1e-6))(start)
    assert np.all(np.asarray(fast_iters) < np.asarray(plain_iters))
    assert np.all(np.asarray(plain_iters) < 300)
    np.testing.assert_allclose(fast.x, plain.x, atol=1e-4)
    residual = f(fast)
    assert float(jnp.max(fixed_point.relative_change(residual.x, fast.x))) < 1e-5
    assert float(jnp.max(jnp.abs(residual.u - fast.u))) < 1e-4


def test_anderson_with_memory_one_is_plain_iteration():
    rng = np.random.default_rng(8)
    op = ops.Blur(ops.gaussian_kernel(1.0, 5)).prepare((SIZE, SIZE))
    y = jnp.asarray(rng.random((SIZE, SIZE, 3)), jnp.float32)
    f = lambda s: admm.step(curved, op, y, s, 0.4, 0.5)  # noqa: E731
    start = admm.init(op, y)
    plain, plain_iters, _ = fixed_point.iterate(f, start, max_iters=7, tol=0.0)
    one, one_iters = fixed_point.anderson(f, start, max_iters=7, tol=0.0, memory=1)
    assert int(one_iters) == int(plain_iters) == 7
    np.testing.assert_allclose(one.x, plain.x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(one.u, plain.u, rtol=1e-5, atol=1e-6)


def test_restore_is_solve_with_the_denoiser():
    """The one-liner equals solve() with Partial(model.apply, ...) across a jit boundary."""
    import suppa_jax
    from suppa_jax.models import Denoiser, drunet

    model = drunet.DRUNet(widths=(8, 16, 16, 16), num_blocks=1)
    y = np.random.default_rng(9).random((2, 7, 9, 3)).astype(np.float32)  # HR 14×18
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), 0.1)["params"]
    params = jax.tree.map(lambda p: 0.3 * p, params)
    op = ops.SuperResolution(2)
    got = suppa_jax.restore(Denoiser.of(model, params), y, op, sigma=0.05, max_iters=4)
    denoise = Partial(model.apply, {"params": params})
    expected = jax.jit(admm.solve, static_argnames=("max_iters",))(
        denoise, op, y, rho=0.4, sigma=0.05, max_iters=4
    )
    assert got.x.shape == (2, 14, 18, 3)
    np.testing.assert_allclose(got.x, expected.x, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.iterations, expected.iterations)
