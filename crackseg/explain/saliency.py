"""Gradient saliency (Simonyan et al. 2014) for models without attention, e.g. U-Net: how much each
input pixel moves the summed crack logit over the predicted crack pixels (the whole image when
none is predicted). Optionally SmoothGrad (Smilkov et al. 2017): gradients averaged over noisy copies.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.conventions import DEFAULT_THRESHOLD
from crackseg.explain.types import Explanation
from crackseg.metrics import probs_from_logits
from crackseg.tensors import image_to_tensor, normalize

MAX_SIDE = 1024  # whole-image backward passes above this get memory-hungry on CPU


def logits_function(
    model: nn.Module, *, mean, std, size: tuple[int, int] | None, original: tuple[int, int]
) -> Callable[[Tensor], Tensor]:
    """images (1, 3, H, W) in [0, 1] -> float logits (1, K, h, w): resized to `size` inside the
    graph (so gradients land on the original pixels), then normalised."""

    def logits_of(x: Tensor) -> Tensor:
        if size is not None and tuple(size) != tuple(original):
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        return model(normalize(x, mean, std)).float()

    return logits_of


def crack_region(logits: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """(probs (1, h, w), region (1, h, w) bool): the predicted crack pixels, or every pixel when
    none is predicted (so the map is never empty)."""
    probs = probs_from_logits(logits)  # (1, h, w)
    region = probs >= threshold
    return probs, region if region.any() else torch.ones_like(region)


def input_gradient(logits_of, images: Tensor, region: Tensor, channel: int) -> Tensor:
    """d (sum of the crack logit over `region`) / d images; parameters' .grad are untouched."""
    x = images.detach().requires_grad_(True)
    score = logits_of(x)[:, channel][region].sum()
    (grad,) = torch.autograd.grad(score, x)
    return grad  # (1, 3, H, W)


def smoothgrad_gradient(
    logits_of, images: Tensor, region: Tensor, channel: int, *, n: int, noise: float, seed: int
) -> Tensor:
    """Raw input gradients averaged over `n` copies with Gaussian noise (sigma = `noise` x the
    image's value range), seeded so the same call gives the same map."""
    gen = torch.Generator(device=images.device).manual_seed(seed)
    sigma = noise * float(images.max() - images.min()) or noise
    grads = []
    for _ in range(n):
        noisy = images + sigma * torch.randn(images.shape, generator=gen, device=images.device)
        grads.append(input_gradient(logits_of, noisy, region, channel))
    return torch.stack(grads).mean(dim=0)  # (1, 3, H, W)


def gradient_saliency(
    model: nn.Module,
    images: Tensor,
    *,
    mean,
    std,
    size: tuple[int, int] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    smoothgrad: int = 0,
    noise: float = 0.15,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Shapes: images (1, 3, H, W) in [0, 1] -> (saliency (H, W) >= 0, probs (H, W)), on the CPU.

    Steps: a clean pass gives the crack region (`crack_region`); the score is the crack logit
    (class 1; class 0 of a 1-class model) summed over it; saliency = |d score / d pixel|, max over
    RGB (`input_gradient`), or with `smoothgrad` = n > 0 the average raw gradient of n noisy
    copies (`smoothgrad_gradient`) before the absolute value.
    """
    H, W = images.shape[-2:]
    logits_of = logits_function(model, mean=mean, std=std, size=size, original=(H, W))
    with torch.no_grad():
        logits = logits_of(images)  # (1, K, h, w)
    probs, region = crack_region(logits, threshold)
    channel = 1 if logits.shape[1] > 1 else 0
    with torch.enable_grad():
        if smoothgrad > 0:
            grad = smoothgrad_gradient(logits_of, images, region, channel, n=smoothgrad,
                                       noise=noise, seed=seed)  # fmt: skip
        else:
            grad = input_gradient(logits_of, images, region, channel)
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
) -> Explanation:
    """Saliency `Explanation` of a uint8 RGB image at the model's prediction scale
    (`config["predict_scale"]`), downscaled further (and noted) when a side exceeds `max_side`."""
    H, W = image.shape[:2]
    scale = config.get("predict_scale") or 1.0
    notes = []
    if max(H, W) * scale > max_side:
        notes.append(f"saliency computed at {max_side} px on the long side (image is {W}x{H})")
        scale = max_side / max(H, W)
    size = (max(1, round(H * scale)), max(1, round(W * scale)))
    x = image_to_tensor(image, next(model.parameters()).device)  # (1, 3, H, W)
    saliency, probs = gradient_saliency(model, x, mean=mean, std=std, size=size,
                                        threshold=threshold, smoothgrad=smoothgrad)  # fmt: skip
    return Explanation(kind="saliency", model_name=name, image_size=(H, W), input_size=size,
                       padded_size=size, saliency=saliency, probs=probs, threshold=threshold,
                       notes=notes)  # fmt: skip
