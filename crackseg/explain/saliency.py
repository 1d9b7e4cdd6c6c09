"""Gradient saliency (Simonyan et al. 2014) for models without attention, e.g. U-Net: how much each
input pixel moves the summed crack logit over the predicted crack pixels (the whole image when
none is predicted). Optionally SmoothGrad (Smilkov et al. 2017): gradients averaged over noisy copies.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.metrics import probs_from_logits
from crackseg.tensors import normalize

MAX_SIDE = 1024  # whole-image backward passes above this get memory-hungry on CPU


def gradient_saliency(
    model: nn.Module,
    images: Tensor,
    *,
    mean,
    std,
    size: tuple[int, int] | None = None,
    threshold: float = 0.5,
    smoothgrad: int = 0,
    noise: float = 0.15,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Shapes: images (1, 3, H, W) in [0, 1] -> (saliency (H, W) >= 0, probs (H, W)), on the CPU.

    The model sees `images` resized to `size` (inside the graph, so gradients land on the original
    pixels) and normalised. Score = sum of the crack logit (class 1; class 0 of a 1-class model)
    over pixels with p(crack) >= threshold in a clean pass. Saliency = |d score / d pixel|, max over
    RGB (vanilla gradient). With `smoothgrad` = n > 0, the raw gradients of n copies with Gaussian
    noise (sigma = `noise` x the image's value range) are averaged before the absolute value.
    """
    H, W = images.shape[-2:]

    def logits_of(x: Tensor) -> Tensor:
        if size is not None and tuple(size) != (H, W):
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        return model(normalize(x, mean, std)).float()  # (1, K, h, w)

    with torch.no_grad():
        logits = logits_of(images)
    probs = probs_from_logits(logits)  # (1, h, w)
    crack = probs >= threshold
    if not crack.any():
        crack = torch.ones_like(crack)
    channel = 1 if logits.shape[1] > 1 else 0

    def gradient(x: Tensor) -> Tensor:
        x = x.detach().requires_grad_(True)
        score = logits_of(x)[:, channel][crack].sum()
        (grad,) = torch.autograd.grad(score, x)  # leaves the parameters' .grad untouched
        return grad  # (1, 3, H, W)

    with torch.enable_grad():
        if smoothgrad > 0:
            gen = torch.Generator(device=images.device).manual_seed(seed)
            sigma = noise * float(images.max() - images.min()) or noise
            grads = [
                gradient(
                    images + sigma * torch.randn(images.shape, generator=gen, device=images.device)
                )  # fmt: skip
                for _ in range(smoothgrad)
            ]
            grad = torch.stack(grads).mean(dim=0)
        else:
            grad = gradient(images)
    saliency = grad.abs().amax(dim=1)[0]  # (H, W)
    probs = F.interpolate(probs[None], size=(H, W), mode="bilinear", align_corners=False)[0, 0]
    return saliency.cpu(), probs.cpu()


def explain_saliency(
    model: nn.Module,
    image: np.ndarray,
    *,
    name: str,
    mean,
    std,
    config: dict,
    threshold: float,
    smoothgrad: int = 0,
    max_side: int = MAX_SIDE,
):
    """Saliency `Explanation` of a uint8 RGB image at the model's prediction scale
    (`config["predict_scale"]`), downscaled further (and noted) when a side exceeds `max_side`."""
    from crackseg.explain.core import Explanation, _to_tensor

    H, W = image.shape[:2]
    scale = config.get("predict_scale") or 1.0
    notes = []
    if max(H, W) * scale > max_side:
        notes.append(f"saliency computed at {max_side} px on the long side (image is {W}x{H})")
        scale = max_side / max(H, W)
    size = (max(1, round(H * scale)), max(1, round(W * scale)))
    x = _to_tensor(image, next(model.parameters()).device)
    saliency, probs = gradient_saliency(model, x, mean=mean, std=std, size=size,
                                        threshold=threshold, smoothgrad=smoothgrad)  # fmt: skip
    return Explanation(kind="saliency", model_name=name, image_size=(H, W), input_size=size,
                       padded_size=size, saliency=saliency, probs=probs, threshold=threshold,
                       notes=notes)  # fmt: skip
