"""Segmenter: an encoder (the `Encoder` contract; a ViT here) and a decoder; pad -> encode ->
drop prefix -> decode -> upsample -> unpad."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.models.contracts import Decoder, Encoder


def pad_to_grid(images: Tensor, encoder: Encoder) -> tuple[Tensor, tuple[int, int]]:
    """Zero-pad right and bottom as the encoder asks (`padding_for`); returns (padded, (H, W))."""
    H, W = images.shape[-2:]
    bottom, right = encoder.padding_for(H, W)
    return F.pad(images, (0, right, 0, bottom)), (H, W)


class Segmenter(nn.Module):
    """Encoder + decoder; maps images (B, C, H, W) to logits (B, K, H, W) at any H, W.

    Uses only the `Encoder` / `Decoder` contracts (`crackseg.models.contracts`), so any encoder
    that implements them composes the same way.
    """

    def __init__(self, encoder: Encoder, decoder: Decoder, *, num_classes: int):
        super().__init__()
        self.encoder, self.decoder, self.num_classes = encoder, decoder, num_classes
        self.patch_size = encoder.patch_size

    @property
    def has_attention(self) -> bool:
        """Whether `forward_with_attention` has encoder attention maps to return."""
        return self.encoder.has_attention

    def forward(self, images: Tensor) -> Tensor:
        """Shapes: images (B, C, H, W) -> logits (B, K, H, W)."""
        return self._forward(images)[0]

    def forward_with_attention(self, images: Tensor) -> tuple[Tensor, dict[str, list[Tensor]]]:
        """Logits plus attention weights: {"encoder": [(B, nh, T, T)] per block, "decoder": [...]}."""
        return self._forward(images, return_attention=True)

    def _forward(self, images: Tensor, *, return_attention: bool = False):
        padded, (H, W) = pad_to_grid(images, self.encoder)
        grid = self.encoder.token_grid(*padded.shape[-2:])
        maps: dict[str, list[Tensor]] = {}
        skip_kw = {}
        if getattr(self.decoder, "needs_skips", False):
            tokens, *extras, skip_kw["skips"] = self.encoder.forward_features(
                padded, return_attention=return_attention, return_skips=True
            )
        elif return_attention:
            tokens, *extras = self.encoder.forward_features(padded, return_attention=True)
        else:
            tokens, extras = self.encoder.forward_features(padded), []  # (B, T, D)
        if return_attention:
            maps["encoder"] = extras[0]
        tokens = tokens[:, self.encoder.num_prefix_tokens :]  # (B, N, D)
        if return_attention and self.decoder.has_attention:
            logits, maps["decoder"] = self.decoder(tokens, grid, return_attention=True, **skip_kw)
        else:
            logits = self.decoder(tokens, grid, **skip_kw)  # (B, K, gh, gw) or finer
        if logits.shape[-2:] != padded.shape[-2:]:
            logits = F.interpolate(logits, size=padded.shape[-2:], mode="bilinear",
                                   align_corners=False)  # fmt: skip
        return logits[..., :H, :W], maps  # (B, K, H, W)
