"""Positional encodings: 1-D and 2-D sinusoidal tables, and resampling a learned grid to a new size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor


def sincos_1d(num_positions: int, dim: int, *, base: float = 10000.0) -> Tensor:
    """PE(pos, 2i) = sin(pos / base^(2i/D)), PE(pos, 2i+1) = cos(pos / base^(2i/D)); shape (T, D)."""
    if dim % 2:
        raise ValueError(f"sinusoidal encoding needs an even dim, got {dim}")
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (T, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)  # (D/2,)
    angles = pos / base ** (two_i / dim)  # (T, D/2)
    pe = torch.empty(num_positions, dim, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = angles.sin(), angles.cos()
    return pe.float()


def sincos_2d(gh: int, gw: int, dim: int, *, base: float = 10000.0) -> Tensor:
    """2-D table (gh*gw, D): the first D/2 channels encode the row, the last D/2 the column."""
    if dim % 4:
        raise ValueError(f"2-D sinusoidal encoding needs dim divisible by 4, got {dim}")
    rows = sincos_1d(gh, dim // 2, base=base)  # (gh, D/2)
    cols = sincos_1d(gw, dim // 2, base=base)  # (gw, D/2)
    grid = torch.cat(
        [rows[:, None, :].expand(gh, gw, -1), cols[None, :, :].expand(gh, gw, -1)], dim=-1
    )  # (gh, gw, D)
    return rearrange(grid, "gh gw d -> (gh gw) d")


def resample_pos_embed(
    pos_embed: Tensor,
    new_grid: tuple[int, int],
    old_grid: tuple[int, int],
    *,
    num_prefix_tokens: int = 1,
    antialias: bool = True,
) -> Tensor:
    """Bicubic resampling of a learned (1, prefix + gh*gw, D) table to a new patch grid.

    Prefix tokens (the class token) are kept apart and re-joined unchanged; interpolation runs in
    float32 (as timm's `resample_abs_pos_embed`) and the result has the input's dtype.
    """
    if tuple(new_grid) == tuple(old_grid):
        return pos_embed
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    gh, gw = old_grid
    if grid.shape[1] != gh * gw:
        raise ValueError(f"pos_embed has {grid.shape[1]} grid tokens, expected {gh}x{gw}={gh * gw}")
    grid = rearrange(grid.float(), "1 (gh gw) d -> 1 d gh gw", gh=gh, gw=gw)
    grid = F.interpolate(grid, size=tuple(new_grid), mode="bicubic", antialias=antialias)
    grid = rearrange(grid, "1 d gh gw -> 1 (gh gw) d").to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=1)
