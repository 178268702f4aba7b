"""DRUNet: architecture size, PyTorch parity (forward and gradients), weight conversion,
params files and the ``suppa_jax.convert`` CLI."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import msgpack
import numpy as np
import pytest
import torch
from flax import serialization

from benchmarks.torch_reference import TorchDRUNet
from suppa_jax import convert
from suppa_jax.models.base import with_compute_dtype
from suppa_jax.models.drunet import Down2x2, DRUNet, Up2x2
from suppa_jax.models.weights import (
    FORMAT_TAG,
    FORMAT_TAG_V1,
    count_params,
    load_params,
    model_from_params,
    params_from_torch,
    params_to_torch,
    save_params,
)

SMALL = {"widths": (8, 16, 32, 64), "num_blocks": 2, "channels": 3}
TOL = 1e-4


def rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    """``max|a - ref| / max|ref|``."""
    return float(np.abs(np.asarray(a) - ref).max() / np.abs(ref).max())


def torch_denoise(net: TorchDRUNet, x: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Run the NCHW PyTorch net on NHWC NumPy data; a 4-D sigma is an NHW1 map."""
    if isinstance(sigma, np.ndarray):
        sigma = torch.from_numpy(sigma.transpose(0, 3, 1, 2) if sigma.ndim == 4 else sigma)
    with torch.no_grad():
        out = net(torch.from_numpy(x).permute(0, 3, 1, 2), sigma)
    return out.permute(0, 2, 3, 1).numpy()


