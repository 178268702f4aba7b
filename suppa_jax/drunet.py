"""DRUNet (DPIR's ``UNetRes``) in Flax Linen, and its PyTorch weight layout.

Network (Zhang et al., "Plug-and-Play Image Restoration with Deep Denoiser Prior", 2021),
with widths ``c = (c0, c1, c2, c3)`` and ``nb`` residual blocks per stage. Every convolution
has no bias; ``R(h) = h + conv3(relu(conv3(h)))`` is a residual block::

    x1 = head(concat(x, sigma))          conv3×3, channels+1 → c0
    x2 = down1(x1)                        nb × R at c0, then 2×2 stride-2 conv c0 → c1
    x3 = down2(x2)                        nb × R at c1, then 2×2 stride-2 conv c1 → c2
    x4 = down3(x3)                        nb × R at c2, then 2×2 stride-2 conv c2 → c3
    h  = body(x4)                         nb × R at c3
    h  = up3(h + x4)                      2×2 stride-2 transposed conv c3 → c2, then nb × R
    h  = up2(h + x3)                      ... c2 → c1, then nb × R
    h  = up1(h + x2)                      ... c1 → c0, then nb × R
    out = tail(h + x1)                    conv3×3, c0 → channels (no global residual)

Conventions: images are NHWC float32 in [0, 1] (any number of leading batch dims); ``sigma``
is the noise standard deviation on the same [0, 1] scale (25/255, not 25). The 3×3 convs pad
with one row/column of zeros on each side (PyTorch ``padding=1``). H and W need not be
multiples of 8: the input (image and noise-level channel) is padded at the bottom/right by
replicating the last row/column up to the next multiple of 8, and the output is cropped back.

The 2×2 stride-2 layers do not overlap, so they are written exactly as a reshape and a
matmul: with ``k`` the HWIO kernel,

- down: ``y[h, w, o] = Σ_{a,b,i} x[2h+a, 2w+b, i] · k[a, b, i, o]`` (space-to-depth, matmul),
  the same cross-correlation as ``torch.nn.Conv2d(kernel_size=2, stride=2)``;
- up: ``y[2h+a, 2w+b, o] = Σ_i x[h, w, i] · k[a, b, i, o]`` (matmul, depth-to-space), the same
  as ``torch.nn.ConvTranspose2d(kernel_size=2, stride=2)``. Note that ``flax.linen.ConvTranspose``
  (``transpose_kernel=False``) would use the spatially flipped kernel ``k[1-a, 1-b]``.

Parameter names and their counterparts in DPIR's state dict (``drunet_color.pth``), for
``l = 1..3`` and block ``i = 0..nb-1``:

=====================================  ========================================  ===========
Flax path (``params`` collection)      PyTorch key                               transform
=====================================  ========================================  ===========
``head/kernel``                        ``m_head.weight``                         OIHW → HWIO
``down{l}/res_{i}/conv_{0,1}/kernel``  ``m_down{l}.{i}.res.{0,2}.weight``        OIHW → HWIO
``down{l}/down/kernel``                ``m_down{l}.{nb}.weight``                 OIHW → HWIO
``body/res_{i}/conv_{0,1}/kernel``     ``m_body.{i}.res.{0,2}.weight``           OIHW → HWIO
``up{l}/up/kernel``                    ``m_up{l}.0.weight``                      IOHW → HWIO
``up{l}/res_{i}/conv_{0,1}/kernel``    ``m_up{l}.{i+1}.res.{0,2}.weight``        OIHW → HWIO
``tail/kernel``                        ``m_tail.weight``                         OIHW → HWIO
=====================================  ========================================  ===========

(PyTorch stores transposed-conv weights as (in, out, kh, kw).) ``DRUNet()`` is the paper size:
widths (64, 128, 256, 512), 4 blocks, 32,640,960 parameters.

Typical use::

    model, params = load_params("drunet_color.msgpack")
    denoise = jax.tree_util.Partial(model.apply, {"params": params})
    x_hat = denoise(x_noisy, 25 / 255)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from flax.core import unfreeze

if TYPE_CHECKING:
    from suppa_jax.methods import DenoiserApply

Params = dict[str, Any]

FORMAT_TAG = "suppa_jax.drunet.v1"
"""Format tag written by :func:`save_params` and required by :func:`load_params`."""

_MULTIPLE = 8  # three stride-2 stages
_Init = Callable[..., jax.Array]


def _conv3x3(
    features: int, name: str, kernel_init: _Init = nn.linear.default_kernel_init
) -> nn.Conv:
    """3×3 conv, stride 1, one pixel of zero padding on each side, no bias."""
    return nn.Conv(
        features,
        (3, 3),
        padding=((1, 1), (1, 1)),
        use_bias=False,
        kernel_init=kernel_init,
        name=name,
    )


def space_to_depth(x: jax.Array) -> jax.Array:
    """``(..., 2H, 2W, C) → (..., H, W, 4C)``; channel index ``(2a + b)·C + c`` holds
    ``x[..., 2h+a, 2w+b, c]``."""
    *lead, H, W, C = x.shape
    x = x.reshape(*lead, H // 2, 2, W // 2, 2, C)
    x = jnp.swapaxes(x, -4, -3)
    return x.reshape(*lead, H // 2, W // 2, 4 * C)


def depth_to_space(x: jax.Array) -> jax.Array:
    """Inverse of :func:`space_to_depth`: ``(..., H, W, 4C) → (..., 2H, 2W, C)``."""
    *lead, H, W, C4 = x.shape
    x = x.reshape(*lead, H, W, 2, 2, C4 // 4)
    x = jnp.swapaxes(x, -4, -3)
    return x.reshape(*lead, 2 * H, 2 * W, C4 // 4)


class Down2x2(nn.Module):
    """2×2 stride-2 conv without bias: ``y[h, w] = Σ_{a,b} x[2h+a, 2w+b] @ kernel[a, b]``.

    Input H and W must be even. ``kernel`` is HWIO, ``(2, 2, in, features)``.
    """

    features: int
    kernel_init: _Init = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (2, 2, x.shape[-1], self.features)
        kernel = self.param("kernel", self.kernel_init, shape)
        return space_to_depth(x) @ kernel.reshape(-1, self.features)


class Up2x2(nn.Module):
    """2×2 stride-2 transposed conv without bias: ``y[2h+a, 2w+b] = x[h, w] @ kernel[a, b]``.

    ``kernel`` is HWIO, ``(2, 2, in, features)``; each output pixel sees ``in`` inputs, which is
    the fan-in of the default (LeCun normal) initialiser.
    """

    features: int
    kernel_init: _Init = nn.initializers.lecun_normal(batch_axis=(0, 1))

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (2, 2, x.shape[-1], self.features))
        kernel = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(x.shape[-1], -1)
        return depth_to_space(x @ kernel)


class ResBlock(nn.Module):
    """``x + conv_1(relu(conv_0(x)))`` with 3×3 convs at constant width."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = _conv3x3(x.shape[-1], "conv_0")(x)
        return x + _conv3x3(x.shape[-1], "conv_1")(nn.relu(h))


