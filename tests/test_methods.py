"""Training losses: gradients against independent computations and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from suppa_jax import methods, physics
from suppa_jax import physics as ops
from suppa_jax.models import drunet
from suppa_jax.solvers import admm

SIZE = 12
RHO = 0.4


def toy_apply(params, x, sigma):
    """A contractive closed-form 'denoiser' with learnable parameters (Lipschitz < 1)."""
    return params["a"] * x / (1.0 + sigma) + params["b"] * jnp.tanh(x)


TOY = {"a": jnp.float32(0.5), "b": jnp.float32(0.3)}


@pytest.fixture(scope="module")
def op():
    return ops.SuperResolution(2)


@pytest.fixture(scope="module")
def batch(op):
    rng = np.random.default_rng(0)
    gt = jnp.asarray(rng.random((2, SIZE, SIZE, 3)), jnp.float32)
    return {"y": physics.degrade(op, gt, jax.random.key(0)), "gt": gt}


def trajectory(apply, params, op, y, rho, sigma, steps):
    """s_0..s_steps by a plain Python loop over admm.step."""
    states = [admm.init(op, y)]
    for _ in range(steps):
        states.append(admm.step(lambda x, s: apply(params, x, s), op, y, states[-1], rho, sigma))
    return states


def mse(a, b):
    return jnp.mean((a - b) ** 2)


def relative_error(a, b):
    a, b = jax.tree.leaves(a), jax.tree.leaves(b)
    num = sum(float(jnp.sum((x - y) ** 2)) for x, y in zip(a, b, strict=True))
    den = sum(float(jnp.sum(y**2)) for y in b)
    return np.sqrt(num / den)


# ---------------------------------------------------------------------------------- SUPPA


def test_suppa_gradient_matches_independent_computation(op, batch):
    """grad of the loss == grad of the two-term loss with the sampled states held fixed."""
    K = 6
    method = methods.suppa(toy_apply, op, rho=RHO, max_iters=K, tol=0.0)
    trainable = method.init(TOY)
    key = jax.random.key(7)
    (value, metrics), grads = jax.value_and_grad(method.loss, has_aux=True)(trainable, batch, key)
    assert float(metrics["iterations"]) == K

    # Independent: the whole trajectory by a Python loop; the sampled state per sample is the
    # one with the largest uniform priority among s_0..s_K (same draws as the loop).
    states = trajectory(toy_apply, TOY, op, batch["y"], RHO, trainable["sigma"], K)
    draws = np.stack([jax.random.uniform(jax.random.fold_in(key, k), (2,)) for k in range(K + 1)])
    chosen = draws.argmax(axis=0)
    s_k = admm.State(*(jnp.stack([states[c][f][i] for i, c in enumerate(chosen)]) for f in (0, 1)))
    s_K = states[K]

    def two_term(tr):
        step = lambda s: admm.step(  # noqa: E731
            lambda x, sig: toy_apply(tr["denoiser"], x, sig), op, batch["y"], s, RHO, tr["sigma"]
        )
        lam = tr["lam"]
        return mse((1 + lam) * step(s_k).x - lam * s_k.x, batch["gt"]) + mse(
            step(s_K).x, batch["gt"]
        )

    expected_value, expected_grads = jax.value_and_grad(two_term)(trainable)
    np.testing.assert_allclose(value, expected_value, rtol=1e-5)
    assert relative_error(grads, expected_grads) < 1e-5
    # λ receives the gradient of the formula: 2·mean((1+λ)f(s_k) − λ s_k − gt)·(f(s_k) − s_k)).
    f_sk = admm.step(
        lambda x, s: toy_apply(TOY, x, s), op, batch["y"], s_k, RHO, trainable["sigma"]
    ).x
    residual = (1 + trainable["lam"]) * f_sk - trainable["lam"] * s_k.x - batch["gt"]
    # float32 reductions in another order: agreement to ~1e-5 relative, not better
    np.testing.assert_allclose(grads["lam"], 2 * jnp.mean(residual * (f_sk - s_k.x)), rtol=1e-4)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(grads))


@pytest.mark.parametrize("random_states", [1, 2])
def test_suppa_sequential_steps_give_the_same_loss_and_gradient(op, batch, random_states):
    """One after the other and rematerialised, or batched: the same objective, so the same
    loss and gradient (to float32 round-off), with a real network."""
    model = drunet.DRUNet(widths=(4, 4, 4, 4), num_blocks=1)
    params = model.init(jax.random.key(0), batch["gt"][:1], 0.1)["params"]
    apply = lambda p, x, s: model.apply({"params": p}, x, s)  # noqa: E731
    results = []
    for sequential in (False, True):
        method = methods.suppa(
            apply,
            op,
            rho=RHO,
            max_iters=4,
            tol=0.0,
            random_states=random_states,
            sequential=sequential,
        )
        loss = jax.jit(jax.value_and_grad(method.loss, has_aux=True))
        results.append(loss(method.init(params), batch, jax.random.key(3)))
    (batched, batched_grads), (one_by_one, sequential_grads) = results
    np.testing.assert_allclose(one_by_one[0], batched[0], rtol=1e-5)
    assert relative_error(sequential_grads, batched_grads) < 1e-5


def test_no_gradient_flows_into_forward_loop(op, batch):
    """Two forward histories that sample the same states give the same gradient.

    With ``max_iters`` 4 and 5 the loop's history differs (one more step), but the loss is a
    function of (s_k, s_K) only: feeding the same pair gives the same gradient, and the loss's
    gradient equals the gradient of the objective at its own detached states.
    """
    key = jax.random.key(3)
    for K in (4, 5):
        method = methods.suppa(toy_apply, op, rho=RHO, max_iters=K, tol=0.0)
        trainable = method.init(TOY)
        A = op.prepare(op.image_shape(batch["y"]))
        f = lambda tr, A=A: (  # noqa: E731
            lambda s: admm.step(
                lambda x, sig: toy_apply(tr["denoiser"], x, sig), A, batch["y"], s, RHO, tr["sigma"]
            )
        )
        sampled, last, _ = methods.suppa_forward(
            f(trainable), admm.init(A, batch["y"]), key, max_iters=K, tol=0.0
        )
        full = jax.grad(lambda tr, loss=method.loss: loss(tr, batch, key)[0])(trainable)
        fixed = jax.grad(
            lambda tr, sampled=sampled, last=last, f=f: methods.suppa_objective(
                f(tr), tr["lam"], sampled, last, batch["gt"]
            )[0]
        )(trainable)
        assert relative_error(full, fixed) < 1e-6


def test_reservoir_is_uniform_over_visited_states(op):
    """Over many keys each of s_0..s_K is sampled with probability 1/(K+1)."""
    K, trials = 4, 4000
    rng = np.random.default_rng(1)
    y = jnp.asarray(rng.random((SIZE // 2, SIZE // 2, 1)), jnp.float32)
    A = op.prepare((SIZE, SIZE))
    f = lambda s: admm.step(lambda x, sig: toy_apply(TOY, x, sig), A, y, s, RHO, 0.1)  # noqa: E731
    states = trajectory(toy_apply, TOY, A, y, RHO, 0.1, K)

    def sample(key):
        sampled, _, _ = methods.suppa_forward(f, admm.init(A, y), key, max_iters=K, tol=0.0)
        return sampled.x[0]

    picks = jax.jit(jax.vmap(sample))(jax.random.split(jax.random.key(0), trials))
    distances = jnp.stack([jnp.sum((picks - s.x) ** 2, axis=(1, 2, 3)) for s in states])
    assert float(jnp.min(distances, axis=0).max()) < 1e-10  # every pick is a visited state
    counts = np.bincount(np.asarray(jnp.argmin(distances, axis=0)), minlength=K + 1)
    np.testing.assert_allclose(counts / trials, 1 / (K + 1), atol=0.03)


def test_several_random_states_are_distinct_visited_states(op, batch):
    K, n = 6, 3
    A = op.prepare((SIZE, SIZE))
    y = batch["y"]
    f = lambda s: admm.step(lambda x, sig: toy_apply(TOY, x, sig), A, y, s, RHO, 0.1)  # noqa: E731
    sampled, last, iterations = methods.suppa_forward(
        f, admm.init(A, y), jax.random.key(5), max_iters=K, tol=0.0, random_states=n
    )
    assert sampled.x.shape == (n, *batch["gt"].shape)
    states = trajectory(toy_apply, TOY, A, y, RHO, 0.1, K)
    np.testing.assert_allclose(last.x, states[K].x, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(iterations, [K, K])
    for i in range(2):
        indices = [
            int(np.argmin([float(jnp.sum((sampled.x[j, i] - s.x[i]) ** 2)) for s in states]))
            for j in range(n)
        ]
        assert len(set(indices)) == n
        for j, k in enumerate(indices):
            np.testing.assert_allclose(sampled.u[j, i], states[k].u[i], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------- JFB


def test_jfb_equals_suppa_last_state_term(op, batch):
    K = 5
    jfb = methods.jfb(toy_apply, op, rho=RHO, max_iters=K, tol=0.0)
    trainable = jfb.init(TOY)
    (value, metrics), grads = jax.value_and_grad(jfb.loss, has_aux=True)(
        trainable, batch, jax.random.key(0)
    )
    states = trajectory(toy_apply, TOY, op, batch["y"], RHO, 0.1, K)

    def last_term(tr):
        stepped = admm.step(
            lambda x, s: toy_apply(tr["denoiser"], x, s),
            op,
            batch["y"],
            states[K],
            tr["rho"],
            tr["sigma"],
        )
        return mse(stepped.x, batch["gt"])

    expected_value, expected_grads = jax.value_and_grad(last_term)(trainable)
    np.testing.assert_allclose(value, expected_value, rtol=1e-5)
    assert relative_error(grads, expected_grads) < 1e-5
    assert float(metrics["iterations"]) == K


# ---------------------------------------------------------------------------------- DEQ


@pytest.mark.parametrize("anderson_memory", [0, 4])
def test_deq_gradient_matches_unrolling_to_convergence_and_fd(op, batch, anderson_memory):
    """In a contractive setting the implicit gradient is the limit of the unrolled one."""
    with jax.enable_x64(True):
        gt = jnp.asarray(batch["gt"], jnp.float64)
        data = {"y": jnp.asarray(batch["y"], jnp.float64), "gt": gt}
        op64 = ops.SuperResolution(2)
        toy64 = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), TOY)
        method = methods.deq(
            toy_apply,
            op64,
            rho=RHO,
            max_iters=500,
            tol=1e-13,
            backward_max_iters=500,
            backward_tol=1e-13,
            anderson_memory=anderson_memory,
        )
        trainable = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), method.init(toy64))
        loss = jax.jit(lambda tr: method.loss(tr, data, jax.random.key(0)))
        (value, metrics), grads = jax.value_and_grad(loss, has_aux=True)(trainable)
        assert float(metrics["iterations"]) < 500  # the forward loop converged

        def explicit(tr, steps=300):
            state = admm.init(op64, data["y"])
            step = lambda s, _: (  # noqa: E731
                admm.step(
                    lambda x, s_: toy_apply(tr["denoiser"], x, s_),
                    op64,
                    data["y"],
                    s,
                    tr["rho"],
                    tr["sigma"],
                ),
                None,
            )
            state, _ = jax.lax.scan(step, state, None, length=steps)
            return mse(state.x, gt)

        expected_value, expected = jax.jit(jax.value_and_grad(explicit))(trainable)
        np.testing.assert_allclose(value, expected_value, rtol=1e-10)
        assert relative_error(grads, expected) < 1e-3
        for name in ("rho", "sigma"):
            eps = 1e-6
            plus = loss({**trainable, name: trainable[name] + eps})[0]
            minus = loss({**trainable, name: trainable[name] - eps})[0]
            np.testing.assert_allclose(grads[name], (plus - minus) / (2 * eps), rtol=1e-4)
        eps = 1e-6
        bumped = lambda d: {**trainable, "denoiser": {**toy64, "a": toy64["a"] + d}}  # noqa: E731
        fd = (loss(bumped(eps))[0] - loss(bumped(-eps))[0]) / (2 * eps)
        np.testing.assert_allclose(grads["denoiser"]["a"], fd, rtol=1e-4)


# ---------------------------------------------------------------------------------- unrolled


def test_unrolled_matches_python_loop_and_remat(op, batch):
    K = 3
    plain = methods.unrolled(toy_apply, op, iters=K, rho=RHO)
    remat = methods.make("unrolled_remat", toy_apply, op, iters=K, rho=RHO)
    trainable = plain.init(TOY)
    trainable = {
        **trainable,
        "rho": jnp.array([0.3, 0.5, 0.7]),
        "sigma": jnp.array([0.2, 0.1, 0.05]),
    }

    def python_loop(tr):
        state = admm.init(op, batch["y"])
        for k in range(K):
            state = admm.step(
                lambda x, s: toy_apply(tr["denoiser"], x, s),
                op,
                batch["y"],
                state,
                tr["rho"][k],
                tr["sigma"][k],
            )
        return mse(state.x, batch["gt"])

    expected_value, expected = jax.value_and_grad(python_loop)(trainable)
    for method in (plain, remat):
        (value, metrics), grads = jax.value_and_grad(method.loss, has_aux=True)(
            trainable, batch, jax.random.key(0)
        )
        np.testing.assert_allclose(value, expected_value, rtol=1e-5)
        assert relative_error(grads, expected) < 1e-5
        assert grads["rho"].shape == (K,)
        assert float(metrics["iterations"]) == K


# ---------------------------------------------------------------------------------- with DRUNet


@pytest.fixture(scope="module")
def small_drunet(batch):
    """A small DRUNet whose weights are shrunk so that the ADMM iteration stays bounded."""
    model = drunet.DRUNet(widths=(8, 16, 16, 16), num_blocks=1)
    params = model.init(jax.random.key(0), batch["gt"], 0.1)["params"]
    params = jax.tree.map(lambda p: 0.3 * p, params)
    return (lambda p, x, s: model.apply({"params": p}, x, s)), params


@pytest.mark.parametrize("name", sorted(methods.names()))
def test_every_loss_is_finite_and_jittable(name, op, batch, small_drunet):
    apply, params = small_drunet
    settings = {
        "unrolled": {"iters": 2, "rho": RHO},
        "unrolled_remat": {"iters": 2, "rho": RHO},
        "denoiser": {},
    }.get(name, {"max_iters": 3, "rho": RHO})
    method = methods.make(name, apply, op, **settings)
    trainable = method.init(params)
    value_and_grad = jax.jit(jax.value_and_grad(method.loss, has_aux=True))
    (value, metrics), grads = value_and_grad(trainable, batch, jax.random.key(1))
    assert np.isfinite(float(value))
    assert {"loss", "psnr", "iterations"} <= set(metrics)
    leaves = jax.tree.leaves(grads)
    assert all(np.isfinite(leaf).all() for leaf in leaves)
    assert any(float(jnp.abs(leaf).max()) > 0 for leaf in jax.tree.leaves(grads["denoiser"]))


def test_make_rejects_unknown_names(op):
    with pytest.raises(ValueError, match="unknown training method 'admm'"):
        methods.make("admm", toy_apply, op, rho=RHO)
    with pytest.raises(ValueError, match="lamda"):
        methods.make("suppa", toy_apply, op, rho=RHO, lamda=1.0)


@pytest.mark.parametrize("name", sorted(methods.names()))
def test_predict_restores_with_the_methods_inference(name, op, batch, small_drunet):
    """predict: to convergence with the learned scalars, K steps for unrolling, one denoising."""
    apply, params = small_drunet
    settings = {
        "unrolled": {"iters": 3, "rho": RHO},
        "unrolled_remat": {"iters": 3, "rho": RHO},
        "denoiser": {"eval_sigma": 0.05},
    }.get(name, {"max_iters": 4, "tol": 1e-3, "rho": RHO})
    method = methods.make(name, apply, op, **settings)
    trainable = method.init(params)
    y = batch["y"] if name != "denoiser" else batch["gt"]
    solution = jax.jit(method.predict)(trainable, y, batch["gt"])
    traced = jax.jit(method.predict, static_argnames="trace")(trainable, y, trace=True)
    steps = {"denoiser": 2, "unrolled": 4, "unrolled_remat": 4}.get(name, 5)
    assert traced.estimates.shape == (steps, *solution.x.shape)
    np.testing.assert_allclose(traced.estimates[-1], solution.x, rtol=1e-5, atol=1e-6)
    start = y if name == "denoiser" else op.initial(y)
    np.testing.assert_allclose(traced.estimates[0], start, rtol=1e-5, atol=1e-6)
    denoise = lambda x, s: apply(params, x, s)  # noqa: E731
    if name == "denoiser":
        np.testing.assert_allclose(solution.x, denoise(batch["gt"], 0.05), rtol=1e-5, atol=1e-6)
        assert solution.psnr.shape == (2, 2)
        return
    if name.startswith("unrolled"):
        state = admm.init(op, batch["y"])
        for _ in range(3):
            state = admm.step(denoise, op, batch["y"], state, RHO, 0.1)
        expected_x, expected_iters = state.x, 3
    else:
        expected = admm.solve(denoise, op, batch["y"], rho=RHO, sigma=0.1, max_iters=4, tol=1e-3)
        expected_x, expected_iters = expected.x, expected.iterations
    np.testing.assert_allclose(solution.x, expected_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(solution.iterations, expected_iters)
    assert solution.psnr.shape[1:] == (2,)
    np.testing.assert_allclose(solution.psnr[-1], metrics_psnr(solution.x, batch["gt"]), rtol=1e-5)


def metrics_psnr(x, reference):
    from suppa_jax.metrics import psnr

    return psnr(x, reference)


def test_suppa_per_example_keys_are_batch_split_invariant(op, batch):
    """With one key per example, the sampled states of a sample do not depend on its batch."""
    A = op.prepare((SIZE, SIZE))
    keys = jax.vmap(jax.random.key)(jnp.array([11, 12]))
    run = lambda y, k: methods.suppa_forward(  # noqa: E731
        lambda s: admm.step(lambda x, sig: toy_apply(TOY, x, sig), A, y, s, RHO, 0.1),
        admm.init(A, y),
        k,
        max_iters=6,
        tol=0.0,
    )[0]
    whole = run(batch["y"], keys)
    for i in range(2):
        alone = run(batch["y"][i : i + 1], keys[i : i + 1])
        np.testing.assert_allclose(alone.x[0, 0], whole.x[0, i], rtol=1e-5, atol=1e-6)


def test_denoiser_loss_is_the_gaussian_denoising_mse():
    """loss = mse(D(x + σn, σ), x) with σ ~ U[min, max] per image: check with D = identity."""
    gt = jnp.asarray(np.random.default_rng(2).random((4, 64, 64, 3)), jnp.float32)
    method = methods.denoiser(lambda p, x, s: x, sigma_min=0.1, sigma_max=0.1)
    value, metrics = method.loss(method.init({}), {"gt": gt}, jax.random.key(0))
    # E[(σn)²] = σ²; over 49,152 samples the relative standard error is 0.64%
    np.testing.assert_allclose(value, 0.01, rtol=0.03)
    uniform = methods.denoiser(lambda p, x, s: x, sigma_min=0.0, sigma_max=0.3)
    keys = jax.random.split(jax.random.key(1), 4)  # one key per image
    value, _ = uniform.loss(uniform.init({}), {"gt": gt}, keys)
    assert 0.0 < float(value) < 0.09
    assert float(metrics["iterations"]) == 1
