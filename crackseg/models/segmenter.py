"""Segmenter: a ViT encoder and a decoder; pad -> encode -> drop prefix -> decode -> upsample -> unpad."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.models.vit import VisionTransformer


def pad_to_grid(images: Tensor, patch_size: int, stride: int) -> tuple[Tensor, tuple[int, int]]:
    """Zero-pad right and bottom so that patches of `stride` cover the image; returns (padded, (H, W))."""
    H, W = images.shape[-2:]

    def fit(n: int) -> int:
        return patch_size + -(-max(n - patch_size, 0) // stride) * stride

    return F.pad(images, (0, fit(W) - W, 0, fit(H) - H)), (H, W)


class Segmenter(nn.Module):
    """ViT encoder + decoder; maps images (B, C, H, W) to logits (B, K, H, W) at any H, W."""

    def __init__(self, encoder: VisionTransformer, decoder: nn.Module, *, num_classes: int):
        super().__init__()
        self.encoder, self.decoder, self.num_classes = encoder, decoder, num_classes
        self.patch_size = encoder.patch_size

    def forward(self, images: Tensor) -> Tensor:
        """Shapes: images (B, C, H, W) -> logits (B, K, H, W)."""
        return self._forward(images)[0]

    def forward_with_attention(self, images: Tensor) -> tuple[Tensor, dict[str, list[Tensor]]]:
        """Logits plus attention weights: {"encoder": [(B, nh, T, T)] per block, "decoder": [...]}."""
        return self._forward(images, return_attention=True)

    def _forward(self, images: Tensor, *, return_attention: bool = False):
        padded, (H, W) = pad_to_grid(images, self.patch_size, self.encoder.patch_embed.stride)
        grid = self.encoder.patch_embed.grid(*padded.shape[-2:])
        maps: dict[str, list[Tensor]] = {}
        if return_attention:
            tokens, maps["encoder"] = self.encoder.forward_features(padded, return_attention=True)
        else:
            tokens = self.encoder.forward_features(padded)  # (B, T, D)
        tokens = tokens[:, self.encoder.num_prefix_tokens :]  # (B, N, D)
        if return_attention and hasattr(self.decoder, "blocks"):
            logits, maps["decoder"] = self.decoder(tokens, grid, return_attention=True)
        else:
            logits = self.decoder(tokens, grid)  # (B, K, gh, gw)
        logits = F.interpolate(logits, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        return logits[..., :H, :W], maps  # (B, K, H, W)