def _res_blocks(x: jax.Array, num_blocks: int) -> jax.Array:
    """``num_blocks`` residual blocks ``res_0 .. res_{nb-1}`` of the calling module."""
    for i in range(num_blocks):
        x = ResBlock(name=f"res_{i}")(x)
    return x


class DownStage(nn.Module):
    """``num_blocks`` residual blocks, then a 2×2 stride-2 conv to ``features`` channels."""

    features: int
    num_blocks: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return Down2x2(self.features, name="down")(_res_blocks(x, self.num_blocks))


class Body(nn.Module):
    """``num_blocks`` residual blocks."""

    num_blocks: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _res_blocks(x, self.num_blocks)


class UpStage(nn.Module):
    """A 2×2 stride-2 transposed conv to ``features`` channels, then ``num_blocks`` blocks."""

    features: int
    num_blocks: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _res_blocks(Up2x2(self.features, name="up")(x), self.num_blocks)


def noise_level_map(x: jax.Array, sigma: jax.Array | float) -> jax.Array:
    """Broadcast ``sigma`` to a ``x.shape[:-1] + (1,)`` map.

    ``sigma`` is a scalar, a per-image array broadcastable to ``x.shape[:-3]``, or a map with
    ``x.ndim`` dims broadcastable to ``x.shape[:-1] + (1,)``.
    """
    sigma = jnp.asarray(sigma, x.dtype)
    if sigma.ndim != x.ndim:
        sigma = jnp.broadcast_to(sigma, x.shape[:-3])[..., None, None, None]
    return jnp.broadcast_to(sigma, (*x.shape[:-1], 1))


