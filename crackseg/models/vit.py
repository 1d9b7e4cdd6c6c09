"""Vision Transformer (Dosovitskiy et al. 2021): patch embedding, class token, positions, blocks."""

from __future__ import annotations

import torch
from einops import repeat
from torch import Tensor, nn

from crackseg.models.conv_stem import ConvStem
from crackseg.models.layers import Block, run_blocks
from crackseg.models.patch_embed import PatchEmbed
from crackseg.models.posembed import resample_pos_embed, sincos_1d, sincos_2d

POS_EMBED_KINDS = ("learned", "sincos", "sincos1d")
STEMS = ("patch", "conv")


class VisionTransformer(nn.Module):
    """ViT with timm's sub-module names, so timm `vision_transformer` weights load directly.

    Any image size whose sides fit the patch grid works: the positional table is resampled
    (learned) or recomputed (sinusoidal) for the grid at hand. Implements the `Encoder` contract
    (`crackseg.models.contracts`): `token_grid`, `padding_for`, `patch_size`, `embed_dim`,
    `num_prefix_tokens`, `has_attention`.

    `stem="conv"` replaces the linear patch embedding by a `ConvStem` (overlapping 3x3 convs down
    to 1/patch_size, then a Linear); its maps are the `skip_channels` a `SkipDecoder` uses.
    """

    num_prefix_tokens = 1  # the class token
    has_attention = True  # forward_features(..., return_attention=True) gives the maps

    def __init__(
        self,
        *,
        image_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        stride: int | None = None,
        in_channels: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        num_classes: int = 0,
        pos_embed: str = "learned",
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        norm_eps: float = 1e-6,
        stem: str = "patch",
        stem_channels: int = 16,
    ):
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        if stem == "conv" and stride not in (None, patch_size):
            raise ValueError(f"a conv stem has stride = patch_size ({patch_size}), got {stride}")
        if pos_embed not in POS_EMBED_KINDS:
            raise ValueError(f"pos_embed must be one of {POS_EMBED_KINDS}, got {pos_embed!r}")
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.image_size = (h, w)
        self.patch_size, self.embed_dim, self.num_classes = patch_size, embed_dim, num_classes
        self.pos_embed_kind = pos_embed
        if stem == "conv":
            self.patch_embed = ConvStem(patch_size=patch_size, in_channels=in_channels,
                                        embed_dim=embed_dim, stem_channels=stem_channels)  # fmt: skip
        else:
            self.patch_embed = PatchEmbed(patch_size=patch_size, stride=stride,
                                          in_channels=in_channels, embed_dim=embed_dim)  # fmt: skip
        self.grid_size = self.patch_embed.grid(h, w)
        num_tokens = self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        if pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, embed_dim))
        else:
            self.register_buffer("pos_embed", self._sincos(self.grid_size), persistent=False)
        self.pos_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(
            0, drop_path_rate, depth
        ).tolist()  # stochastic depth grows with depth
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                  drop=drop_rate, attn_drop=attn_drop_rate, drop_path=r, norm_eps=norm_eps)
            for r in rates
        )  # fmt: skip
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights()

    def init_weights(self) -> None:
        if self.pos_embed_kind == "learned":
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _sincos(self, grid: tuple[int, int]) -> Tensor:
        """(1, 1 + N, D) fixed table; the class token's row is position 0 (1-D) or zeros (2-D)."""
        n, d = grid[0] * grid[1], self.embed_dim
        if self.pos_embed_kind == "sincos1d":
            return sincos_1d(1 + n, d)[None]
        return torch.cat([torch.zeros(1, d), sincos_2d(*grid, d)])[None]

    @property
    def skip_channels(self) -> tuple[int, ...]:
        """Channels of the stem maps `forward_features(..., return_skips=True)` returns, finest
        first; empty for the linear patch stem."""
        return getattr(self.patch_embed, "skip_channels", ())

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        """The patch grid (gh, gw) of an input of height x width."""
        return self.patch_embed.grid(height, width)

    def padding_for(self, height: int, width: int) -> tuple[int, int]:
        """(bottom, right) zero padding so that patches of the embedding's stride cover the input."""
        P, stride = self.patch_size, self.patch_embed.stride

        def fit(n: int) -> int:  # P + ceil((n - P) / stride) * stride, with no negative floor
            return P + (max(n - P, 0) + stride - 1) // stride * stride  # division: ONNX truncates

        return fit(height) - height, fit(width) - width

    def pos_embed_for(self, grid: tuple[int, int]) -> Tensor:
        """The (1, 1 + gh*gw, D) positional table for a patch grid."""
        if tuple(grid) == tuple(self.grid_size):
            return self.pos_embed
        if self.pos_embed_kind == "learned":
            return resample_pos_embed(self.pos_embed, grid, self.grid_size)
        return self._sincos(grid).to(self.pos_embed)

    def forward_features(
        self, images: Tensor, *, return_attention: bool = False, return_skips: bool = False
    ) -> Tensor | tuple:
        """Shapes: images (B, C, H, W) -> normed tokens (B, 1 + N, D), class token first.

        With `return_attention`, also a list (one per block) of weights (B, nh, T, T); with
        `return_skips`, also the conv stem's maps [(B, C_i, H/2**i, W/2**i)]. Extras follow the
        tokens in that order: (tokens, maps), (tokens, skips) or (tokens, maps, skips).
        """
        grid = self.token_grid(*images.shape[-2:])
        if return_skips:
            if not self.skip_channels:
                raise ValueError("this ViT's linear patch stem has no skip maps; use stem='conv'")
            x, skips = self.patch_embed.forward_with_skips(images)  # (B, N, D), maps
        else:
            x = self.patch_embed(images)  # (B, N, D)
        cls = repeat(self.cls_token, "1 1 d -> b 1 d", b=x.shape[0])
        x = self.pos_drop(torch.cat([cls, x], dim=1) + self.pos_embed_for(grid))  # (B, T, D)
        x, maps = run_blocks(self.blocks, x, return_attention=return_attention)
        x = self.norm(x)
        extras = ([maps] if return_attention else []) + ([skips] if return_skips else [])
        return (x, *extras) if extras else x

    def forward_head(self, tokens: Tensor) -> Tensor:
        """Shapes: tokens (B, T, D) -> class logits (B, num_classes) from the class token."""
        return self.head(tokens[:, 0])

    def forward(self, images: Tensor) -> Tensor:
        tokens = self.forward_features(images)
        return self.forward_head(tokens) if self.num_classes > 0 else tokens
