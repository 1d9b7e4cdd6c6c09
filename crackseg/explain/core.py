"""What a model looks at: class-token attention of each ViT layer and head, attention rollout
(Abnar & Zuidema 2020) and the mask decoder's class-embedding attention; for convolutional
networks, which have no attention, a gradient saliency map (see `crackseg.explain.saliency`).

Imports point one way: core -> saliency -> types; render only needs types; files uses core + render.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from crackseg.conventions import IMAGENET_MEAN, IMAGENET_STD, resolve_threshold
from crackseg.errors import CrackSegError
from crackseg.explain.saliency import explain_saliency, gradient_saliency
from crackseg.explain.types import Explanation
from crackseg.metrics import probs_from_logits
from crackseg.models.segmenter import pad_to_grid
from crackseg.tensors import image_to_tensor, normalize

HEAD_FUSIONS = {
    "mean": lambda w: w.mean(dim=-3),
    "max": lambda w: w.amax(dim=-3),
    "min": lambda w: w.amin(dim=-3),
}  # (..., nh, T, T) -> (..., T, T)


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


def encoder_of(model: nn.Module) -> nn.Module | None:
    """The encoder whose attention can be shown (a Segmenter's, or the ViT itself), or None when
    the model says it has no attention maps (`has_attention`: U-Net and other CNNs)."""
    model = getattr(model, "module", model)  # unwrap DDP
    encoder = getattr(model, "encoder", model)
    return encoder if getattr(encoder, "has_attention", False) else None


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
    Normalisation comes from `model.config` (a checkpoint's), else ImageNet; the threshold is
    `threshold` (0 is honoured), else the checkpoint's, else the default (`resolve_threshold`).
    """
    image = _as_image(image)
    model = getattr(model, "module", model)
    cfg = getattr(model, "config", None) or {}
    mean, std = cfg.get("mean") or IMAGENET_MEAN, cfg.get("std") or IMAGENET_STD
    try:
        threshold = resolve_threshold(threshold, cfg.get("threshold"))
    except ValueError as err:
        raise CrackSegError(f"explain: {err}") from err
    name = getattr(model, "preset", {}).get("name", type(model).__name__)
    encoder = encoder_of(model)
    if encoder is None and saliency is False:
        raise CrackSegError(f"{name} has no attention to show; explain it with saliency instead")
    was_training = model.training
    model.eval()
    try:
        if encoder is None:
            return explain_saliency(model, image, name=name, mean=mean, std=std, config=cfg,
                                    threshold=threshold, smoothgrad=smoothgrad)  # fmt: skip
        size = cfg.get("image_size") or encoder.image_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        expl = _attention(model, encoder, image, size=size, mean=mean, std=std, name=name)
        expl.threshold = threshold
        if saliency:
            if expl.probs is None:
                raise CrackSegError(f"{name} has no segmentation head: saliency needs crack logits")
            x = image_to_tensor(image, _device(model))  # (1, 3, H, W)
            expl.saliency, _ = gradient_saliency(model, x, mean=mean, std=std, size=size,
                                                 threshold=threshold, smoothgrad=smoothgrad)  # fmt: skip
        return expl
    finally:
        model.train(was_training)


@torch.no_grad()
def _attention(
    model: nn.Module,
    encoder: nn.Module,
    image: np.ndarray,
    *,
    size: tuple[int, int],
    mean,
    std,
    name: str,
) -> Explanation:
    """Attention maps of `encoder` (the `Encoder` contract) and, for a model with
    `forward_with_attention` (Segmenter), its decoder's maps and crack probabilities."""
    x = image_to_tensor(image, _device(model))
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    x = normalize(x, mean, std)  # (1, 3, h, w)
    padded, _ = pad_to_grid(x, encoder)
    gh, gw = encoder.token_grid(*padded.shape[-2:])
    probs, decoder = None, []
    if hasattr(model, "forward_with_attention"):
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
