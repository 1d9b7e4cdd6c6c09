"""Linear patch embedding: each P x P x C patch flattened and projected to D, no activation."""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def grid_size(height: int, width: int, patch_size: int, stride: int) -> tuple[int, int]:
    """Patch grid (gh, gw) for an image of height x width; patches that do not fit are not formed."""
    return (height - patch_size) // stride + 1, (width - patch_size) // stride + 1


class PatchEmbed(nn.Module):
    """(B, C, H, W) images -> (B, N, D) patch tokens through a single Linear (`proj`).

    With `stride == patch_size` (the default) patches tile the image and are cut with einops;
    a smaller stride gives overlapping patches, cut with `F.unfold`. Both flatten a patch in
    (c p1 p2) order, which is also a Conv2d weight's order, so timm's conv weights load by reshaping.
    """

    def __init__(self, *, patch_size: int = 16, stride: int | None = None, in_channels: int = 3,
                 embed_dim: int = 768):  # fmt: skip
        super().__init__()
        self.patch_size = patch_size
        self.stride = stride or patch_size
        if not 0 < self.stride <= patch_size:
            raise ValueError(f"stride must be in [1, patch_size={patch_size}], got {stride}")
        self.proj = nn.Linear(in_channels * patch_size**2, embed_dim)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        return grid_size(height, width, self.patch_size, self.stride)

    def forward(self, images: Tensor) -> Tensor:
        """Shapes: images (B, C, H, W) -> tokens (B, gh*gw, D); H, W must be covered by the grid."""
        P, H, W = self.patch_size, images.shape[-2], images.shape[-1]
        if H < P or W < P:
            raise ValueError(f"image {H}x{W} is smaller than one patch ({P}x{P})")
        if self.stride == P:
            if H % P or W % P:
                raise ValueError(f"image {H}x{W} is not a multiple of patch_size={P}; pad it first")
            patches = rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (c p1 p2)", p1=P, p2=P)
        else:
            patches = rearrange(F.unfold(images, P, stride=self.stride), "b cpp n -> b n cpp")
        return self.proj(patches)  # (B, N, D)