def pad_to_multiple(x: jax.Array, multiple: int) -> jax.Array:
    """Replicate-pad axes -3, -2 (H, W) at the bottom/right up to a multiple of ``multiple``."""
    pad = [(0, 0)] * x.ndim
    pad[-3] = (0, -x.shape[-3] % multiple)
    pad[-2] = (0, -x.shape[-2] % multiple)
    return jnp.pad(x, pad, mode="edge")


class DRUNet(nn.Module):
    """DPIR's DRUNet denoiser (``UNetRes``); see the module docstring for the exact network.

    Attributes:
      widths: channels ``(c0, c1, c2, c3)`` at the four scales.
      num_blocks: residual blocks per stage.
      channels: image channels (the network input has one more: the noise level).
      residual: add a global skip ``out = U(x, σ) + γ·x`` with a learned scalar ``γ``
        (parameter ``skip``, initialised to 1, with the tail conv initialised to zero so that
        an untrained network is the identity). DPIR's DRUNet has none (``False``, the
        default, and the only layout with a PyTorch counterpart). The small CPU denoiser uses
        it: without it, a small network trained briefly returns even a clean image at only
        29–32 dB, which caps plug-and-play far below bicubic upsampling.
    """

    widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    num_blocks: int = 4
    channels: int = 3
    residual: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, sigma: jax.Array | float) -> jax.Array:
        """Denoise ``x`` of shape ``(..., H, W, channels)`` at noise level ``sigma``.

        ``sigma``: scalar, per-image array of shape ``x.shape[:-3]``, or a map of shape
        ``x.shape[:-1] + (1,)``. Returns an array of the shape of ``x``.
        """
        if x.ndim < 3 or x.shape[-1] != self.channels:
            raise ValueError(
                f"DRUNet expects (..., H, W, {self.channels}) images, got shape {x.shape}"
            )
        if len(self.widths) != 4:
            raise ValueError(f"DRUNet needs 4 widths, got {self.widths}")
        *lead, H, W, _ = x.shape
        h = jnp.concatenate([x, noise_level_map(x, sigma)], axis=-1)
        h = pad_to_multiple(h.reshape(-1, H, W, self.channels + 1), _MULTIPLE)
        out = self._network(h)[:, :H, :W]
        if self.residual:
            skip = self.param("skip", nn.initializers.ones, (), jnp.float32)
            out = out + skip * x.reshape(out.shape)
        return out.reshape(*lead, H, W, self.channels)

    def _network(self, x: jax.Array) -> jax.Array:
        """The U-Net on NHWC input with ``channels + 1`` channels, H and W multiples of 8."""
        c, nb = self.widths, self.num_blocks
        x1 = _conv3x3(c[0], "head")(x)
        x2 = DownStage(c[1], nb, name="down1")(x1)
        x3 = DownStage(c[2], nb, name="down2")(x2)
        x4 = DownStage(c[3], nb, name="down3")(x3)
        h = Body(nb, name="body")(x4)
        h = UpStage(c[2], nb, name="up3")(h + x4)
        h = UpStage(c[1], nb, name="up2")(h + x3)
        h = UpStage(c[0], nb, name="up1")(h + x2)
        # Residual: the tail starts at zero, so an untrained network is the skip alone, x ↦ x.
        tail_init = nn.initializers.zeros if self.residual else nn.linear.default_kernel_init
        return _conv3x3(self.channels, "tail", tail_init)(h + x1)


COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def with_compute_dtype(apply: DenoiserApply, dtype: str) -> DenoiserApply:
    """``apply`` computing in ``dtype`` (a key of :data:`COMPUTE_DTYPES`): mixed precision.

    The weights, the image and ``sigma`` are cast to ``dtype`` on entry and the output back to
    the input's dtype, so the parameters, their gradients (through the cast), the optimiser
    state and everything outside the network (the FFT data step, the losses) stay float32.
    ``"float32"`` returns ``apply`` itself.
    """
    if dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute dtype must be one of {list(COMPUTE_DTYPES)}, got {dtype!r}")
    if dtype == "float32":
        return apply
    compute = COMPUTE_DTYPES[dtype]

    def cast(tree: Any) -> Any:
        return jax.tree.map(lambda leaf: jnp.asarray(leaf).astype(compute), tree)

    def apply_in_dtype(params: Params, x: jax.Array, sigma: Any) -> jax.Array:
        return apply(cast(params), cast(x), cast(sigma)).astype(x.dtype)

    return apply_in_dtype


# --- PyTorch state-dict layout ------------------------------------------------------------


class _Entry(NamedTuple):
    """One weight: PyTorch key, Flax path, PyTorch shape, whether it is a transposed conv."""

    torch_key: str
    path: tuple[str, ...]
    torch_shape: tuple[int, ...]
    transposed: bool


def _res_entries(torch_stage: str, stage: str, first: int, width: int, nb: int) -> list[_Entry]:
    """The ``nb`` residual blocks of a stage; PyTorch numbers them from ``first``."""
    return [
        _Entry(
            f"{torch_stage}.{first + i}.res.{2 * j}.weight",
            (stage, f"res_{i}", f"conv_{j}", "kernel"),
            (width, width, 3, 3),
            False,
        )
        for i in range(nb)
        for j in (0, 1)
    ]


def _layout(model: DRUNet) -> list[_Entry]:
    """All weights of ``model``, in the order of DPIR's state dict."""
    c, nb = model.widths, model.num_blocks
    entries = [_Entry("m_head.weight", ("head", "kernel"), (c[0], model.channels + 1, 3, 3), False)]
    for lvl in (1, 2, 3):
        entries += _res_entries(f"m_down{lvl}", f"down{lvl}", 0, c[lvl - 1], nb)
        entries.append(
            _Entry(
                f"m_down{lvl}.{nb}.weight",
                (f"down{lvl}", "down", "kernel"),
                (c[lvl], c[lvl - 1], 2, 2),
                False,
            )
        )
    entries += _res_entries("m_body", "body", 0, c[3], nb)
    for lvl in (3, 2, 1):
        entries.append(
            _Entry(
                f"m_up{lvl}.0.weight",
                (f"up{lvl}", "up", "kernel"),
                (c[lvl], c[lvl - 1], 2, 2),
                True,
            )
        )
        entries += _res_entries(f"m_up{lvl}", f"up{lvl}", 1, c[lvl - 1], nb)
    entries.append(_Entry("m_tail.weight", ("tail", "kernel"), (model.channels, c[0], 3, 3), False))
    return entries


def _flax_shape(entry: _Entry) -> tuple[int, ...]:
    """HWIO shape of an entry: (kh, kw, in, out)."""
    o, i, kh, kw = entry.torch_shape
    return (kh, kw, o, i) if entry.transposed else (kh, kw, i, o)


def _to_flax(weight: np.ndarray, transposed: bool) -> np.ndarray:
    """OIHW (conv) or IOHW (transposed conv) → HWIO."""
    return np.transpose(weight, (2, 3, 0, 1) if transposed else (2, 3, 1, 0))


def _to_torch(kernel: np.ndarray, transposed: bool) -> np.ndarray:
    """HWIO → OIHW (conv) or IOHW (transposed conv); inverse of :func:`_to_flax`."""
    return np.transpose(kernel, (2, 3, 0, 1) if transposed else (3, 2, 0, 1))


