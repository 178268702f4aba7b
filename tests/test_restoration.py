"""Restoring one's own measurements: image files at full depth, kernels, ``restore.py``.

Every file is written by the test itself; the restorations are compared with the solver called
directly on the same arrays.
"""

import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import torch

from suppa_jax import images, physics, restoration
from suppa_jax.models import Denoiser, drunet, weights
from suppa_jax.solvers import pnp

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_SR2 = ROOT / "weights" / "suppa_sr2"
#: Every train.py workdir shipped in weights/.
SHIPPED_RUNS = sorted(p for p in (ROOT / "weights").iterdir() if (p / "config.json").is_file())


@pytest.fixture(scope="module")
def tiny_prior(tmp_path_factory) -> Path:
    """A tiny random DRUNet (shrunk: the iteration stays bounded) storing σ = 0.04 for sr2."""
    model = drunet.DRUNet(widths=(8, 8, 8, 8), num_blocks=1)
    params = jax.jit(model.init)(jax.random.key(0), np.zeros((1, 8, 8, 3), np.float32), 0.1)
    path = tmp_path_factory.mktemp("prior") / "tiny.msgpack"
    weights.save_params(path, jax.tree.map(lambda p: 0.3 * p, params["params"]), {"sr2": 0.04})
    return path


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("depth", [8, 16])
def test_images_round_trip_at_full_depth(tmp_path, rng, suffix, channels, depth):
    levels = 2**depth - 1
    values = rng.integers(0, levels + 1, (7, 9, channels))
    path = images.write_image(tmp_path / f"x{suffix}", values / levels, depth)
    image = images.read_image(path)
    assert image.bit_depth == depth
    assert image.pixels.shape == (7, 9, channels)
    assert image.pixels.dtype == np.float32
    np.testing.assert_array_equal(np.round(image.pixels * levels), values)  # every level back


def test_image_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(ValueError, match=r"broken\.png: cannot read the image"):
        images.read_image(broken)
    with pytest.raises(ValueError, match=r"absent\.png: no such image file"):
        images.read_image(tmp_path / "absent.png")
    with pytest.raises(ValueError, match=r"x\.jpg: \.jpg holds 8 bits only"):
        images.write_image(tmp_path / "x.jpg", np.zeros((4, 4, 3)), 16)
    with pytest.raises(ValueError, match=r"unknown image format '\.xyz'"):
        images.write_image(tmp_path / "x.xyz", np.zeros((4, 4, 3)))
    assert not list(tmp_path.glob("*.xyz"))
    assert not list(tmp_path.glob(".*partial"))


def test_kernels_from_specs(tmp_path, rng):
    np.testing.assert_allclose(
        restoration.kernel_from_spec("gaussian:1.5:9"), physics.gaussian_kernel(1.5, 9)
    )
    assert restoration.kernel_from_spec("gaussian:1").shape == (7, 7)
    raw = rng.uniform(0, 1, (5, 3))
    np.save(tmp_path / "psf.npy", raw)
    np.testing.assert_allclose(
        restoration.kernel_from_spec(str(tmp_path / "psf.npy")), raw / raw.sum()
    )
    images.write_image(tmp_path / "psf.png", raw / raw.max(), 16)
    from_image = restoration.kernel_from_spec(str(tmp_path / "psf.png"))
    np.testing.assert_allclose(from_image, raw / raw.sum(), atol=1e-4)
    with pytest.raises(ValueError, match="gaussian:SIGMA"):
        restoration.kernel_from_spec("gaussian:wide")
    with pytest.raises(ValueError, match="not bicubic, gaussian"):
        restoration.kernel_from_spec("motion")
    assert restoration.named_operator(physics.SuperResolution(2)) == "sr2"
    assert restoration.named_operator(physics.Blur(physics.gaussian_kernel(2.0, 11))) == "deblur"
    assert restoration.named_operator(physics.Blur(np.ones((3, 3)) / 9)) is None


