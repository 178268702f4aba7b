"""A PyTorch DRUNet (DPIR's ``UNetRes`` layout), the reference for parity tests and benchmarks.

Written from the specification in DESIGN.md §4; its ``state_dict()`` keys are those of
``drunet_color.pth`` (``m_head.weight``, ``m_down1.0.res.0.weight``, ..., ``m_down1.{nb}.weight``,
``m_body.*``, ``m_up3.0.weight``, ``m_up3.1.res.0.weight``, ..., ``m_tail.weight``).

Same conventions as :class:`suppa_jax.drunet.DRUNet`, but in PyTorch's NCHW layout: ``forward``
takes ``x`` of shape (N, C, H, W) and ``sigma`` as a number, a per-image (N,) tensor or an
(N, 1, H, W) map; it pads to a multiple of 8 by replicating the bottom/right border and crops
the output back.
"""

from __future__ import annotations

import torch
from torch import nn


class ResBlock(nn.Module):
    """``x + conv3(relu(conv3(x)))``, no biases."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.res = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res(x)


def _blocks(width: int, num_blocks: int) -> list[nn.Module]:
    return [ResBlock(width) for _ in range(num_blocks)]


class TorchDRUNet(nn.Module):
    """DRUNet with widths ``(c0, c1, c2, c3)``, ``num_blocks`` blocks per stage."""

    def __init__(
        self,
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
        num_blocks: int = 4,
        channels: int = 3,
    ) -> None:
        super().__init__()
        c0, c1, c2, c3 = widths
        nb = num_blocks
        self.m_head = nn.Conv2d(channels + 1, c0, 3, padding=1, bias=False)
        self.m_down1 = nn.Sequential(*_blocks(c0, nb), nn.Conv2d(c0, c1, 2, 2, bias=False))
        self.m_down2 = nn.Sequential(*_blocks(c1, nb), nn.Conv2d(c1, c2, 2, 2, bias=False))
        self.m_down3 = nn.Sequential(*_blocks(c2, nb), nn.Conv2d(c2, c3, 2, 2, bias=False))
        self.m_body = nn.Sequential(*_blocks(c3, nb))
        self.m_up3 = nn.Sequential(nn.ConvTranspose2d(c3, c2, 2, 2, bias=False), *_blocks(c2, nb))
        self.m_up2 = nn.Sequential(nn.ConvTranspose2d(c2, c1, 2, 2, bias=False), *_blocks(c1, nb))
        self.m_up1 = nn.Sequential(nn.ConvTranspose2d(c1, c0, 2, 2, bias=False), *_blocks(c0, nb))
        self.m_tail = nn.Conv2d(c0, channels, 3, padding=1, bias=False)

    def network(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net on (N, channels + 1, H, W) input, H and W multiples of 8."""
        x1 = self.m_head(x)
        x2 = self.m_down1(x1)
        x3 = self.m_down2(x2)
        x4 = self.m_down3(x3)
        h = self.m_body(x4)
        h = self.m_up3(h + x4)
        h = self.m_up2(h + x3)
        h = self.m_up1(h + x2)
        return self.m_tail(h + x1)

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.ndim != 4:
            sigma = sigma.expand(n).reshape(n, 1, 1, 1)
        noise_map = sigma.expand(n, 1, height, width)
        h = torch.cat([x, noise_map], dim=1)
        h = nn.functional.pad(h, (0, -width % 8, 0, -height % 8), mode="replicate")
        return self.network(h)[..., :height, :width]
