"""What a model looks at: class-token attention of each ViT layer and head, attention rollout
(Abnar & Zuidema 2020) and the mask decoder's class-embedding attention; for convolutional
networks, which have no attention, a gradient saliency map (see `crackseg.explain.saliency`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from crackseg.conventions import IMAGENET_MEAN, IMAGENET_STD
from crackseg.errors import CrackSegError
from crackseg.metrics import probs_from_logits
from crackseg.models import Segmenter, VisionTransformer
from crackseg.models.segmenter import pad_to_grid
from crackseg.tensors import normalize

HEAD_FUSIONS = {
    "mean": lambda w: w.mean(dim=-3),
    "max": lambda w: w.amax(dim=-3),
    "min": lambda w: w.amin(dim=-3),
}  # (..., nh, T, T) -> (..., T, T)


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
    threshold: float = 0.5
    notes: list[str] = field(default_factory=list)

    def upsample(self, maps: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """Grid maps (..., gh, gw) -> (..., H, W) on the image (or `size`), bilinear, padding cut."""
        lead = maps.shape[:-2]
        x = rearrange(maps.float(), "... gh gw -> (...) 1 gh gw")
        x = F.interpolate(x, size=self.padded_size, mode="bilinear", align_corners=False)
        x = x[..., : self.input_size[0], : self.input_size[1]]  # drop the right/bottom padding
        x = F.interpolate(x, size=size or self.image_size, mode="bilinear", align_corners=False)
        return x.reshape(*lead, *x.shape[-2:])

    def grid_png(self, image: np.ndarray, *, layers: str = "all", cell: int = 224) -> np.ndarray:
        """The labelled overlay grid (uint8 RGB) of `crackseg.explain.render.explanation_grid`."""
        from crackseg.explain.render import explanation_grid

        return explanation_grid(self, image, layers=layers, cell=cell)


def attention_rollout(
    weights: Sequence[Tensor], *, head_fusion: str = "mean", residual: bool = True
) -> Tensor:
    """Attention rollout: fuse heads, add the identity for the residual path, renormalise rows,
    and multiply through the layers (last layer leftmost). Shapes: L x (..., nh, T, T) -> (..., T, T).

    Abnar & Zuidema average the heads; "max" (Chefer et al.'s common variant) and "min" are offered.
    """
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"head_fusion must be one of {list(HEAD_FUSIONS)}, got {head_fusion!r}")
    if not weights:
        raise ValueError("attention_rollout needs the weights of at least one layer")
    rollout = None
    for w in weights:
        a = HEAD_FUSIONS[head_fusion](w.float())  # (..., T, T)
        if residual:
            a = a + torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
            a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


def _as_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise CrackSegError(
            f"explain expects a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}; "
            "read files with crackseg.data.read_image"
        )
    return image


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def encoder_of(model: nn.Module) -> VisionTransformer | None:
    """The ViT whose attention can be shown, or None (U-Net and other convolutional networks)."""
    model = getattr(model, "module", model)  # unwrap DDP
    if isinstance(model, Segmenter):
        return model.encoder
    return model if isinstance(model, VisionTransformer) else None


def explain(
    model: nn.Module,
    image: np.ndarray,
    *,
    saliency: bool | None = None,
    smoothgrad: int = 0,
    threshold: float | None = None,
) -> Explanation:
    """Explain one uint8 RGB image (H, W, 3). ViT/Segmenter: attention maps (the image is stretched
    to the training size `model.config["image_size"]` first, as in training); other models: a
    gradient saliency map. `saliency=True` also computes saliency for a Segmenter.
    Normalisation and threshold come from `model.config` (a checkpoint's), else ImageNet and 0.5.
    """
    image = _as_image(image)
    model = getattr(model, "module", model)
    cfg = getattr(model, "config", None) or {}
    mean, std = cfg.get("mean") or IMAGENET_MEAN, cfg.get("std") or IMAGENET_STD
    threshold = threshold if threshold is not None else cfg.get("threshold") or 0.5
    name = getattr(model, "preset", {}).get("name", type(model).__name__)
    encoder = encoder_of(model)
    if encoder is None and saliency is False:
        raise CrackSegError(f"{name} has no attention to show; explain it with saliency instead")
    was_training = model.training
    model.eval()
    try:
        if encoder is None:
            from crackseg.explain.saliency import explain_saliency

            return explain_saliency(model, image, name=name, mean=mean, std=std, config=cfg,
                                    threshold=threshold, smoothgrad=smoothgrad)  # fmt: skip
        size = cfg.get("image_size") or encoder.image_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        expl = _attention(model, encoder, image, size=size, mean=mean, std=std, name=name)
        expl.threshold = threshold
        if saliency:
            if expl.probs is None:
                raise CrackSegError(f"{name} has no segmentation head: saliency needs crack logits")
            from crackseg.explain.saliency import gradient_saliency

            x = _to_tensor(image, _device(model))
            expl.saliency, _ = gradient_saliency(model, x, mean=mean, std=std, size=size,
                                                 threshold=threshold, smoothgrad=smoothgrad)  # fmt: skip
        return expl
    finally:
        model.train(was_training)


def _to_tensor(image: np.ndarray, device: torch.device) -> Tensor:
    """uint8 (H, W, 3) -> float (1, 3, H, W) in [0, 1]."""
    return torch.tensor(image, device=device).permute(2, 0, 1)[None].float() / 255


@torch.no_grad()
def _attention(
    model: nn.Module,
    encoder: VisionTransformer,
    image: np.ndarray,
    *,
    size: tuple[int, int],
    mean,
    std,
    name: str,
) -> Explanation:
    x = _to_tensor(image, _device(model))
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    x = normalize(x, mean, std)  # (1, 3, h, w)
    padded, _ = pad_to_grid(x, encoder.patch_size, encoder.patch_embed.stride)
    gh, gw = encoder.patch_embed.grid(*padded.shape[-2:])
    probs, decoder = None, []
    if isinstance(model, Segmenter):
        logits, maps = model.forward_with_attention(x)  # pads internally; (1, K, h, w)
        encoder_maps, decoder = maps["encoder"], maps.get("decoder", [])
        probs = probs_from_logits(logits)[None]  # (1, 1, h, w)
        probs = F.interpolate(probs, size=image.shape[:2], mode="bilinear", align_corners=False)
        probs = probs[0, 0].cpu()
    else:
        _, encoder_maps = encoder.forward_features(padded, return_attention=True)
    p = encoder.num_prefix_tokens
    cls = torch.stack([w[0, :, 0, p:] for w in encoder_maps]).cpu()  # (L, nh, N)
    rollout = attention_rollout([w[0] for w in encoder_maps])[0, p:].cpu()  # (N,)
    class_attention = None
    if decoder:
        n = gh * gw  # class embeddings are the last K tokens, after the N patch tokens
        rows = [w[0].mean(dim=0)[n:, :n] for w in decoder]  # Ld x (K, N)
        class_attention = rearrange(torch.stack(rows).cpu(), "l k (gh gw) -> l k gh gw", gh=gh)
    return Explanation(
        kind="attention",
        model_name=name,
        image_size=tuple(image.shape[:2]),
        input_size=tuple(x.shape[-2:]),
        padded_size=tuple(padded.shape[-2:]),
        cls_attention=rearrange(cls, "l nh (gh gw) -> l nh gh gw", gh=gh),
        rollout=rearrange(rollout, "(gh gw) -> gh gw", gh=gh),
        class_attention=class_attention,
        probs=probs,
    )
