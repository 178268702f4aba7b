"""The denoiser convention and the model registry: DnCNN as a second architecture (against a
PyTorch DnCNN), a toy architecture registered from the test, weight files of any architecture,
and grayscale and 16-bit data end to end through train.py, evaluate.py and restore.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_runs import tiny_config

import suppa_jax
from suppa_jax import build, convert, data, evaluation, images, physics, restoration
from suppa_jax import config as config_lib
from suppa_jax.models import Denoiser, DnCNN, DRUNet, as_denoiser, registry, weights
from suppa_jax.solvers import admm
from suppa_jax.training import loop

ROOT = Path(__file__).resolve().parents[1]
SMALL_DNCNN = {"features": 8, "depth": 3, "channels": 3}


def _train_main():
    spec = importlib.util.spec_from_file_location("train_entry", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _random_params(model: nn.Module, seed: int = 0, scale: float = 1.0):
    x = jnp.zeros((1, 8, 8, model.channels))
    params = jax.jit(model.init)(jax.random.key(seed), x, 0.1)["params"]
    # Every weight random (the tail too, which starts at zero), so that outputs depend on all.
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    leaves = [
        scale * 0.3 * jax.random.normal(k, p.shape) for k, p in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(tree, leaves)


# --------------------------------------------------------------------------- the registry


def test_the_registry_builds_each_architecture_from_config_fields():
    assert {"drunet", "dncnn"} <= set(registry.names())
    config = config_lib.experiment("sr", scale=2, cpu=True)
    assert isinstance(build.build_model(config), DRUNet)
    config_lib.apply_overrides(config, {"model.name": "dncnn", "model.features": 8})
    config_lib.validate(config)
    assert build.build_model(config) == DnCNN(features=8, depth=17, channels=3)
    assert registry.architecture(DnCNN(**SMALL_DNCNN)) == {"name": "dncnn", **SMALL_DNCNN}
    assert registry.describe(DnCNN(**SMALL_DNCNN)) == "dncnn (features 8, depth 3, channels 3)"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.name": "unet9"}, r"config\.model\.name must be one of \['drunet', 'dncnn'"),
        ({"model.name": "dncnn", "model.depth": 1}, r"config\.model\.depth must be >= 2"),
        ({"model.name": "dncnn", "model.features": 0}, r"config\.model\.features must be >= 1"),
        ({"model.channels": 2}, r"config\.model\.channels must be 3 \(RGB\) or 1"),
        ({"model.widths": (8, 8, 8)}, r"config\.model\.widths must be 4 positive"),
    ],
)
def test_bad_model_fields_are_named(overrides, message):
    config = config_lib.apply_overrides(config_lib.experiment("sr", scale=2, cpu=True), overrides)
    with pytest.raises(ValueError, match=message):
        config_lib.validate(config)


def test_fields_of_other_architectures_are_ignored():
    """DnCNN reads features and depth; a DRUNet's widths (even odd ones) do not concern it."""
    config = config_lib.experiment("sr", scale=2, cpu=True)
    config_lib.apply_overrides(config, {"model.name": "dncnn", "model.num_blocks": 7})
    config_lib.validate(config)
    assert build.build_model(config) == DnCNN(channels=3)


class Shrink(nn.Module):
    """A toy architecture: ``x ↦ x − tanh(w)·σ·(x − mean(x))``, one learned weight per channel."""

    channels: int = 3

    @nn.compact
    def __call__(self, x, sigma):
        w = self.param("w", nn.initializers.zeros, (self.channels,))
        sigma = jnp.reshape(jnp.asarray(sigma), (*jnp.shape(sigma), 1, 1, 1))
        return x - jnp.tanh(w) * sigma * (x - x.mean(axis=(-3, -2), keepdims=True))


@pytest.fixture
def shrink_registered():
    registry.register(registry.ModelSpec("shrink", Shrink, ("channels",), lambda values: None))
    yield
    registry.unregister("shrink")


