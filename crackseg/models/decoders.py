"""Segmenter decoders (Strudel et al. 2021): patch tokens + patch grid -> per-patch class logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from crackseg.models.layers import Block, run_blocks
from crackseg.models.unet import CNNBlock


class LinearDecoder(nn.Module):
    """A single Linear from each patch token to K class logits."""

    has_attention = False  # `Decoder` contract: no attention maps to show

    def __init__(self, *, embed_dim: int, num_classes: int):
        super().__init__()
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        """Shapes: tokens (B, N, D) -> logits (B, K, gh, gw)."""
        return rearrange(self.head(tokens), "b (gh gw) k -> b k gh gw", gh=grid[0], gw=grid[1])


class ClassScale(nn.Module):
    """Per-class scale and bias of cosine similarities: the mask transformer's last step for K = 2.

    LayerNorm over two values outputs +-1 whatever they are (a step with no gradient away from a
    tie), so a 2-class head behind it cannot learn: on crack-seg every pixel of every image came out
    at crack probability 0.126 after one epoch. The cosine of random D-dim vectors has std D**-0.5,
    so the scale starts at D**0.5: unit-variance logits, as LayerNorm gives over many classes.
    Parameters named and shaped as nn.LayerNorm(K)'s (weight, bias)."""

    def __init__(self, num_classes: int, *, init_scale: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((num_classes,), float(init_scale)))
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight + self.bias  # (..., K)


class MaskTransformer(nn.Module):
    """K learned class embeddings processed jointly with the patch tokens by Transformer blocks;
    logits = L2-normalised patch features x L2-normalised class features, then LayerNorm over K
    (Strudel et al.) for K > 2, or a learned per-class scale for K = 2 (`ClassScale`).

    The class embeddings start at unit scale (`class_init_std` 1.0; the official code uses 0.02).
    At 0.02 their residual stream is swamped by the attention average over the N patch tokens,
    the same for every class: with 1024 patch-8 tokens the K class features start at cosine 0.998
    to each other, LayerNorm over 150 classes can amplify that, a 2-class head cannot, and the
    convstem8 Segmenter stayed at one crack probability for every pixel (0.04) for 418 steps.
    At 1.0 they start near-orthogonal, and the same recipe reached val crack IoU 0.499 after its
    first epoch (0.000 before)."""

    has_attention = True  # `Decoder` contract: forward(..., return_attention=True) gives maps

    def __init__(
        self,
        *,
        embed_dim: int,
        num_classes: int,
        depth: int = 2,
        num_heads: int | None = None,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.1,
        drop_path_rate: float = 0.0,
        class_init_std: float = 1.0,
    ):
        super().__init__()
        if num_classes < 2:
            raise ValueError(
                f"the mask-transformer decoder needs num_classes >= 2, got {num_classes}: its final "
                "LayerNorm over the class axis would output a constant for one class. Use 2 classes "
                "(background, crack) or the linear decoder."
            )
        self.num_classes = num_classes
        num_heads = num_heads or max(1, embed_dim // 64)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.proj_dec = nn.Linear(embed_dim, embed_dim)
        self.cls_emb = nn.Parameter(torch.randn(1, num_classes, embed_dim) * class_init_std)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, drop=drop_rate, drop_path=r)
            for r in rates
        )
        self.proj_patch = nn.Parameter(embed_dim**-0.5 * torch.randn(embed_dim, embed_dim))
        self.proj_classes = nn.Parameter(embed_dim**-0.5 * torch.randn(embed_dim, embed_dim))
        self.decoder_norm = nn.LayerNorm(embed_dim)
        self.mask_norm = (
            nn.LayerNorm(num_classes)
            if num_classes > 2
            else ClassScale(num_classes, init_scale=embed_dim**0.5)
        )

    def forward(
        self, tokens: Tensor, grid: tuple[int, int], *, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Shapes: tokens (B, N, D) -> logits (B, K, gh, gw); with `return_attention`, also a list
        (one per block) of weights (B, nh, N + K, N + K), class embeddings last."""
        x = self.proj_dec(tokens)
        x = torch.cat(
            [x, repeat(self.cls_emb, "1 k d -> b k d", b=x.shape[0])], dim=1
        )  # (B, N+K, D)
        x, maps = run_blocks(self.blocks, x, return_attention=return_attention)
        x = self.decoder_norm(x)
        patches, classes = x[:, : -self.num_classes], x[:, -self.num_classes :]
        patches = F.normalize(patches @ self.proj_patch, dim=-1)  # (B, N, D)
        classes = F.normalize(classes @ self.proj_classes, dim=-1)  # (B, K, D)
        logits = self.mask_norm(patches @ classes.transpose(1, 2))  # (B, N, K)
        logits = rearrange(logits, "b (gh gw) k -> b k gh gw", gh=grid[0], gw=grid[1])
        return (logits, maps) if return_attention else logits


class SkipDecoder(nn.Module):
    """Progressive x2 upsampling with the conv stem's maps as skips (U-Net style), instead of one
    bilinear x8/x16 jump: thin cracks get their position back from the full-resolution stem map.

    Tokens -> (B, D, gh, gw); per skip, coarsest first: bilinear x2, concat the skip, conv3x3-BN-ReLU
    to the skip's width; a 1x1 head at the finest skip's resolution (full resolution for a
    `ConvStem`). Needs an encoder with `skip_channels` (a ViT with `stem="conv"`).
    """

    has_attention = False  # `Decoder` contract: no attention maps to show
    needs_skips = True  # the Segmenter passes the encoder's stem maps as `skips=`

    def __init__(self, *, embed_dim: int, num_classes: int, skip_channels: tuple[int, ...]):
        super().__init__()
        if not skip_channels:
            raise ValueError(
                "the skip decoder needs an encoder with stem maps (a ViT, stem='conv')"
            )
        widths = [embed_dim, *reversed(skip_channels)]  # e.g. 192, 64, 32, 16
        self.stages = nn.ModuleList(CNNBlock(a + b, b) for a, b in zip(widths, widths[1:]))
        self.head = nn.Conv2d(widths[-1], num_classes, 1)

    def forward(self, tokens: Tensor, grid: tuple[int, int], *, skips: list[Tensor]) -> Tensor:
        """Shapes: tokens (B, N, D), skips [(B, C_i, H/2**i, W/2**i)] finest first ->
        logits (B, K, H, W) at the finest skip's size."""
        x = rearrange(tokens, "b (gh gw) d -> b d gh gw", gh=grid[0], gw=grid[1])
        for stage, skip in zip(self.stages, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], dim=1))  # (B, C_i, H/2**i, W/2**i)
        return self.head(x)
