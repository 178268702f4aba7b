"""The PyTorch reference (``benchmarks/torch_reference.py``) computes what ``suppa_jax`` computes.

Same weights (JAX init, loaded into PyTorch with :func:`suppa_jax.weights.params_to_torch`), same
inputs, relative error ``max|ours − torch| / max|torch| ≤ 1e-4`` for: the DRUNet forward and its
gradients; the data step of SR ×2/×3/×4 and of two blurs; one ADMM step; the restoration loop
(estimate and per-sample iteration counts, with a tolerance at which the samples stop at
different iterations); and one SUPPA training step (loss, gradients, and the parameters after
Adam), with the reservoir's uniform draws taken from the JAX key so that both sample the same
visited state. Tiny sizes: DRUNet widths (8, 16, 32, 64) ×1, 24×24 images.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from benchmarks import torch_reference as ref
from benchmarks.torch_reference import TorchDRUNet
from suppa_jax import methods, physics, training
from suppa_jax.models.drunet import DRUNet
from suppa_jax.models.weights import params_to_torch
from suppa_jax.solvers import admm

ARCH = {"widths": (8, 16, 32, 64), "num_blocks": 1, "channels": 3}
SIZE = 24
TOL = 1e-4
TAIL_SCALE = 0.1


def rel_err(ours, theirs) -> float:
    """``max|ours − theirs| / max|theirs|`` (arrays or tensors, any layout already matched)."""
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    return float(np.abs(np.asarray(ours) - theirs).max() / np.abs(theirs).max())


def to_torch(x) -> torch.Tensor:
    """NHWC array → NCHW tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def to_nhwc(x: torch.Tensor) -> np.ndarray:
    return x.detach().permute(0, 2, 3, 1).numpy()


class Pair:
    """One random-init DRUNet in both frameworks, and jitted JAX entry points."""

    def __init__(self) -> None:
        self.model = DRUNet(**ARCH)
        x = jnp.zeros((1, 8, 8, 3))
        params = self.model.init(jax.random.key(0), x, 0.1)["params"]
        # A damped tail makes the random prior contractive enough for ADMM to converge.
        self.params = {**params, "tail": {"kernel": params["tail"]["kernel"] * TAIL_SCALE}}
        self.net = self.torch_net()
        self.apply = lambda p, x, s: self.model.apply({"params": p}, x, s)

    def torch_net(self) -> TorchDRUNet:
        """A fresh PyTorch DRUNet holding the JAX weights."""
        net = TorchDRUNet(**ARCH)
        state = {k: torch.from_numpy(v.copy()) for k, v in params_to_torch(self.params).items()}
        net.load_state_dict(state)
        return net


@pytest.fixture(scope="module")
def pair() -> Pair:
    torch.set_num_threads(1)  # deterministic reductions; the test is about values, not speed
    return Pair()


def sr_problem(
    scale: int, batch: int, seed: int
) -> tuple[physics.CirculantOperator, np.ndarray, ...]:
    """A super-resolution problem on random smooth-ish images: ``(op, gt, y)``."""
    rng = np.random.default_rng(seed)
    gt = rng.random((batch, SIZE, SIZE, 3), dtype=np.float32)
    op = physics.SuperResolution(scale)
    y = np.asarray(jnp.clip(op.forward(gt), 0.0, 1.0))
    return op, gt, y


def torch_operator(op: physics.CirculantOperator) -> ref.FourierOperator:
    return ref.FourierOperator(np.asarray(op.kernel), op.scale, (SIZE, SIZE))


# ------------------------------------------------------------------------------------ DRUNet


def test_drunet_forward_and_gradients_match(pair: Pair, rng: np.random.Generator):
    x = rng.random((2, SIZE, SIZE, 3), dtype=np.float32)
    weight = rng.standard_normal(x.shape, dtype=np.float32)
    sigma = np.array([0.05, 0.2], np.float32)

    def loss(params, x):
        out = pair.apply(params, x, sigma)
        return jnp.sum(out * weight), out

    (_, out), (g_params, g_x) = jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True))(
        pair.params, x
    )
    x_t = to_torch(x).requires_grad_()
    out_t = pair.net(x_t, torch.from_numpy(sigma))
    (out_t * to_torch(weight)).sum().backward()

    assert rel_err(out, to_nhwc(out_t)) <= TOL
    assert rel_err(g_x, to_nhwc(x_t.grad)) <= TOL
    grads = dict(pair.net.named_parameters())
    for key, g in params_to_torch(g_params).items():
        assert rel_err(g, grads[key].grad) <= TOL, key


# ------------------------------------------------------------------------------------ data step


