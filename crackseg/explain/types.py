"""`Explanation`: the maps computed for one image (a leaf: only torch and einops).

Both producers (`core` for attention, `saliency` for gradients) fill it; `render` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from crackseg.conventions import DEFAULT_THRESHOLD


@dataclass
class Explanation:
    """Maps of one image. Attention maps live on the (padded) patch grid (gh, gw) and are raw
    softmax weights; `upsample` puts any of them onto image pixels (cropping the padding).

    kind: "attention" (ViT, Segmenter) or "saliency" (models without attention, e.g. U-Net).
    cls_attention: (L, nh, gh, gw) attention of the class token to the patch tokens, per layer/head.
    rollout: (gh, gw) class-token row of the attention rollout over all encoder layers.
    class_attention: (Ld, K, gh, gw) mask decoder only: attention of each class embedding to the
        patch tokens, averaged over heads, per decoder block (`[-1]` is the last block).
    saliency: (H, W) gradient saliency, >= 0 (U-Net, or on request for a Segmenter).
    probs: (H, W) crack probability of the same forward pass (None for a plain ViT).
    """

    kind: str
    model_name: str
    image_size: tuple[int, int]  # (H, W) of the original image
    input_size: tuple[int, int] = (0, 0)  # (h, w) the image was resized to for the model
    padded_size: tuple[int, int] = (0, 0)  # (hp, wp) after padding to the patch grid
    cls_attention: Tensor | None = None
    rollout: Tensor | None = None
    class_attention: Tensor | None = None
    saliency: Tensor | None = None
    probs: Tensor | None = None
    threshold: float = DEFAULT_THRESHOLD
    notes: list[str] = field(default_factory=list)

    def upsample(self, maps: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """Grid maps (..., gh, gw) -> (..., H, W) on the image (or `size`), bilinear, padding cut."""
        lead = maps.shape[:-2]
        x = rearrange(maps.float(), "... gh gw -> (...) 1 gh gw")
        x = F.interpolate(x, size=self.padded_size, mode="bilinear", align_corners=False)
        x = x[..., : self.input_size[0], : self.input_size[1]]  # drop the right/bottom padding
        x = F.interpolate(x, size=size or self.image_size, mode="bilinear", align_corners=False)
        return x.reshape(*lead, *x.shape[-2:])