def test_restore_a_16_bit_photo_with_a_denoiser(tiny_prior, tmp_path, rng, capsys):
    """PnP with the σ stored in the prior; 16 bits in, 16 bits out, the solver's result to the
    last level; --trace writes x₀..x_K, its last the output."""
    y = rng.uniform(0, 1, (10, 12, 3)).astype(np.float32)
    source = images.write_image(tmp_path / "y.png", y, 16)
    out = tmp_path / "out"
    argv = [str(source), "--model", str(tiny_prior), "--task", "sr2", "--max_iters", "3"]
    assert restoration.main([*argv, "--trace", "--out", str(out)]) == 0
    written = images.read_image(out / "y.png")
    assert written.bit_depth == 16
    assert written.pixels.shape == (20, 24, 3)
    prior = weights.load_prior(tiny_prior)
    read_back = images.read_image(source).pixels
    op = physics.SuperResolution(2)
    want = pnp.restore(prior.denoiser, read_back, op, sigma=0.04, max_iters=3)
    np.testing.assert_allclose(written.pixels, np.clip(want.x, 0, 1), atol=0.6 / 65535)
    summary = json.loads((out / "restore.json").read_text())
    (row,) = summary["images"]
    assert row["iterations"] == int(want.iterations)
    assert summary["model"]["pnp_sigma"] == {"sr2": 0.04}
    trace = sorted((out / "y_trace").iterdir())
    assert len(trace) == row["iterations"] + 1
    np.testing.assert_array_equal(images.read_image(trace[-1]).pixels, written.pixels)
    assert "y.png ->" in capsys.readouterr().out


def test_restore_with_a_dpir_layout_pth_and_a_kernel_file(tiny_prior, tmp_path, rng):
    """A PyTorch state dict of random weights, a .npy PSF, an 8-bit grayscale image."""
    prior = weights.load_prior(tiny_prior)
    params = prior.params
    pth = tmp_path / "drunet_random.pth"
    state = {k: torch.from_numpy(v.copy()) for k, v in weights.params_to_torch(params).items()}
    torch.save(state, pth)
    psf = rng.uniform(0, 1, (5, 5))
    np.save(tmp_path / "psf.npy", psf)
    gray = rng.uniform(0, 1, (16, 16, 1))
    source = images.write_image(tmp_path / "gray.png", gray, 8)
    out = tmp_path / "out"
    argv = [str(source), "--model", str(pth), "--kernel", str(tmp_path / "psf.npy")]
    assert restoration.main([*argv, "--sigma", "0.05", "--max_iters", "2", "--out", str(out)]) == 0
    written = images.read_image(out / "gray.png")
    assert (written.bit_depth, written.pixels.shape) == (8, (16, 16, 1))
    # A gray image goes through the colour model as three equal channels, back as their mean.
    y = np.repeat(images.read_image(source).pixels, 3, axis=-1)
    op = physics.Blur(psf / psf.sum())
    want = pnp.restore(prior.denoiser, y, op, sigma=0.05, max_iters=2).x.mean(-1, keepdims=True)
    np.testing.assert_allclose(written.pixels, np.clip(want, 0, 1), atol=0.6 / 255)


def test_restore_with_a_shipped_run_uses_its_method_and_operator(tmp_path, rng):
    model = restoration.load_model(SHIPPED_SR2, max_iters=3)
    assert model.info["method"] == "suppa"
    y = rng.uniform(0, 1, (2, 8, 10, 3)).astype(np.float32)
    solution = restoration.restore(model, y, trace=True)
    assert solution.x.shape == (2, 16, 20, 3)
    assert solution.estimates.shape == (4, 2, 16, 20, 3)
    np.testing.assert_allclose(
        solution.estimates[0], physics.SuperResolution(2).initial(y), atol=1e-6
    )
    # A gray image through this colour model: the mean of the restoration of its three copies.
    gray = restoration.restore(model, y[0, ..., :1])
    copies = restoration.restore(model, np.repeat(y[0, ..., :1], 3, axis=-1))
    np.testing.assert_allclose(gray.x, copies.x.mean(-1, keepdims=True), atol=1e-6)


