"""Scaled dot-product attention and multi-head self-attention, as in the lecture.

`attention` is the formula softmax(q k^T / sqrt(d_k)) v; `MultiHeadAttention` splits a fused qkv
projection into heads with einops. Attention weights (the "attention filter") are computed only when asked.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def attention(
    q: Tensor, k: Tensor, v: Tensor, *, return_weights: bool = False, dropout_p: float = 0.0
) -> Tensor | tuple[Tensor, Tensor]:
    """softmax(q k^T / sqrt(d_k)) v for tensors shaped (..., T, d_k).

    Without weights this calls the fused `F.scaled_dot_product_attention`; with `return_weights=True`
    it runs the explicit formula and returns `(out, weights)`, weights shaped (..., Tq, Tk).
    """
    if not return_weights:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    weights = scores.softmax(dim=-1)
    out = F.dropout(weights, p=dropout_p) @ v  # (..., Tq, d_k)
    return out, weights


class MultiHeadAttention(nn.Module):
    """Self-attention with a fused qkv Linear (with bias), nh heads and an output projection.

    Sub-module names (`qkv`, `proj`) follow timm so pretrained ViT weights load without renaming.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self, x: Tensor, *, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Shapes: x (B, T, D) -> (B, T, D); with `return_attention`, also weights (B, nh, T, T)."""
        qkv = rearrange(
            self.qkv(x), "b t (three nh hd) -> three b nh t hd", three=3, nh=self.num_heads
        )
        q, k, v = qkv.unbind(0)  # each (B, nh, T, hd)
        p = self.attn_drop if self.training else 0.0
        out = attention(q, k, v, return_weights=return_attention, dropout_p=p)
        out, weights = out if return_attention else (out, None)
        x = self.proj_drop(self.proj(rearrange(out, "b nh t hd -> b t (nh hd)")))
        return (x, weights) if return_attention else x
