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
    """Conv3x3 (no bias: BatchNorm follows) -> BatchNorm -> ReLU; `stride=2` halves the size."""

    def __init__(self, in_channels: int, out_channels: int, *, padding: int = 1, stride: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class CNNBlocks(nn.Sequential):
    """`n_conv` CNNBlocks in a row; the first changes the channel count."""

    def __init__(self, in_channels: int, out_channels: int, *, n_conv: int = 2, padding: int = 1):
        chans = [in_channels] + [out_channels] * n_conv
        super().__init__(*(CNNBlock(a, b, padding=padding) for a, b in zip(chans, chans[1:])))


class ResidualCNNBlocks(nn.Module):
    """`n_conv` conv3x3-BN stages (ReLU between them) plus a shortcut, then ReLU (He et al. 2016):
    the shortcut is the identity, or a 1x1 conv-BN where the channel count changes."""

    def __init__(self, in_channels: int, out_channels: int, *, n_conv: int = 2):
        super().__init__()
        chans = [in_channels] + [out_channels] * n_conv
        blocks = [CNNBlock(a, b) for a, b in zip(chans[:-2], chans[1:-1])]
        last = nn.Sequential(nn.Conv2d(chans[-2], out_channels, 3, padding=1, bias=False),
                             nn.BatchNorm2d(out_channels))  # fmt: skip
        self.convs = nn.Sequential(*blocks, last)
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
            )  # fmt: skip
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Shapes: x (B, C, H, W) -> (B, out_channels, H, W)."""
        return self.act(self.convs(x) + self.shortcut(x))


def conv_stage(
    in_channels: int, out_channels: int, *, n_conv: int, padding: int, residual: bool = False
) -> nn.Module:
    """The U-Net's conv stage: plain `CNNBlocks`, or `ResidualCNNBlocks` (same-size convs only)."""
    if residual:
        if padding != 1:
            raise ValueError("residual conv stages need padding=1 (the shortcut keeps the size)")
        return ResidualCNNBlocks(in_channels, out_channels, n_conv=n_conv)
    return CNNBlocks(in_channels, out_channels, n_conv=n_conv, padding=padding)


def center_crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop the centre (h, w) of a (B, C, H, W) map: the paper's copy-and-crop."""
    top, left = (x.shape[-2] - size[0]) // 2, (x.shape[-1] - size[1]) // 2
    return x[..., top : top + size[0], left : left + size[1]]


class Up(nn.Module):
    """ConvTranspose 2x2 (stride 2) halving channels, concat the (cropped) skip, then CNNBlocks."""

    def __init__(
        self, in_channels: int, out_channels: int, *, n_conv: int, padding: int, residual: bool
    ):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.convs = conv_stage(2 * out_channels, out_channels, n_conv=n_conv, padding=padding,
                                residual=residual)  # fmt: skip

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = self.up(x)  # (B, C/2, 2h, 2w)
        return self.convs(torch.cat([center_crop(skip, x.shape[-2:]), x], dim=1))


class UNet(nn.Module):
    """Encoder of `depth` down-stages from `base_channels` (doubling), bottleneck, mirrored decoder.

    `residual=True` gives every conv stage a shortcut (`ResidualCNNBlocks`); the default keeps the
    plain stages and their parameter names, so older checkpoints load.
    """

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
        residual: bool = False,
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
        self.channels = chans
        self.down = nn.ModuleList(
            conv_stage(a, b, n_conv=n_conv, padding=padding, residual=residual)
            for a, b in zip([in_channels] + chans[:-1], chans)
        )
        self.up = nn.ModuleList(
            Up(a, b, n_conv=n_conv, padding=padding, residual=residual)
            for a, b in zip(chans[::-1], chans[-2::-1])
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
        x, skips = self.encode(images)
        x = self.decode(x, skips)
        logits = self.head(x)
        return logits[..., :H, :W] if self.padding == 1 else logits

    def encode(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Shapes: images (B, C, H, W) -> bottleneck (B, C_depth, H/2**depth, W/2**depth) and the
        skips [(B, C_i, H/2**i, W/2**i)], finest first (sizes shrink further with padding=0)."""
        skips = []
        x = images
        for i, stage in enumerate(self.down):
            x = stage(x)
            if i < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        return x, skips

    def decode(self, x: Tensor, skips: list[Tensor]) -> Tensor:
        """Shapes: bottleneck + skips (as `encode` gives them) -> features (B, base_channels, H, W)."""
        for up, skip in zip(self.up, reversed(skips)):
            x = up(x, skip)
        return x


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