@pytest.mark.parametrize("path", SHIPPED_RUNS, ids=lambda path: path.name)
def test_every_shipped_model_is_one_checkpoint_that_loads_as_its_method_named_in_the_readme(path):
    (step,) = [int(p.name) for p in (path / "best").iterdir()]  # no other checkpoint rides along
    model = restoration.load_model(path, max_iters=1, log=None)
    config = json.loads((path / "config.json").read_text())
    assert (model.info["step"], model.info["method"]) == (step, config["method"])
    assert f"weights/{path.name}" in (ROOT / "README.md").read_text()


def test_restoring_with_another_operator_or_noise_than_trained_is_noted(tmp_path, capsys):
    source = images.write_image(tmp_path / "y.png", np.full((12, 12, 3), 0.5), 8)
    out = tmp_path / "out"
    argv = [str(source), "--model", str(SHIPPED_SR2), "--max_iters", "1", "--out", str(out)]
    assert restoration.main([*argv, "--task", "sr3", "--noise_sigma", "0.02"]) == 0
    printed = capsys.readouterr().out
    assert "was trained for sr2; restoring with SuperResolution(scale=3" in printed
    assert "was trained at noise level 0, not 0.02" in printed
    assert images.read_image(out / "y.png").pixels.shape == (36, 36, 3)


def test_restore_with_a_mask_file(tiny_prior, tmp_path, rng):
    """``--mask``: inpainting with a user's mask, as an image (white = observed) or a .npy; the
    output is PnP with ``Inpainting(mask)`` on the same arrays."""
    observed = rng.uniform(0, 1, (12, 14)) > 0.4
    np.save(tmp_path / "mask.npy", observed)
    images.write_image(tmp_path / "mask.png", observed[..., None].astype(float), 8)
    for spec in ("mask.npy", "mask.png"):
        np.testing.assert_array_equal(
            restoration.mask_from_file(str(tmp_path / spec)), observed[..., None]
        )
    y = rng.uniform(0, 1, (12, 14, 3)) * observed[..., None]
    source = images.write_image(tmp_path / "damaged.png", y, 16)
    out = tmp_path / "out"
    argv = [str(source), "--model", str(tiny_prior), "--mask", str(tmp_path / "mask.png")]
    assert restoration.main([*argv, "--sigma", "0.05", "--max_iters", "3", "--out", str(out)]) == 0
    op = physics.Inpainting(observed[..., None].astype(np.float32))
    prior = weights.load_prior(tiny_prior)
    read_back = images.read_image(source).pixels
    want = pnp.restore(prior.denoiser, read_back, op, sigma=0.05, max_iters=3)
    np.testing.assert_allclose(
        images.read_image(out / "damaged.png").pixels, np.clip(want.x, 0, 1), atol=0.6 / 65535
    )
    # Tuning σ for a user's mask: random missing pixels at the mask's rate.
    task = restoration._tuning_measurement(op, 0.0)
    assert task.op.kind == "pixels"
    assert task.op.rate == pytest.approx(1 - observed.mean(), abs=1e-4)