def test_an_architecture_registered_from_outside_builds_saves_and_restores(
    shrink_registered, tmp_path, rng
):
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("shrink"))
    config = config_lib.experiment("sr", scale=2, cpu=True)
    config_lib.apply_overrides(config, {"model.name": "shrink"})
    config_lib.validate(config)
    model = build.build_model(config)
    params = {"w": jnp.asarray([0.5, -0.2, 1.0])}
    path = tmp_path / "shrink.msgpack"
    weights.save_params(path, params, {"sr2": 0.05}, model=model)
    prior = weights.load_prior(path)
    assert prior.model == model
    assert prior.pnp_sigma == {"sr2": 0.05}
    np.testing.assert_array_equal(prior.params["w"], params["w"])
    y = rng.uniform(0, 1, (6, 6, 3)).astype(np.float32)
    got = suppa_jax.restore(prior.denoiser, y, physics.SuperResolution(2), sigma=0.05, max_iters=3)
    assert got.x.shape == (12, 12, 3)
    assert np.all(np.isfinite(got.x))
    with pytest.raises(ValueError, match=r"the parameters of shrink \(channels 3\): missing 'w'"):
        weights.save_params(tmp_path / "bad.msgpack", {"v": params["w"]}, model=model)


# --------------------------------------------------------------------------- the convention


def test_a_denoiser_is_a_pytree_and_compiles_once_per_architecture():
    model = DnCNN(**SMALL_DNCNN)
    traces = []

    @jax.jit
    def apply(denoiser, x):
        traces.append(1)
        return denoiser(x, 0.1)

    x = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (1, 8, 8, 3)), jnp.float32)
    first = Denoiser.of(model, _random_params(model, 0))
    second = Denoiser.of(model, {"params": _random_params(model, 1)})  # a variables dict too
    assert len(jax.tree.leaves(first)) == len(jax.tree.leaves(_random_params(model)))
    out_first, out_second = apply(first, x), apply(second, x)
    assert len(traces) == 1  # new params, same architecture: no retrace
    assert float(jnp.abs(out_first - out_second).max()) > 1e-3
    grads = jax.grad(lambda d: jnp.sum(d(x, 0.1)))(first)
    assert isinstance(grads, Denoiser)
    assert jax.tree.structure(grads.params) == jax.tree.structure(first.params)


def test_restore_takes_any_callable_as_the_denoiser(rng):
    """A bare function (x, σ) → x is a denoiser too: restore equals admm.solve with it."""

    def soft_shrink(x, sigma):
        mean = x.mean(axis=(-3, -2), keepdims=True)
        return mean + (x - mean) / (1 + 4 * jnp.asarray(sigma))

    y = rng.uniform(0, 1, (2, 6, 7, 3)).astype(np.float32)
    op = physics.SuperResolution(2)
    got = suppa_jax.restore(soft_shrink, y, op, sigma=0.05, max_iters=5)
    want = admm.solve(soft_shrink, op, y, rho=admm.reference_rho(op), sigma=0.05, max_iters=5)
    np.testing.assert_allclose(got.x, want.x, rtol=1e-5, atol=1e-6)
    assert as_denoiser(soft_shrink)(y, 0.05).shape == y.shape
    with pytest.raises(TypeError, match="must be callable"):
        as_denoiser(3)


# --------------------------------------------------------------------------- DnCNN


def _torch_dncnn(params, depth: int) -> torch.nn.Module:
    """The same network in PyTorch, written independently: Conv2d(3×3, padding 1) + ReLU."""
    layers = []
    for k in range(depth):
        kernel, bias = (np.asarray(params[f"conv_{k}"][n]) for n in ("kernel", "bias"))
        conv = torch.nn.Conv2d(kernel.shape[2], kernel.shape[3], 3, padding=1)
        conv.weight.data = torch.from_numpy(np.transpose(kernel, (3, 2, 0, 1)).copy())
        conv.bias.data = torch.from_numpy(bias.copy())
        layers += [conv] + ([torch.nn.ReLU()] if k < depth - 1 else [])
    return torch.nn.Sequential(*layers).double()