def _as_numpy(value: Any) -> np.ndarray:
    """A NumPy array from a NumPy array, a JAX array or a (CPU or GPU) torch tensor."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _shape_of(shapes: Mapping[str, tuple[int, ...]], key: str, ndim: int) -> tuple[int, ...]:
    """``shapes[key]``, which must exist and have ``ndim`` dims, else a ValueError."""
    if key not in shapes:
        raise ValueError(f"missing key {key!r}")
    if len(shapes[key]) != ndim:
        raise ValueError(f"{key!r}: expected a {ndim}-D tensor, found shape {shapes[key]}")
    return shapes[key]


def _infer_from_torch(shapes: Mapping[str, tuple[int, ...]]) -> DRUNet:
    """Architecture of a state dict: widths from the head and the stride-2 convs, channels
    from the tail, ``num_blocks`` from the number of residual blocks in ``m_body``."""
    nb = sum(bool(re.fullmatch(r"m_body\.\d+\.res\.0\.weight", key)) for key in shapes)
    c0 = _shape_of(shapes, "m_head.weight", 4)[0]
    rest = [_shape_of(shapes, f"m_down{lvl}.{nb}.weight", 4)[0] for lvl in (1, 2, 3)]
    channels = _shape_of(shapes, "m_tail.weight", 4)[0]
    return DRUNet(widths=(c0, *rest), num_blocks=nb, channels=channels)


def _summarise(keys: list[str], limit: int = 5) -> str:
    """``'a', 'b', ... (and n more)``."""
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def _check_keys(
    found: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]]
) -> None:
    """ValueError naming any missing key, unexpected key, or key of the wrong shape."""
    missing = [k for k in expected if k not in found]
    if missing:
        raise ValueError(f"missing key(s) {_summarise(missing)}")
    unexpected = [k for k in found if k not in expected]
    if unexpected:
        raise ValueError(f"unexpected key(s) {_summarise(unexpected)}")
    for key, shape in expected.items():
        if tuple(found[key]) != tuple(shape):
            raise ValueError(f"{key!r}: expected shape {tuple(shape)}, found {tuple(found[key])}")


def params_from_torch(state_dict: Mapping[str, Any], model: DRUNet | None = None) -> Params:
    """Convert a DPIR-layout PyTorch state dict into this module's ``params`` collection.

    Args:
      state_dict: names → NumPy arrays or torch tensors, keys as in ``drunet_color.pth``.
      model: the architecture to expect; inferred from the state dict when ``None``.

    Returns:
      The ``params`` collection as a nested dict of float32 ``jax.Array`` (apply it with
      ``model.apply({"params": params}, x, sigma)``).

    Raises:
      ValueError: naming a missing key, an unexpected key, or a tensor of the wrong shape.
    """
    arrays = {key: _as_numpy(value) for key, value in state_dict.items()}
    shapes = {key: a.shape for key, a in arrays.items()}
    layout = _layout(model or _infer_from_torch(shapes))
    _check_keys(shapes, {e.torch_key: e.torch_shape for e in layout})
    params: Params = {}
    for e in layout:
        node = params
        for name in e.path[:-1]:
            node = node.setdefault(name, {})
        node[e.path[-1]] = jnp.asarray(_to_flax(arrays[e.torch_key], e.transposed), jnp.float32)
    return params


def _flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple]:
    """``(path, leaf)`` pairs of a nested mapping."""
    for name, value in tree.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, (*prefix, name))
        else:
            yield (*prefix, name), value


def _leaf_shape(params: Mapping[str, Any], path: tuple[str, ...]) -> tuple[int, ...]:
    """Shape of the leaf at ``path``, or a ValueError naming the missing path."""
    node: Any = params
    for name in path:
        if not isinstance(node, Mapping) or name not in node:
            raise ValueError(f"missing parameter {'/'.join(path)!r}")
        node = node[name]
    return tuple(np.shape(node))


def _unwrap(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept ``{"params": params}`` (a Flax variables dict) as well as the collection."""
    return params["params"] if set(params) == {"params"} else params


def model_from_params(params: Mapping[str, Any]) -> DRUNet:
    """The :class:`DRUNet` whose parameters ``params`` are (a ``params`` collection or a
    ``{"params": ...}`` variables dict). Leaves may be arrays or ``jax.ShapeDtypeStruct``.

    Raises:
      ValueError: naming a missing, unexpected or mis-shaped parameter.
    """
    params = _unwrap(params)
    head = _leaf_shape(params, ("head", "kernel"))
    downs = [_leaf_shape(params, (f"down{lvl}", "down", "kernel")) for lvl in (1, 2, 3)]
    if len(head) != 4 or any(len(d) != 4 for d in downs):
        raise ValueError(f"head/down kernels must be 4-D (HWIO), got {head} and {downs}")
    body = params.get("body", {})
    nb = sum(bool(re.fullmatch(r"res_\d+", name)) for name in body)
    residual = "skip" in params
    model = DRUNet(
        widths=(head[3], *(d[3] for d in downs)),
        num_blocks=nb,
        channels=head[2] - 1,
        residual=residual,
    )
    found = {"/".join(path): np.shape(leaf) for path, leaf in _flatten(params)}
    expected = {"/".join(e.path): _flax_shape(e) for e in _layout(model)}
    _check_keys(found, expected | ({"skip": ()} if residual else {}))
    return model


