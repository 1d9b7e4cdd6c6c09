"""What a Segmenter (and explain) may ask of its parts, instead of reaching into their internals.

An encoder turns images into tokens on a patch grid; a decoder turns the patch tokens back into
per-patch logits. The ViT implements `Encoder`; so does the hybrid `TransUNet` (a U-Net encoder
down to 1/16, Transformer blocks over the 1/16 map, a U-Net decoder), so both are padded and
explained the same way.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Encoder(Protocol):
    """Images (B, C, H, W) -> tokens (B, num_prefix_tokens + gh*gw, embed_dim).

    patch_size: side of the input area one token stands for (the output stride).
    embed_dim: token width D.
    num_prefix_tokens: tokens before the patch tokens (e.g. 1 class token) that callers strip.
    has_attention: whether `forward_features(..., return_attention=True)` returns attention maps
        (B, nh, T, T) per block, so explain can show them.
    """

    patch_size: int
    embed_dim: int
    num_prefix_tokens: int
    has_attention: bool

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        """The patch grid (gh, gw) for an input of height x width (already padded)."""
        ...

    def padding_for(self, height: int, width: int) -> tuple[int, int]:
        """(bottom, right) zero padding an input of height x width needs to fit the grid."""
        ...

    def forward_features(self, images: Tensor, *, return_attention: bool = False):
        """Tokens (B, T, D), or (tokens, [attention (B, nh, T, T) per block]) on request."""
        ...


@runtime_checkable
class Decoder(Protocol):
    """Patch tokens (B, N, D) + grid (gh, gw) -> logits (B, K, gh, gw).

    has_attention: whether `forward(tokens, grid, return_attention=True)` also returns attention
        maps per block (the mask transformer does; a linear decoder has none).

    Optional: a decoder with `needs_skips = True` (`SkipDecoder`) also takes `skips=`, the
    encoder's stem maps (`forward_features(..., return_skips=True)`, an encoder with
    `skip_channels`), and returns logits at the finest skip's resolution instead of the grid's.
    """

    has_attention: bool

    def __call__(self, tokens: Tensor, grid: tuple[int, int], **kwargs): ...