@pytest.mark.parametrize("channels", [1, 3])
def test_dncnn_matches_a_pytorch_dncnn(channels, rng):
    model = DnCNN(features=8, depth=4, channels=channels)
    params = _random_params(model)
    x = rng.uniform(0, 1, (2, 11, 9, channels))
    sigma = np.array([0.02, 0.2])
    got = np.asarray(model.apply({"params": params}, jnp.asarray(x, jnp.float32), sigma))
    net = _torch_dncnn(jax.tree.map(lambda p: np.asarray(p, np.float64), params), 4)
    level = np.broadcast_to(sigma[:, None, None, None], (*x.shape[:-1], 1))
    inputs = torch.from_numpy(np.concatenate([x, level], -1).transpose(0, 3, 1, 2).copy())
    want = x - net(inputs).detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_an_untrained_dncnn_is_the_identity(rng):
    model = DnCNN(**SMALL_DNCNN)
    x = jnp.asarray(rng.uniform(0, 1, (5, 7, 3)), jnp.float32)  # no batch dim, odd size
    params = jax.jit(model.init)(jax.random.key(0), x, 0.1)["params"]
    np.testing.assert_array_equal(model.apply({"params": params}, x, 0.1), x)
    with pytest.raises(ValueError, match=r"DnCNN expects \(\.\.\., H, W, 3\)"):
        model.apply({"params": params}, x[..., :1], 0.1)


def test_dncnn_trains_fine_tunes_and_evaluates_through_the_clis(tmp_path, capsys):
    """Denoiser pre-training (train.py), export (convert), SUPPA fine-tuning (train.py),
    evaluation (evaluate.py) and restoring a file (restore.py), all with model.name=dncnn."""
    train = _train_main()
    tiny = [
        "--config.model.name=dncnn",
        "--config.model.features=8",
        "--config.model.depth=3",
        "--config.data.source=samples",
        "--config.data.eval_source=",
        "--config.data.patches_per_image=1",
        "--config.data.max_eval_images=1",
        "--config.data.eval_crop=32",
        "--config.train.batch_size=4",
        "--config.train.epochs=1",
        "--config.train.log_every_steps=1",
    ]
    pre = tmp_path / "denoiser"
    argv = ["--config=configs/denoiser_cpu.py", f"--workdir={pre}", "--config.data.patch=16"]
    assert train([*argv, *tiny]) == 0
    prior_file = tmp_path / "dncnn.msgpack"
    assert convert.main([str(pre), str(prior_file)]) == 0
    assert "dncnn (features 8, depth 3, channels 3)" in capsys.readouterr().out
    assert weights.load_prior(prior_file).model == DnCNN(**SMALL_DNCNN)

    run = tmp_path / "suppa"
    argv = ["--config=configs/sr_x2_cpu.py", f"--workdir={run}", "--config.data.patch=8"]
    init = [f"--config.model.init={prior_file}", "--config.admm.max_iters=3"]
    assert train([*argv, *tiny, *init]) == 0
    assert "train.py: step 4" in capsys.readouterr().out  # 13 samples, batch 4: 3.25 steps

    out = tmp_path / "eval"
    argv = ["--checkpoint", str(run), "--data", "samples", "--max_images", "1", "--out", str(out)]
    assert evaluation.main([*argv, "--pnp_sigma", "0.05", "--max_iters", "3"]) == 0
    report = json.loads((out / "results.json").read_text())
    rows = {row["method"]: row for row in report["datasets"][0]["per_image"]}
    assert {"bicubic", "PnP-ADMM (pre-trained)", "SUPPA"} <= set(rows)
    assert all(np.isfinite(row["psnr_rgb"]) for row in rows.values())

    y = images.write_image(tmp_path / "y.png", np.full((8, 10, 3), 0.4, np.float32), 8)
    assert restoration.main([str(y), "--model", str(run), "--out", str(tmp_path / "x")]) == 0
    assert images.read_image(tmp_path / "x" / "y.png").pixels.shape == (16, 20, 3)


# --------------------------------------------------------------------------- gray and 16-bit