OPERATORS = {
    "sr2": lambda: physics.SuperResolution(2),
    "sr3": lambda: physics.SuperResolution(3),
    "sr4": lambda: physics.SuperResolution(4),
    "blur_gauss": lambda: physics.Blur(physics.gaussian_kernel(2.0, 11)),
    "blur_even": lambda: physics.Blur(np.random.default_rng(5).random((4, 6))),
}


@pytest.mark.parametrize("name", list(OPERATORS))
def test_data_prox_forward_and_initial_match(name: str, rng: np.random.Generator):
    op = OPERATORS[name]()
    s = op.scale
    z = rng.random((2, SIZE, SIZE, 3), dtype=np.float32)
    y = rng.random((2, SIZE // s, SIZE // s, 3), dtype=np.float32)
    t_op = torch_operator(op)
    rho = np.array([0.1 * s**2, 0.37], np.float32)  # per-sample, as the solver allows

    ours = jax.jit(op.data_prox)(z, y, rho)
    theirs = t_op.data_prox(to_torch(z), to_torch(y), torch.from_numpy(rho))
    assert rel_err(ours, to_nhwc(theirs)) <= TOL
    scalar = t_op.data_prox(to_torch(z), to_torch(y), 0.1)
    assert rel_err(op.data_prox(z, y, 0.1), to_nhwc(scalar)) <= TOL
    assert rel_err(op.forward(z), to_nhwc(t_op.forward(to_torch(z)))) <= TOL
    assert rel_err(op.initial(y), to_nhwc(t_op.initial(to_torch(y)))) <= TOL


# ------------------------------------------------------------------------------------ ADMM


def test_one_admm_step_matches(pair: Pair):
    op, _, y = sr_problem(2, batch=2, seed=3)
    rho, sigma = admm.reference_rho(op), 0.1
    denoise = functools.partial(pair.apply, pair.params)
    start = admm.init(op, y)
    ours = jax.jit(lambda s: admm.step(denoise, op, y, s, rho, sigma))(start)

    t_op = torch_operator(op)
    with torch.no_grad():
        theirs = ref.admm_step(
            pair.net, t_op, to_torch(y), ref.initial_state(t_op, to_torch(y)), rho, sigma
        )
    assert rel_err(start.x, to_nhwc(ref.initial_state(t_op, to_torch(y)).x)) <= TOL
    assert rel_err(ours.x, to_nhwc(theirs.x)) <= TOL
    assert rel_err(ours.u, to_nhwc(theirs.u)) <= TOL


def stop_iterations(changes: np.ndarray, tol: float) -> np.ndarray:
    """Iterations each sample runs when it stops at the first relative change below ``tol``.

    ``changes``: ``(K, B)``, the change made by iteration ``k = 1..K`` of the untruncated loop.
    """
    below = changes < tol
    return np.where(below.any(axis=0), below.argmax(axis=0) + 1, changes.shape[0])


def separating_tol(changes: np.ndarray, margin: float = 0.05) -> float:
    """A tolerance at which the samples stop at different iterations, with every observed
    change at least ``margin`` (relative) away from it, so rounding cannot move a stop."""
    values = np.sort(changes.ravel())
    best, best_spread = None, 0
    for lo, hi in itertools.pairwise(values):
        if hi < lo * (1 + margin) ** 2:
            continue
        tol = float(np.sqrt(lo * hi))
        spread = len(set(stop_iterations(changes, tol)))
        if spread > max(best_spread, 1) and stop_iterations(changes, tol).max() < changes.shape[0]:
            best, best_spread = tol, spread
    assert best is not None, "no tolerance separates the samples"
    return best


@pytest.fixture(scope="module")
def restoration(pair: Pair) -> dict:
    """SR ×2 on 3 images with per-sample σ, and a tolerance that stops them apart."""
    op, _, y = sr_problem(2, batch=3, seed=7)
    sigma = np.array([0.03, 0.1, 0.3], np.float32)
    rho, max_iters = admm.reference_rho(op), 12
    denoise = jax.tree_util.Partial(pair.apply, pair.params)
    solve = jax.jit(admm.solve, static_argnames=("max_iters", "trace"))
    full = solve(denoise, op, y, rho=rho, sigma=sigma, max_iters=max_iters, tol=0.0, trace=True)
    est = np.asarray(full.estimates, np.float64)
    diff = np.sqrt(((est[1:] - est[:-1]) ** 2).sum(axis=(-3, -2, -1)))
    changes = diff / (1e-5 + np.sqrt((est[1:] ** 2).sum(axis=(-3, -2, -1))))
    tol = separating_tol(changes)
    solution = solve(denoise, op, y, rho=rho, sigma=sigma, max_iters=max_iters, tol=tol)
    return {
        "op": op,
        "y": y,
        "sigma": sigma,
        "rho": rho,
        "max_iters": max_iters,
        "tol": tol,
        "solution": solution,
        "expected_iterations": stop_iterations(changes, tol),
    }


def test_restoration_loop_matches_solve_with_per_sample_stopping(pair: Pair, restoration: dict):
    r = restoration
    x, iterations = ref.restore(
        pair.net,
        torch_operator(r["op"]),
        to_torch(r["y"]),
        rho=r["rho"],
        sigma=torch.from_numpy(r["sigma"]),
        max_iters=r["max_iters"],
        tol=r["tol"],
    )
    ours = r["solution"]
    np.testing.assert_array_equal(ours.iterations, r["expected_iterations"])
    assert len(set(ours.iterations.tolist())) > 1  # the samples did stop apart
    np.testing.assert_array_equal(iterations.numpy(), np.asarray(ours.iterations))
    assert rel_err(ours.x, to_nhwc(x)) <= TOL


# ------------------------------------------------------------------------------------ SUPPA


def reservoir_draws(key: jax.Array, max_iters: int, batch: int) -> np.ndarray:
    """The uniforms our reservoir draws for ``s_0..s_K`` with one (scalar) key."""
    draw = lambda k: jax.random.uniform(jax.random.fold_in(key, k), (batch,))  # noqa: E731
    return np.stack([np.asarray(draw(k)) for k in range(max_iters + 1)])


@pytest.mark.parametrize(("max_iters", "tol"), [(4, 0.0), (12, "separating")])
def test_suppa_training_step_matches(pair: Pair, restoration: dict, max_iters: int, tol):
    op, gt, y = sr_problem(2, batch=3, seed=7)
    tol = restoration["tol"] if tol == "separating" else tol
    rho, key = admm.reference_rho(op), jax.random.key(11)
    method = methods.suppa(pair.apply, op, rho=rho, max_iters=max_iters, tol=tol)
    optimizer = training.make_optimizer(lr=1e-4, scalar_lr=0.1)
    state = training.init_state(method, optimizer, pair.params)
    batch = {"y": jnp.asarray(y), "gt": jnp.asarray(gt)}
    grads, metrics = jax.jit(jax.grad(method.loss, has_aux=True))(state.trainable, batch, key)
    new_state, _ = jax.jit(functools.partial(training.update, method, optimizer))(state, batch, key)

    draws = reservoir_draws(key, max_iters, batch=3)
    model = ref.Suppa(pair.torch_net())
    torch_opt = ref.make_optimizer(model, lr=1e-4, scalar_lr=0.1)
    t_op, y_t, gt_t = torch_operator(op), to_torch(y), to_torch(gt)
    sampled, last, iterations = ref.suppa_forward(
        model, t_op, y_t, rho=rho, max_iters=max_iters, tol=tol, draws=torch.from_numpy(draws)
    )
    loss, _ = ref.suppa_loss(model, t_op, y_t, gt_t, rho, sampled, last)
    loss.backward()
    torch_opt.step()

    assert float(metrics["iterations"]) == pytest.approx(float(iterations.float().mean()))
    if tol:  # per-sample stopping took part
        assert len(set(iterations.tolist())) > 1
    # The sampled state is a genuine middle state for some sample (not s_0, not s_K).
    chosen = [int(np.argmax(draws[: n + 1, b])) for b, n in enumerate(iterations.tolist())]
    assert any(0 < c < n for c, n in zip(chosen, iterations.tolist(), strict=True)), chosen
    assert rel_err(metrics["loss"], loss) <= TOL
    assert rel_err(grads["sigma"], model.sigma.grad) <= TOL
    assert rel_err(grads["lam"], model.lam.grad) <= TOL
    torch_grads = dict(model.denoiser.named_parameters())
    for k, g in params_to_torch(grads["denoiser"]).items():
        assert rel_err(g, torch_grads[k].grad) <= TOL, k

    # σ starts at 0.1 and Adam's first step moves it by ≈ its learning rate 0.1: the result is a
    # cancellation near 0, so its error is measured against the value before the step.
    trained = new_state.trainable
    for name in ("sigma", "lam"):
        error = abs(float(trained[name]) - getattr(model, name).item())
        assert error <= TOL * max(abs(float(state.trainable[name])), 1e-12), name
    after = model.denoiser.state_dict()
    for k, p in params_to_torch(trained["denoiser"]).items():
        assert rel_err(p, after[k]) <= TOL, k
