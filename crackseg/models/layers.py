"""Transformer building blocks: MLP, stochastic depth and the pre-norm block of the lecture."""

from __future__ import annotations

from torch import Tensor, nn

from crackseg.models.attention import MultiHeadAttention


class Mlp(nn.Module):
    """Linear -> exact GELU -> dropout -> Linear -> dropout (timm names `fc1`, `fc2`)."""

    def __init__(self, dim: int, hidden_dim: int, *, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()  # exact (erf) GELU, as in ViT
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability `p` (training only)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Block(nn.Module):
    """Pre-norm Transformer block: x = x + attn(norm1(x)); x = x + mlp(norm2(x))."""

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = MultiHeadAttention(
            dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop
        )
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.drop_path = DropPath(drop_path)

    def forward(
        self, x: Tensor, *, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Shapes: x (B, T, D) -> (B, T, D); with `return_attention`, also weights (B, nh, T, T)."""
        if return_attention:
            y, weights = self.attn(self.norm1(x), return_attention=True)
            x = x + self.drop_path(y)
            return x + self.drop_path(self.mlp(self.norm2(x))), weights
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def run_blocks(
    blocks: nn.ModuleList, x: Tensor, *, return_attention: bool = False
) -> tuple[Tensor, list[Tensor]]:
    """Apply blocks in turn; with `return_attention`, collect each block's (B, nh, T, T) weights."""
    maps = []
    for block in blocks:
        if return_attention:
            x, weights = block(x, return_attention=True)
            maps.append(weights)
        else:
            x = block(x)
    return x, maps