def test_a_grayscale_pipeline_yields_the_luma_of_the_colour_patches(rng):
    colour = [rng.integers(0, 2**16, (20, 24, 3), dtype=np.uint16) for _ in range(3)]
    source = data.ArraySource(colour, ["a", "b", "c"])
    common = {"batch_size": 3, "patch": 8, "scale": 2, "seed": 5, "num_epochs": 1}
    rgb = next(iter(data.build_train_dataset(source, **common)))
    gray = next(iter(data.build_train_dataset(source, channels=1, **common)))
    assert gray["hr"].shape == (3, 16, 16, 1)
    np.testing.assert_array_equal(gray["seed"], rgb["seed"])
    luma = rgb["hr"] @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(gray["hr"][..., 0], luma, rtol=1e-6)
    # 16-bit pixels keep their depth: levels between the 8-bit ones survive.
    levels = rgb["hr"] * 65535
    np.testing.assert_allclose(levels, np.round(levels), atol=2e-3)
    assert np.mean(np.abs(rgb["hr"] * 255 - np.round(rgb["hr"] * 255)) > 0.01) > 0.5


def test_dpir_grayscale_layout_converts_to_a_one_channel_drunet(tmp_path, capsys, rng):
    """A state dict laid out as DPIR's drunet_gray.pth (random weights) through the converter:
    a one-channel DRUNet that denoises like the PyTorch network."""
    from benchmarks.torch_reference import TorchDRUNet

    torch.manual_seed(3)
    net = TorchDRUNet((8, 16, 16, 16), 1, channels=1).eval()
    pth, out = tmp_path / "drunet_gray.pth", tmp_path / "drunet_gray.msgpack"
    torch.save(net.state_dict(), pth)
    assert convert.main([str(pth), str(out), "--pnp_sigma=deblur=0.03"]) == 0
    assert "channels 1" in capsys.readouterr().out
    prior = weights.load_prior(out)
    assert prior.model == DRUNet((8, 16, 16, 16), 1, channels=1)
    x = rng.uniform(0, 1, (1, 12, 10, 1)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x.transpose(0, 3, 1, 2)), 0.1).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(prior.denoiser(x, 0.1), want, rtol=1e-4, atol=1e-5)


def _write_png16(path: Path, pixels: np.ndarray) -> None:
    images.write_image(path, pixels.astype(np.float32) / 65535, 16)


def test_a_grayscale_drunet_trains_on_16_bit_files_and_evaluates(tmp_path, rng):
    """channels=1: a 16-bit PNG folder in, luma patches, SUPPA from a gray prior, and
    evaluation on the luma of the images (DPIR ships such a network, drunet_gray.pth)."""
    folder = tmp_path / "photos"
    for split in ("train", "validation"):
        (folder / split).mkdir(parents=True)
        for i in range(4):
            smooth = np.cumsum(rng.integers(0, 400, (32, 32, 3)), axis=1) % 65536
            _write_png16(folder / split / f"{i}.png", smooth)
    assert data.build_source(f"folder:{folder}", "train")[0].dtype == np.uint16
    gray = DRUNet(widths=(8, 8, 8, 8), num_blocks=1, channels=1)
    prior_file = tmp_path / "gray.msgpack"
    weights.save_params(prior_file, _random_params(gray, scale=0.3), {"sr2": 0.05})
    config = tiny_config(
        str(prior_file),
        **{
            "model.channels": 1,
            "data.source": f"folder:{folder}",
            "data.train_split": "train",
            "data.eval_split": "validation",
            "train.epochs": 1,
        },
    )
    summary = loop.train_and_evaluate(config, tmp_path / "run")
    assert summary["step"] == 1
    assert np.isfinite(summary["final"]["val_psnr"])
    model = evaluation.load_model(str(tmp_path / "run"), None, max_iters=3)
    assert model.channels == 1
    rows = [evaluation.initial_restorer(build.build_operator(model.task_config)), model.restorer]
    dataset = evaluation.parse_data(f"folder:{folder}", "validation")
    (result,) = evaluation.evaluate(
        [dataset], rows, model.task_config, channels=1, max_images=2, log=None, out=tmp_path / "o"
    )
    assert all(
        np.isfinite(m["psnr_rgb"]) and np.isfinite(m["psnr_y"]) for m in result.means.values()
    )
    saved = next((tmp_path / "o" / "images").rglob("*_gt.png"))
    assert Image.open(saved).mode == "L"
