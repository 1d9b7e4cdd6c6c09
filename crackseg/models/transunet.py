"""TransUNet-style hybrid (Chen et al. 2021): U-Net conv stages down to 1/2**depth, pre-norm
Transformer blocks over that map as tokens, then the U-Net decoder with its skips.

The blocks see every position of the coarse map (global context a CNN only reaches through many
layers); the convolutions keep the fine detail of thin cracks. With `transformer_depth=0` the net is
the plain U-Net of the same width and parameter names: the ablation that shows what the blocks buy.
"""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from crackseg.models.layers import Block, run_blocks
from crackseg.models.posembed import sincos_2d
from crackseg.models.unet import UNet


class TransUNet(UNet):
    """U-Net whose bottleneck (B, C, h, w) is refined by Transformer blocks over its h*w positions.

    Tokens: Linear C -> embed_dim plus the 2-D sin-cos table of the actual grid (any input size),
    `transformer_depth` pre-norm `Block`s, LayerNorm, Linear back to C, added to the conv features
    (a residual stage, so gradients also flow around the blocks). Implements the `Encoder`
    contract (`crackseg.models.contracts`): `patch_size` is the bottleneck's stride, there are no
    prefix tokens, and attention maps come from `forward_with_attention` as for a Segmenter.
    """

    num_prefix_tokens = 0  # no class token: every token is a position of the bottleneck map

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 2,
        base_channels: int = 16,
        depth: int = 4,
        n_conv: int = 2,
        residual: bool = False,
        image_size: int | tuple[int, int] = 416,
        transformer_depth: int = 4,
        embed_dim: int = 192,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
    ):
        super().__init__(in_channels=in_channels, num_classes=num_classes,
                         base_channels=base_channels, depth=depth, n_conv=n_conv, padding=1,
                         residual=residual)  # fmt: skip
        if transformer_depth < 0:
            raise ValueError(f"transformer_depth must be >= 0, got {transformer_depth}")
        if embed_dim % 4:
            raise ValueError(
                f"embed_dim must be divisible by 4 (2-D sin-cos table), got {embed_dim}"
            )
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.image_size = (h, w)  # the training size; explain resizes to it
        self.patch_size, self.embed_dim = 2**depth, embed_dim
        self.transformer_depth = transformer_depth
        if transformer_depth == 0:
            return  # the plain U-Net: no token stage, no extra parameters
        width = self.channels[-1]
        rates = [
            drop_path_rate * i / max(transformer_depth - 1, 1) for i in range(transformer_depth)
        ]
        self.proj_in = nn.Linear(width, embed_dim)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, drop_path=r) for r in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.proj_out = nn.Linear(embed_dim, width)
        for m in [self.proj_in, self.proj_out, *self.blocks.modules()]:
            if isinstance(m, nn.Linear):  # ViT's init for the token stage
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    @property
    def has_attention(self) -> bool:
        """Whether there are Transformer blocks whose attention explain can show."""
        return self.transformer_depth > 0

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        """The bottleneck grid (gh, gw) of an input of height x width (a multiple of patch_size)."""
        return height // self.patch_size, width // self.patch_size

    def padding_for(self, height: int, width: int) -> tuple[int, int]:
        """(bottom, right) zero padding to a multiple of 2**depth (the max-pools halve it)."""
        return -height % self.patch_size, -width % self.patch_size

    def _mix(self, x: Tensor, *, return_attention: bool) -> tuple[Tensor, list[Tensor]]:
        """Shapes: bottleneck x (B, C, gh, gw) -> normed tokens (B, gh*gw, D), attention maps."""
        gh, gw = x.shape[-2:]
        tokens = self.proj_in(rearrange(x, "b c gh gw -> b (gh gw) c"))  # (B, N, D)
        tokens = tokens + sincos_2d(gh, gw, self.embed_dim).to(tokens)
        tokens, maps = run_blocks(self.blocks, tokens, return_attention=return_attention)
        return self.norm(tokens), maps

    def forward_features(
        self, images: Tensor, *, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Shapes: images (B, C, H, W), sides a multiple of patch_size -> tokens (B, N, D);
        with `return_attention`, also a list (one per block) of weights (B, nh, N, N)."""
        if not self.has_attention:
            raise ValueError("transformer_depth=0: this hybrid has no tokens (a plain U-Net)")
        tokens, maps = self._mix(self.encode(images)[0], return_attention=return_attention)
        return (tokens, maps) if return_attention else tokens

    def forward(self, images: Tensor) -> Tensor:
        """Shapes: images (B, C, H, W) -> logits (B, K, H, W), any H, W."""
        return self._forward(images)[0]

    def forward_with_attention(self, images: Tensor) -> tuple[Tensor, dict[str, list[Tensor]]]:
        """Logits plus {"encoder": [(B, nh, N, N)] per block} (empty without blocks)."""
        return self._forward(images, return_attention=True)

    def _forward(self, images: Tensor, *, return_attention: bool = False):
        H, W = images.shape[-2:]
        bottom, right = self.padding_for(H, W)
        x, skips = self.encode(F.pad(images, (0, right, 0, bottom)))  # x (B, C, gh, gw)
        maps: list[Tensor] = []
        if self.has_attention:
            tokens, maps = self._mix(x, return_attention=return_attention)
            mixed = rearrange(self.proj_out(tokens), "b (gh gw) c -> b c gh gw", gh=x.shape[-2])
            x = x + mixed
        logits = self.head(self.decode(x, skips))  # (B, K, H', W')
        return logits[..., :H, :W], {"encoder": maps}
