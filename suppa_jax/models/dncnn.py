"""A noise-level-conditioned DnCNN in Flax Linen: the second architecture of the registry.

After Zhang, Zuo, Chen, Meng, Zhang, "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN
for Image Denoising" (2017): a plain stack of ``depth`` 3×3 convolutions at ``features``
channels with ReLUs, predicting the noise, which is subtracted from the input::

    h_1 = relu(conv(concat(x, σ)))            channels + 1 → features
    h_k = relu(conv(h_{k−1}))                 k = 2 .. depth − 1
    D(x, σ) = x − conv(h_{depth−1})           features → channels

Two changes make it a plug-and-play prior: the noise level enters as an extra constant input
channel (as in FFDNet and DRUNet), so that one network denoises at every ``σ``; and there is no
batch normalisation, so that the denoiser is a pure function of ``(params, x, σ)`` with no
batch statistics (the last convolution starts at zero, so an untrained network is the identity).
It has no stride and no padding constraint: any ``H × W``; the convolutions pad with zeros.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from suppa_jax.models import registry
from suppa_jax.models.drunet import noise_level_map

__all__ = ["SPEC", "DnCNN"]


class DnCNN(nn.Module):
    """DnCNN with a noise-level input; see the module docstring for the exact network.

    Attributes:
      features: channels of the hidden layers (64 in the paper).
      depth: number of convolutions, at least 2 (17 in the paper).
      channels: image channels (1: grayscale, 3: RGB).
    """

    features: int = 64
    depth: int = 17
    channels: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, sigma: jax.Array | float) -> jax.Array:
        """Denoise ``x`` ``(..., H, W, channels)`` at ``sigma`` (a scalar, one per image of
        shape ``x.shape[:-3]``, or a map ``x.shape[:-1] + (1,)``)."""
        if x.ndim < 3 or x.shape[-1] != self.channels:
            raise ValueError(
                f"DnCNN expects (..., H, W, {self.channels}) images, got shape {x.shape}"
            )
        *lead, H, W, _ = x.shape
        h = jnp.concatenate([x, noise_level_map(x, sigma)], axis=-1)
        h = h.reshape(-1, H, W, self.channels + 1)
        for k in range(self.depth - 1):
            h = nn.relu(nn.Conv(self.features, (3, 3), padding="SAME", name=f"conv_{k}")(h))
        noise = nn.Conv(
            self.channels,
            (3, 3),
            padding="SAME",
            kernel_init=nn.initializers.zeros,
            name=f"conv_{self.depth - 1}",
        )(h)
        return x - noise.reshape(*lead, H, W, self.channels)


def _check(values: Mapping[str, Any]) -> None:
    if not registry.positive_int(values["features"]):
        raise ValueError(f"features must be >= 1, got {values['features']!r}")
    depth = values["depth"]
    if not (registry.positive_int(depth) and depth >= 2):
        raise ValueError(f"depth must be >= 2 (convolutions), got {depth!r}")


SPEC = registry.register(
    registry.ModelSpec(
        "dncnn",
        DnCNN,
        ("features", "depth", "channels"),
        _check,
        "DnCNN with a noise-level input channel and no batch norm: a plain conv stack",
    )
)