def params_to_torch(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Exact inverse of :func:`params_from_torch`: a DPIR-layout state dict of NumPy arrays
    (wrap them with ``torch.from_numpy`` for ``load_state_dict``)."""
    params = _unwrap(params)
    model = model_from_params(params)
    if model.residual:
        raise ValueError("a residual DRUNet (parameter 'skip') has no DPIR/PyTorch counterpart")
    out = {}
    for e in _layout(model):
        node: Any = params
        for name in e.path:
            node = node[name]
        out[e.torch_key] = _to_torch(np.asarray(node), e.transposed)
    return out


def describe(model: DRUNet) -> str:
    """``"widths (16, 32, 64, 64), 1 blocks, residual"``: the architecture, for messages."""
    residual = ", residual" if model.residual else ""
    return f"widths {model.widths}, {model.num_blocks} blocks{residual}"


def count_params(params: Mapping[str, Any]) -> int:
    """Total number of scalars in a parameter tree."""
    return sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree.leaves(params))


# --- Self-describing files ------------------------------------------------------------------


def save_params(path: str | os.PathLike, params: Mapping[str, Any]) -> None:
    """Write ``params`` to one msgpack file with its architecture and :data:`FORMAT_TAG`:
    ``{"format", "architecture": {"widths", "num_blocks", "channels", "residual"}, "params"}``.
    """
    params = _unwrap(params)
    model = model_from_params(params)
    payload = {
        "format": FORMAT_TAG,
        "architecture": {
            "widths": list(model.widths),
            "num_blocks": model.num_blocks,
            "channels": model.channels,
            "residual": model.residual,
        },
        "params": jax.tree.map(np.asarray, unfreeze(params)),
    }
    with open(path, "wb") as f:
        f.write(serialization.msgpack_serialize(payload))


def _architecture(arch: Any) -> DRUNet:
    """A DRUNet from a stored architecture record, or a ValueError saying what is wrong."""

    def positive_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    required = {"widths", "num_blocks", "channels"}
    if not isinstance(arch, Mapping) or not required <= set(arch) <= required | {"residual"}:
        raise ValueError(
            f"architecture must have widths, num_blocks, channels (and residual); got {arch!r}"
        )
    if not isinstance(arch.get("residual", False), bool):
        raise ValueError(f"architecture residual must be a bool, got {arch['residual']!r}")
    widths = arch["widths"]
    if not (
        isinstance(widths, list | tuple) and len(widths) == 4 and all(map(positive_int, widths))
    ):
        raise ValueError(f"architecture widths must be 4 positive ints, got {widths!r}")
    for field in ("num_blocks", "channels"):
        if not positive_int(arch[field]):
            raise ValueError(f"architecture {field} must be a positive int, got {arch[field]!r}")
    return DRUNet(
        widths=tuple(widths),
        num_blocks=arch["num_blocks"],
        channels=arch["channels"],
        residual=arch.get("residual", False),
    )


def load_params(path: str | os.PathLike) -> tuple[DRUNet, Params]:
    """Read a file written by :func:`save_params`: returns ``(model, params)``.

    Raises:
      ValueError: naming ``path`` when it is not a msgpack file, lacks the format tag, has a
        malformed architecture, or holds parameters that do not match that architecture.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        payload = serialization.msgpack_restore(data)
    except Exception as err:  # msgpack raises several unrelated types on corrupt input
        raise ValueError(f"{path}: not a msgpack file ({type(err).__name__}: {err})") from err
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT_TAG:
        raise ValueError(f"{path}: not a DRUNet params file (no format tag {FORMAT_TAG!r})")
    try:
        model = _architecture(payload.get("architecture"))
        params = payload.get("params")
        if not isinstance(params, Mapping):
            raise ValueError("no params tree")
        if model_from_params(params) != model:
            raise ValueError(f"params do not match the stored architecture {model}")
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    return model, jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), dict(params))
