"""A new forward model and a new training method, added the way the README says: each its own
code plus one registry entry, here registered from the test itself (no project module edited),
then validated, trained and evaluated through the public builders."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from suppa_jax import build, evaluation, methods, tasks
from suppa_jax import config as config_lib
from suppa_jax.methods import base
from suppa_jax.physics import LinearOperator
from suppa_jax.solvers import admm
from suppa_jax.training import loop


@jax.tree_util.register_pytree_node_class
class Vignetting(LinearOperator):
    """``A x = w ⊙ x``: a fixed, smooth, positive per-pixel gain (the toy forward model).

    Diagonal, so its data step is exact per pixel: ``x = (w y + ρ z) / (w² + ρ)``.
    """

    def __init__(self, strength: float) -> None:
        self.strength = strength

    def tree_flatten(self):
        return (), (self.strength,)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*aux)

    def gain(self, shape: tuple[int, ...]) -> jax.Array:
        height, width = shape[-3], shape[-2]
        rows = jnp.linspace(-1, 1, height)[:, None]
        cols = jnp.linspace(-1, 1, width)[None, :]
        return (1.0 - self.strength * (rows**2 + cols**2) / 2)[..., None]

    def forward(self, x):
        return self.gain(x.shape) * x

    def adjoint(self, y):
        return self.gain(y.shape) * y

    def data_prox(self, z, y, rho):
        w = self.gain(z.shape)
        rho = jnp.reshape(jnp.asarray(rho, z.dtype), (*jnp.shape(rho), 1, 1, 1))
        return (w * y + rho * z) / (w**2 + rho)

    def initial(self, y):
        return y / self.gain(y.shape)


def one_step(apply, op, *, rho: float, sigma: float) -> methods.Method:
    """The toy method: ``loss = mse(f(s₀).x, gt)``, one ADMM step from the start, σ learned."""

    def init(denoiser):
        return {"denoiser": denoiser, "sigma": base.scalar(sigma)}

    def run(trainable, batch):
        A, y = base.prepared(op, batch), batch["y"]
        f = base.admm_iteration(apply, A, y, trainable["denoiser"], rho, trainable["sigma"])
        return f(admm.init(A, y)).x

    def loss(trainable, batch, key):
        del key
        estimate = run(trainable, batch)
        value = base.mse(estimate, batch["gt"])
        return value, base.step_metrics(value, estimate, batch["gt"], 1, trainable)

    def predict(trainable, y, reference=None, trace=False, op=None):
        x = run(trainable, {"y": y} if op is None else {"y": y, "op": op})
        return admm.Solution(x, jnp.ones(y.shape[:-3], jnp.int32))

    return methods.Method("one_step", init, loss, predict)


@pytest.fixture(scope="module")
def registered():
    """The toy kind, its named task and the toy method, registered for this module only."""
    tasks.register_kind(tasks.TaskKind("vignette", lambda task: Vignetting(0.5), kernels=("gain",)))
    tasks.register_task(tasks.NamedTask("vignette", "vignette", 1))
    methods.register(
        methods.MethodSpec(
            "one_step",
            one_step,
            "One step",
            lambda config: {"rho": config.admm.rho, "sigma": config.admm.sigma},
            iterations_setting=None,
            fixed_iterations=True,
        )
    )
    yield
    methods.unregister("one_step")
    tasks.unregister_task("vignette")
    tasks.unregister_kind("vignette")


def toy_config(init_file: str):
    config = config_lib.experiment("vignette", cpu=True)
    return config_lib.apply_overrides(
        config,
        {
            "method": "one_step",
            "model.widths": (8, 8, 8, 8),
            "model.num_blocks": 1,
            "model.residual": False,
            "model.init": init_file,
            "data.source": "samples",
            "data.eval_source": "",
            "data.patch": 8,
            "data.max_eval_images": 1,
            "data.eval_crop": 32,
            "train.batch_size": 13,  # the 13 training samples: one step per epoch
            "train.epochs": 1,
        },
    )


def test_the_registries_know_the_additions(registered):
    assert "vignette" in tasks.kinds()
    assert "one_step" in methods.names()
    with pytest.raises(ValueError, match="already registered"):
        methods.register(methods.get("one_step"))
    config = config_lib.base()
    overrides = {"task.kind": "vignette", "task.scale": 1, "task.kernel": "blur"}
    config_lib.apply_overrides(config, overrides)
    with pytest.raises(ValueError, match=r"config.task.kernel must be one of \['gain'\]"):
        config_lib.validate(config)


def test_toy_operator_and_method_train_and_evaluate(registered, init_file, tmp_path):
    config = toy_config(init_file)
    config_lib.validate(config)
    op = build.build_operator(config.task)
    assert isinstance(op, Vignetting)

    summary = loop.train_and_evaluate(config, tmp_path)
    assert summary["step"] == 1
    assert np.isfinite(summary["train"]["loss"])
    assert "sigma" in summary["train"]
    assert np.isfinite(summary["final"]["val_psnr"])

    model = evaluation.load_model(str(tmp_path), None)
    assert model.task == "vignette"
    assert model.restorer.label == "One step"
    dataset = evaluation.parse_data("samples", "validation")
    rows = [evaluation.initial_restorer(op), model.restorer]
    (result,) = evaluation.evaluate([dataset], rows, model.task_config, max_images=1, log=None)
    means = result.means
    assert set(means) == {"initial(y)", "One step"}
    # x₀ = y / w inverts a noise-free 8-bit vignetting up to rounding: far above 30 dB.
    assert means["initial(y)"]["psnr_rgb"] > 30
    assert np.isfinite(means["One step"]["psnr_rgb"])