class Small:
    """The small reference pair shared by the tests: a random-weight PyTorch net, the same
    weights converted, and one jitted apply (so each input shape compiles once)."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.torch_net = TorchDRUNet(**SMALL).eval()
        self.state_dict = {k: v.numpy() for k, v in self.torch_net.state_dict().items()}
        self.model = DRUNet(**SMALL)
        self.params = params_from_torch(self.torch_net.state_dict())
        self.apply = jax.jit(self.model.apply)
        rng = np.random.default_rng(1)
        self.x = rng.random((2, 13, 21, 3), dtype=np.float32)
        self.x16 = rng.random((2, 16, 16, 3), dtype=np.float32)
        self.sigmas = {
            "scalar": 0.1,
            "per_image": np.array([0.03, 0.2], np.float32),
            "map": (0.2 * rng.random((2, 13, 21, 1))).astype(np.float32),
        }

    def denoise(self, x: np.ndarray, sigma: float | np.ndarray, params=None) -> np.ndarray:
        return np.asarray(self.apply({"params": params or self.params}, x, sigma))


@pytest.fixture(scope="module")
def small() -> Small:
    return Small()


def test_paper_size_has_32_640_960_parameters_in_both_frameworks():
    shapes = jax.eval_shape(
        DRUNet().init, jax.random.key(0), jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32), 0.1
    )["params"]
    assert count_params(shapes) == 32_640_960
    assert model_from_params(shapes) == DRUNet()
    with torch.device("meta"):
        meta = TorchDRUNet()
    assert sum(p.numel() for p in meta.parameters()) == 32_640_960
    # The converter maps every PyTorch tensor onto the Flax parameter of the same role.
    placeholder = {k: np.empty(v.shape, np.float32) for k, v in meta.state_dict().items()}
    converted = params_from_torch(placeholder)
    assert jax.tree.map(np.shape, converted) == jax.tree.map(lambda s: s.shape, shapes)


@pytest.mark.parametrize("kind", ["scalar", "per_image", "map"])
def test_matches_pytorch_on_odd_size_for_every_sigma_kind(small: Small, kind: str):
    sigma = small.sigmas[kind]
    out = small.denoise(small.x, sigma)
    ref = torch_denoise(small.torch_net, small.x, sigma)
    assert out.shape == small.x.shape
    assert out.dtype == np.float32
    assert rel_err(out, ref) <= TOL
    assert np.abs(ref).max() > 0.1  # a meaningful comparison, not two near-zero outputs


def test_matches_pytorch_on_multiple_of_8(small: Small):
    ref = torch_denoise(small.torch_net, small.x16, 0.05)
    assert rel_err(small.denoise(small.x16, 0.05), ref) <= TOL


def test_sigma_changes_the_output(small: Small):
    low, high = (small.denoise(small.x16, s) for s in (0.01, 0.2))
    assert np.abs(low - high).max() > 1e-3


def test_matches_pytorch_wider_grayscale():
    arch = {"widths": (16, 32, 48, 64), "num_blocks": 1, "channels": 1}
    torch.manual_seed(1)
    net = TorchDRUNet(**arch).eval()
    model = DRUNet(**arch)
    params = params_from_torch(net.state_dict())
    x = np.random.default_rng(2).random((1, 19, 24, 1), dtype=np.float32)
    sigma = np.array([0.1], np.float32)
    out = jax.jit(model.apply)({"params": params}, x, sigma)
    assert rel_err(out, torch_denoise(net, x, sigma)) <= TOL


def test_stride_two_layers_match_lax_and_pytorch(rng: np.random.Generator):
    x = rng.standard_normal((2, 6, 8, 5), dtype=np.float32)
    k = rng.standard_normal((2, 2, 5, 7), dtype=np.float32)
    dims = ("NHWC", "HWIO", "NHWC")
    down = Down2x2(7).apply({"params": {"kernel": k}}, x)
    down_lax = jax.lax.conv_general_dilated(x, k, (2, 2), "VALID", dimension_numbers=dims)
    down_torch = torch.nn.functional.conv2d(
        torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(k).permute(3, 2, 0, 1), stride=2
    )
    assert down.shape == (2, 3, 4, 7)
    np.testing.assert_allclose(down, down_lax, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(down, down_torch.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-5)

    y = rng.standard_normal((2, 3, 4, 5), dtype=np.float32)
    up = Up2x2(7).apply({"params": {"kernel": k}}, y)
    # lax.conv_transpose without transpose_kernel correlates with the flipped kernel.
    up_lax = jax.lax.conv_transpose(y, k[::-1, ::-1], (2, 2), "VALID", dimension_numbers=dims)
    up_torch = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(y).permute(0, 3, 1, 2), torch.from_numpy(k).permute(2, 3, 0, 1), stride=2
    )
    assert up.shape == (2, 6, 8, 7)
    np.testing.assert_allclose(up, up_lax, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(up, up_torch.permute(0, 2, 3, 1).numpy(), rtol=1e-5, atol=1e-5)


def test_leading_batch_dims_and_vmap_over_single_images(small: Small):
    sigma = small.sigmas["per_image"]
    batched = small.denoise(small.x, sigma)
    variables = {"params": small.params}
    five_d = small.apply(variables, small.x[None], sigma[None])
    assert five_d.shape == (1, *small.x.shape)
    np.testing.assert_allclose(five_d[0], batched, rtol=1e-5, atol=1e-6)
    single = jax.jit(jax.vmap(small.model.apply, in_axes=(None, 0, 0)))(variables, small.x, sigma)
    np.testing.assert_allclose(single, batched, rtol=1e-5, atol=1e-6)
    # One HWC image through a denoiser closure that crosses a jit boundary (jax.tree_util.Partial).
    denoise = jax.tree_util.Partial(small.model.apply, variables)
    first = jax.jit(lambda d, x: d(x, sigma[0]))(denoise, small.x[0])
    np.testing.assert_allclose(first, batched[0], rtol=1e-5, atol=1e-6)


def test_gradients_match_pytorch_autograd(small: Small, rng: np.random.Generator):
    x, sigma = small.x16, 0.05
    weight = rng.standard_normal(x.shape, dtype=np.float32)

    def loss(params, x):
        return jnp.sum(small.model.apply({"params": params}, x, sigma) * weight)

    g_params, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(small.params, x)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves((g_params, g_x)))

    net = small.torch_net
    net.zero_grad()
    x_t = torch.from_numpy(x).permute(0, 3, 1, 2).requires_grad_()
    (net(x_t, sigma) * torch.from_numpy(weight).permute(0, 3, 1, 2)).sum().backward()
    assert rel_err(g_x, x_t.grad.permute(0, 2, 3, 1).numpy()) <= TOL
    torch_grads = {k: p.grad.numpy() for k, p in net.named_parameters()}
    for key, g in params_to_torch(g_params).items():
        assert rel_err(g, torch_grads[key]) <= TOL, key


def test_params_to_torch_inverts_params_from_torch(small: Small):
    back = params_to_torch(small.params)
    assert list(back) == list(small.state_dict)
    for key, value in small.state_dict.items():
        assert back[key].dtype == value.dtype
        np.testing.assert_array_equal(back[key], value, err_msg=key)


def test_model_from_params_recovers_the_architecture(small: Small):
    assert model_from_params(small.params) == small.model
    assert model_from_params({"params": small.params}) == small.model
    other = DRUNet(widths=(4, 8, 12, 16), num_blocks=3, channels=1)
    x = jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.float32)
    shapes = jax.eval_shape(other.init, jax.random.key(0), x, 0.1)
    assert model_from_params(shapes) == other


def test_state_dict_errors_name_the_key(small: Small):
    sd = dict(small.state_dict)
    missing = {k: v for k, v in sd.items() if k != "m_up2.1.res.2.weight"}
    with pytest.raises(ValueError, match=r"missing key.*'m_up2\.1\.res\.2\.weight'"):
        params_from_torch(missing)
    extra = {**sd, "m_up2.9.res.0.weight": sd["m_up2.1.res.0.weight"]}
    with pytest.raises(ValueError, match=r"unexpected key.*'m_up2\.9\.res\.0\.weight'"):
        params_from_torch(extra)
    bad = {**sd, "m_down2.0.res.0.weight": np.ones((16, 16, 3, 2), np.float32)}
    msg = r"'m_down2\.0\.res\.0\.weight': expected shape \(16, 16, 3, 3\), found \(16, 16, 3, 2\)"
    with pytest.raises(ValueError, match=msg):
        params_from_torch(bad)
    with pytest.raises(ValueError, match=r"'m_head\.weight'"):
        params_from_torch({k: v for k, v in sd.items() if k != "m_head.weight"})
    with pytest.raises(ValueError, match=r"missing key.*'m_down1\.2\.res\.0\.weight'"):
        params_from_torch(sd, DRUNet(widths=SMALL["widths"], num_blocks=3))


def test_params_tree_errors_name_the_path(small: Small):
    params = jax.tree.map(np.asarray, small.params)
    del params["up1"]["res_1"]["conv_0"]
    with pytest.raises(ValueError, match=r"'up1/res_1/conv_0/kernel'"):
        model_from_params(params)
    params = jax.tree.map(np.asarray, small.params)
    params["tail"]["kernel"] = params["tail"]["kernel"][:, :, :, :2]
    with pytest.raises(ValueError, match=r"'tail/kernel': expected shape \(3, 3, 8, 3\)"):
        params_to_torch(params)


def test_save_load_round_trip(small: Small, tmp_path):
    path = tmp_path / "small.msgpack"
    save_params(path, small.params)
    model, params = load_params(path)
    assert model == small.model
    assert jax.tree.structure(params) == jax.tree.structure(small.params)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(small.params), strict=True):
        assert a.dtype == jnp.float32
        np.testing.assert_array_equal(a, b)


def _write(path, payload) -> None:
    path.write_bytes(serialization.msgpack_serialize(payload))


def test_load_rejects_wrong_files_naming_them(small: Small, tmp_path, rng: np.random.Generator):
    garbage = tmp_path / "garbage.msgpack"
    garbage.write_bytes(b"\xc1" + rng.bytes(64))
    with pytest.raises(ValueError, match=r"garbage\.msgpack: not a msgpack file"):
        load_params(garbage)

    other = tmp_path / "other.msgpack"
    other.write_bytes(msgpack.packb({"weights": [1.0, 2.0]}))
    with pytest.raises(ValueError, match=r"other\.msgpack: not a denoiser params file"):
        load_params(other)

    params = jax.tree.map(np.asarray, small.params)
    arch = {"name": "drunet", "widths": [8, 16, 32], "num_blocks": 2, "channels": 3}
    bad_arch = tmp_path / "bad_arch.msgpack"
    _write(bad_arch, {"format": FORMAT_TAG, "architecture": arch, "params": params})
    # A v2 record names every field: residual is missing.
    with pytest.raises(ValueError, match=r"bad_arch\.msgpack: architecture 'drunet': missing"):
        load_params(bad_arch)
    _write(bad_arch, {"format": FORMAT_TAG, "architecture": {**arch, "residual": False}})
    with pytest.raises(ValueError, match=r"bad_arch\.msgpack: architecture 'drunet': widths"):
        load_params(bad_arch)
    _write(bad_arch, {"format": FORMAT_TAG, "architecture": {"name": "unet9", "channels": 3}})
    with pytest.raises(ValueError, match=r"bad_arch\.msgpack: unknown model 'unet9'"):
        load_params(bad_arch)
    nameless = {"widths": [8, 16, 32, 64], "num_blocks": 2, "channels": 3}
    _write(bad_arch, {"format": FORMAT_TAG, "architecture": nameless, "params": params})
    with pytest.raises(ValueError, match=r"bad_arch\.msgpack: architecture has no model name"):
        load_params(bad_arch)

    arch = {"widths": [8, 16, 32, 64], "num_blocks": 3, "channels": 3}  # a v1 record: no name
    mismatch = tmp_path / "mismatch.msgpack"
    _write(mismatch, {"format": FORMAT_TAG_V1, "architecture": arch, "params": params})
    with pytest.raises(ValueError, match=r"mismatch\.msgpack: the parameters of drunet .*missing"):
        load_params(mismatch)


def test_files_written_before_the_registry_still_load(small: Small, tmp_path):
    """A v1 file (format suppa_jax.drunet.v1, a DRUNet record without a name) is a DRUNet."""
    path = tmp_path / "v1.msgpack"
    arch = {"widths": list(small.model.widths), "num_blocks": 2, "channels": 3}
    params = jax.tree.map(np.asarray, small.params)
    _write(path, {"format": FORMAT_TAG_V1, "architecture": arch, "params": params})
    model, loaded = load_params(path)
    assert model == small.model
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(small.params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_rejects_images_with_the_wrong_channel_count(small: Small):
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 3\)"):
        small.model.apply({"params": small.params}, small.x[..., :2], 0.1)


@pytest.mark.parametrize("nesting", ["bare", "state_dict"])
def test_cli_converts_a_torch_file(small: Small, tmp_path, capsys, nesting: str):
    sd = small.torch_net.state_dict()
    pth, out = tmp_path / "drunet.pth", tmp_path / "drunet.msgpack"
    torch.save(sd if nesting == "bare" else {"state_dict": sd, "epoch": 3}, pth)
    assert convert.main([str(pth), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "drunet (widths (8, 16, 32, 64), num_blocks 2, channels 3, residual False)" in printed
    assert f"{count_params(small.params):,} parameters" in printed
    model, params = load_params(out)
    assert model == small.model
    ref = torch_denoise(small.torch_net, small.x16, 0.05)
    assert rel_err(small.denoise(small.x16, 0.05, params), ref) <= TOL


def _cli_error(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        convert.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_cli_errors_name_the_file_or_key(small: Small, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "out.msgpack")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    assert "garbage.pth: cannot read a PyTorch file" in _cli_error([str(garbage), out], capsys)
    absent = str(tmp_path / "absent.pth")
    assert "absent.pth: cannot read" in _cli_error([absent, out], capsys)

    partial = tmp_path / "partial.pth"
    sd = small.torch_net.state_dict()
    torch.save({k: v for k, v in sd.items() if k != "m_tail.weight"}, partial)
    assert "partial.pth: missing key 'm_tail.weight'" in _cli_error([str(partial), out], capsys)

    good = tmp_path / "good.pth"
    torch.save(sd, good)
    unwritable = str(tmp_path / "no_such_dir" / "out.msgpack")
    assert "out.msgpack: cannot write" in _cli_error([str(good), unwritable], capsys)

    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    assert "pip install torch" in _cli_error([str(good), out], capsys)


def test_compute_dtype_bfloat16_keeps_float32_interfaces_and_stays_close(small: Small):
    apply = lambda p, x, s: small.model.apply({"params": p}, x, s)  # noqa: E731
    assert with_compute_dtype(apply, "float32") is apply
    bf16 = jax.jit(with_compute_dtype(apply, "bfloat16"))
    reference = small.denoise(small.x16, 0.1)
    out = bf16(small.params, small.x16, 0.1)
    assert out.dtype == jnp.float32
    assert out.shape == small.x16.shape
    err = rel_err(out, reference)
    assert 1e-5 < err < 5e-2  # bfloat16 arithmetic: different, but only by its 8-bit mantissa

    def loss(params, dtype):
        out = with_compute_dtype(apply, dtype)(params, small.x16, 0.1)
        return jnp.mean((out - small.x16) ** 2)

    grads = {d: jax.grad(loss)(small.params, d) for d in ("float32", "bfloat16")}
    leaves = {d: jax.tree.leaves(g) for d, g in grads.items()}
    assert all(g.dtype == jnp.float32 for g in leaves["bfloat16"])  # float32 master weights
    flat = {d: np.concatenate([np.ravel(g) for g in v]) for d, v in leaves.items()}
    cosine = flat["float32"] @ flat["bfloat16"]
    cosine /= np.linalg.norm(flat["float32"]) * np.linalg.norm(flat["bfloat16"])
    assert cosine > 0.99
    with pytest.raises(ValueError, match="float16"):
        with_compute_dtype(apply, "float16")


def test_residual_drunet_adds_a_learned_skip_and_round_trips(small: Small, tmp_path):
    model = DRUNet(**SMALL, residual=True)
    params = {**small.params, "skip": jnp.asarray(0.75, jnp.float32)}
    out = np.asarray(jax.jit(model.apply)({"params": params}, small.x, 0.1))
    np.testing.assert_allclose(out, small.denoise(small.x, 0.1) + 0.75 * small.x, atol=1e-5)
    init = model.init(jax.random.key(0), small.x16[:1], 0.1)["params"]
    assert float(init["skip"]) == 1.0
    identity = model.apply({"params": init}, small.x16, 0.1)  # zero tail: starts as x ↦ x
    np.testing.assert_allclose(identity, small.x16, atol=1e-6)
    assert model_from_params(params) == model
    assert model_from_params(small.params).residual is False
    path = tmp_path / "residual.msgpack"
    save_params(path, params)
    loaded_model, loaded = load_params(path)
    assert loaded_model == model
    assert float(loaded["skip"]) == 0.75
    with pytest.raises(ValueError, match="no DPIR/PyTorch counterpart"):
        params_to_torch(params)
    with pytest.raises(ValueError, match=r"'skip': expected shape \(\)"):
        model_from_params({**small.params, "skip": jnp.ones(3)})
