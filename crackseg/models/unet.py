"""U-Net (Ronneberger et al. 2015): conv-BN-ReLU stages, max-pool down, up-conv up, skip concat.

`padding=1` keeps sizes (any H, W: padded internally to a multiple of 2**depth, unpadded at the end).
`padding=0` is the paper's valid-convolution network: each 3x3 conv trims 2 px, the output is smaller
than the input and skips are centre-cropped; see `valid_sizes` for which inputs work (572 -> 388).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CNNBlock(nn.Sequential):
    """Conv3x3 (no bias: BatchNorm follows) -> BatchNorm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, padding: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=padding, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class CNNBlocks(nn.Sequential):
    """`n_conv` CNNBlocks in a row; the first changes the channel count."""

    def __init__(self, in_channels: int, out_channels: int, *, n_conv: int = 2, padding: int = 1):
        chans = [in_channels] + [out_channels] * n_conv
        super().__init__(*(CNNBlock(a, b, padding=padding) for a, b in zip(chans, chans[1:])))


def center_crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop the centre (h, w) of a (B, C, H, W) map: the paper's copy-and-crop."""
    top, left = (x.shape[-2] - size[0]) // 2, (x.shape[-1] - size[1]) // 2
    return x[..., top : top + size[0], left : left + size[1]]


class Up(nn.Module):
    """ConvTranspose 2x2 (stride 2) halving channels, concat the (cropped) skip, then CNNBlocks."""

    def __init__(self, in_channels: int, out_channels: int, *, n_conv: int, padding: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.convs = CNNBlocks(2 * out_channels, out_channels, n_conv=n_conv, padding=padding)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)  # (B, C/2, 2h, 2w)
        return self.convs(torch.cat([center_crop(skip, x.shape[-2:]), x], dim=1))


class UNet(nn.Module):
    """Encoder of `depth` down-stages from `base_channels` (doubling), bottleneck, mirrored decoder."""

    has_attention = False  # convolutions only: explain shows gradient saliency instead

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 2,
        base_channels: int = 64,
        depth: int = 4,
        n_conv: int = 2,
        padding: int = 1,
    ):
        super().__init__()
        if padding not in (0, 1):
            raise ValueError(f"padding must be 0 (valid, the paper) or 1 (same), got {padding}")
        self.depth, self.n_conv, self.padding, self.num_classes = (
            depth,
            n_conv,
            padding,
            num_classes,
        )
        chans = [base_channels * 2**i for i in range(depth + 1)]  # e.g. 64 ... 1024
        self.down = nn.ModuleList(
            CNNBlocks(a, b, n_conv=n_conv, padding=padding)
            for a, b in zip([in_channels] + chans[:-1], chans)
        )
        self.up = nn.ModuleList(
            Up(a, b, n_conv=n_conv, padding=padding) for a, b in zip(chans[::-1], chans[-2::-1])
        )
        self.head = nn.Conv2d(chans[0], num_classes, 1)

    def forward(self, images: Tensor) -> Tensor:
        """Shapes: images (B, C, H, W) -> logits (B, K, H, W) with padding=1, or
        (B, K, H', W') with H' = valid_output_size(H) when padding=0."""
        H, W = images.shape[-2:]
        if self.padding == 1:
            m = 2**self.depth
            images = F.pad(images, (0, -W % m, 0, -H % m))
        else:
            for side in (H, W):
                if valid_output_size(side, self.depth, self.n_conv) is None:
                    raise ValueError(
                        f"input side {side} is not valid for this padding=0 U-Net; nearest valid "
                        f"sizes: {nearest_valid_sizes(side, self.depth, self.n_conv)}"
                    )
        skips = []
        x = images
        for i, stage in enumerate(self.down):
            x = stage(x)
            if i < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, skip in zip(self.up, reversed(skips)):
            x = up(x, skip)
        logits = self.head(x)
        return logits[..., :H, :W] if self.padding == 1 else logits


def valid_output_size(size: int, depth: int = 4, n_conv: int = 2) -> int | None:
    """Output side of the padding=0 U-Net for an input side, or None when a max-pool would see an
    odd side (or a side shrinks to nothing). Each stage trims 2*n_conv px."""
    trim = 2 * n_conv
    for _ in range(depth):
        size -= trim
        if size <= 0 or size % 2:
            return None
        size //= 2
    size -= trim  # bottleneck
    if size <= 0:
        return None
    for _ in range(depth):
        size = size * 2 - trim
    return size if size > 0 else None


def valid_sizes(limit: int = 1024, depth: int = 4, n_conv: int = 2) -> list[tuple[int, int]]:
    """All (input, output) side pairs up to `limit` for the padding=0 U-Net, e.g. (572, 388)."""
    pairs = ((s, valid_output_size(s, depth, n_conv)) for s in range(1, limit + 1))
    return [(s, o) for s, o in pairs if o is not None]


def nearest_valid_sizes(size: int, depth: int = 4, n_conv: int = 2) -> list[int]:
    """The valid input sides just below and above `size`."""
    sides = [s for s, _ in valid_sizes(max(2 * size, 256), depth, n_conv)]
    below = [s for s in sides if s < size][-1:]
    above = [s for s in sides if s > size][:1]
    return below + above
