"""Convolutional patch stem (Xiao et al. 2021, "Early convolutions help transformers see better").

Instead of cutting the image into disjoint P x P patches, a few 3x3 conv-BN-ReLU layers (stride 2
each) shrink it to 1/P: every token then stands for an overlapping window, so a 1-3 px crack
that straddles a patch border is still seen whole. The intermediate maps are kept as skips for a
decoder that upsamples step by step (`SkipDecoder`).
"""

from __future__ import annotations

import math

from einops import rearrange
from torch import Tensor, nn

from crackseg.models.unet import CNNBlock


class ConvStem(nn.Module):
    """(B, C, H, W) -> tokens (B, H/P * W/P, D); H, W must be multiples of P = patch_size.

    A stride-1 conv-BN-ReLU at full resolution (`stem_channels`), then log2(P) stride-2 ones that
    double the channels, then a Linear per position to D (`proj`: the linear patch projection of
    the 1/P map). Same members as `PatchEmbed` (`patch_size`, `stride`, `grid`), plus
    `skip_channels`: the channels of the maps at strides 1, 2, ..., P/2 that
    `forward_with_skips` returns.
    """

    def __init__(
        self, *, patch_size: int = 8, in_channels: int = 3, embed_dim: int = 192,
        stem_channels: int = 16,
    ):  # fmt: skip
        super().__init__()
        if patch_size < 2 or patch_size & (patch_size - 1):
            raise ValueError(f"a conv stem needs a power-of-two patch_size >= 2, got {patch_size}")
        self.patch_size = self.stride = patch_size
        n_down = int(math.log2(patch_size))
        chans = [stem_channels * 2**i for i in range(n_down + 1)]  # e.g. 16, 32, 64, 128
        self.skip_channels = tuple(chans[:-1])
        self.stages = nn.ModuleList([CNNBlock(in_channels, chans[0])])
        self.stages.extend(CNNBlock(a, b, stride=2) for a, b in zip(chans, chans[1:]))
        self.proj = nn.Linear(chans[-1], embed_dim)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        return height // self.patch_size, width // self.patch_size

    def forward_with_skips(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Shapes: images (B, C, H, W) -> tokens (B, N, D) and skips [(B, C_i, H/2**i, W/2**i)]
        for i = 0 .. log2(P) - 1, finest first."""
        P, H, W = self.patch_size, images.shape[-2], images.shape[-1]
        if H % P or W % P:
            raise ValueError(f"image {H}x{W} is not a multiple of patch_size={P}; pad it first")
        skips, x = [], images
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        tokens = self.proj(rearrange(skips.pop(), "b c gh gw -> b (gh gw) c"))  # (B, N, D)
        return tokens, skips

    def forward(self, images: Tensor) -> Tensor:
        """Shapes: images (B, C, H, W) -> tokens (B, N, D)."""
        return self.forward_with_skips(images)[0]