def test_restore_errors_are_one_line(tiny_prior, tmp_path, capsys):
    source = images.write_image(tmp_path / "y.png", np.full((8, 8, 3), 0.5), 8)

    def error(*argv: str) -> str:
        with pytest.raises(SystemExit) as stop:
            restoration.main([str(source), "--out", str(tmp_path / "out"), *argv])
        assert stop.value.code == 2
        message = capsys.readouterr().err.strip()
        assert len(message.splitlines()) == 1
        return message

    assert "is a denoiser or was trained over a family of operators: give --task" in error(
        "--model", str(tiny_prior)
    )
    assert "not both" in error("--model", str(tiny_prior), "--task", "sr2", "--scale", "2")
    assert "needs --scale >= 2" in error("--model", str(tiny_prior), "--kernel", "bicubic")
    assert "--sigma must be in (0, 1]" in error(
        "--model", str(tiny_prior), "--task", "sr2", "--sigma", "8"
    )
    assert "does not exist" in error("--model", str(tmp_path / "absent"))
    np.save(tmp_path / "small.npy", np.ones((4, 4)))
    np.save(tmp_path / "grey.npy", np.full((8, 8), 0.5))
    model = ("--model", str(tiny_prior), "--sigma", "0.05")
    assert "y.png: a 8×8 image and a 4×4 --mask" in error(
        *model, "--mask", str(tmp_path / "small.npy")
    )
    assert "grey.npy: expected a 2-D array of 0 (missing) and 1" in error(
        *model, "--mask", str(tmp_path / "grey.npy")
    )
    assert "--mask is the operator" in error(
        *model, "--mask", str(tmp_path / "small.npy"), "--task", "sr2"
    )


def test_restore_script_runs_from_the_shell(tiny_prior, tmp_path):
    source = images.write_image(tmp_path / "y.tif", np.full((8, 8, 3), 0.25), 16)
    result = subprocess.run(
        [
            sys.executable,
            "restore.py",
            str(source),
            "--model",
            str(tiny_prior),
            "--task",
            "sr2",
            "--max_iters",
            "2",
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert images.read_image(tmp_path / "out" / "y.tif").bit_depth == 16


def test_a_grayscale_denoiser_restores_colour_channel_by_channel(tmp_path, rng):
    """DPIR ships a grayscale DRUNet (channels=1): a colour image goes through it per channel."""
    model = drunet.DRUNet(widths=(8, 8, 8, 8), num_blocks=1, channels=1)
    params = jax.jit(model.init)(jax.random.key(1), np.zeros((1, 8, 8, 1), np.float32), 0.1)
    params = jax.tree.map(lambda p: 0.3 * p, params["params"])
    path = tmp_path / "gray.msgpack"
    weights.save_params(path, params, {"sr2": 0.05})
    loaded = restoration.load_model(path, max_iters=2)
    assert loaded.channels == 1
    y = rng.uniform(0, 1, (6, 7, 3)).astype(np.float32)
    op = physics.SuperResolution(2)
    got = restoration.restore(loaded, y, op)
    assert got.x.shape == (12, 14, 3)
    denoiser = Denoiser.of(model, params)
    for c in range(3):
        want = pnp.restore(denoiser, y[..., c : c + 1], op, sigma=0.05, max_iters=2)
        np.testing.assert_allclose(got.x[..., c : c + 1], want.x, rtol=1e-5, atol=1e-6)


def test_shipped_paths_resolve_from_any_directory(tmp_path, monkeypatch):
    """One rule for every entry point: as given, else under the project root."""
    from suppa_jax import build, paths
    from suppa_jax import config as config_lib

    monkeypatch.chdir(tmp_path)
    shipped = "weights/drunet_cpu_denoiser.msgpack"
    assert paths.resolve_path(shipped, "x") == paths.ROOT / shipped
    config = config_lib.experiment("sr", scale=2, cpu=True)
    assert config.model.init == shipped
    params = build.initial_params(config, build.build_model(config))  # the trainer's path
    assert weights.count_params(params) == weights.count_params(
        weights.load_denoiser(paths.ROOT / shipped)
    )
    (tmp_path / "weights").mkdir()
    own = tmp_path / shipped
    own.write_bytes(b"")
    assert paths.resolve_path(shipped, "x") == Path(shipped)  # the user's own file wins
    with pytest.raises(ValueError, match=r"--model 'absent\.msgpack' does not exist"):
        paths.resolve_path("absent.msgpack", "--model")
