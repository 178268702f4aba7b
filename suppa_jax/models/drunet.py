"""DRUNet (DPIR's ``UNetRes``) in Flax Linen.

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

``DRUNet()`` is the paper size: widths (64, 128, 256, 512), 4 blocks, 32,640,960 parameters.
Weight files and DPIR's PyTorch layout: :mod:`suppa_jax.models.weights`. Typical use::

    model, params = weights.load_params("drunet_color.msgpack")
    denoise = jax.tree_util.Partial(model.apply, {"params": params})
    x_hat = denoise(x_noisy, 25 / 255)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from suppa_jax.models import registry

__all__ = [
    "SPEC",
    "DRUNet",
    "depth_to_space",
    "noise_level_map",
    "pad_to_multiple",
    "space_to_depth",
]

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


def _check(values: Mapping[str, Any]) -> None:
    """The values of DRUNet's fields (:func:`suppa_jax.models.registry.build` checks
    ``channels``)."""
    widths = values["widths"]
    if not (
        isinstance(widths, tuple) and len(widths) == 4 and all(map(registry.positive_int, widths))
    ):
        raise ValueError(f"widths must be 4 positive channel counts, got {widths!r}")
    if not registry.positive_int(values["num_blocks"]):
        raise ValueError(f"num_blocks must be >= 1, got {values['num_blocks']!r}")
    if not isinstance(values["residual"], bool):
        raise ValueError(f"residual must be a bool, got {values['residual']!r}")


SPEC = registry.register(
    registry.ModelSpec(
        "drunet",
        DRUNet,
        ("widths", "num_blocks", "channels", "residual"),
        _check,
        "DPIR's DRUNet: a 4-scale residual U-Net with a noise-level input channel",
    )
)
