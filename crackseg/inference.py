"""Inference on images of any size: rescale, sliding window with blending, flip TTA.

An image no larger than the model's window gets one plain forward pass (the models pad internally).
A larger one is covered by window-sized crops that all lie inside the image (with `overlap`, at
most half a window apart) and blended with weights that taper towards crop edges inside the image
only. Nothing is padded, so the image border looks to the model as in an untiled pass: an earlier
version padded shifted tilings with the mean colour and painted a crack frame around large photos.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from crackseg.conventions import IMAGENET_MEAN, IMAGENET_STD
from crackseg.tensors import autocast, image_to_tensor, normalize


def window_starts(length: int, window: int, *, overlap: bool) -> list[int]:
    """Start offsets of windows that cover [0, length) and all lie inside it, evenly spread:
    stride at most window/2 with `overlap`, at most `window` without. A side no longer than the
    window gets one window, the whole side."""
    if length <= window:
        return [0]
    stride = window // 2 if overlap else window
    n = math.ceil((length - window) / max(1, stride)) + 1
    return [round(i * (length - window) / (n - 1)) for i in range(n)]


def edge_weight(size: int, *, taper_start: bool, taper_end: bool) -> Tensor:
    """1-D blending weights (size,): a tent towards window edges that lie inside the image, flat
    (1) towards an image border, where no other window can take over."""
    i = torch.arange(size, dtype=torch.float32)
    ramp = torch.clamp(torch.minimum(i + 0.5, size - i - 0.5) / (size / 2), max=1.0)
    rise = torch.where(i < size / 2, ramp, torch.ones(size)) if taper_start else torch.ones(size)
    fall = torch.where(i >= size / 2, ramp, torch.ones(size)) if taper_end else torch.ones(size)
    return rise * fall


AUTO_SHORT_SIDE = 2.0  # `auto` scale: the model sees a short side of at most this many windows


def auto_scale(height: int, width: int, window: int, scale: float = 1.0) -> float:
    """`scale`, reduced so the short side is at most AUTO_SHORT_SIDE windows: a 4000x3000 phone
    photo shows cracks many times wider than the ~window-sized training images did."""
    return min(scale, AUTO_SHORT_SIDE * window / min(height, width))


def _check_config(kw: dict, path) -> None:
    """The inference settings read from a checkpoint's config, or a CrackSegError naming it."""
    from crackseg.errors import CrackSegError

    window, scale = kw["window"], kw["scale"]
    if not (isinstance(window, int) and window >= 1):
        raise CrackSegError(
            f"{path}: config image_size must be a whole number >= 1, got {window!r}"
        )
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise CrackSegError(
            f"{path}: config predict_scale must be a positive number, got {scale!r}"
        )
    for key in ("mean", "std"):
        value = kw[key]
        ok = isinstance(value, (list, tuple)) and len(value) == 3
        ok = ok and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
        if not ok or (key == "std" and min(value) <= 0):
            raise CrackSegError(
                f"{path}: config {key} must be 3 finite numbers{' > 0' * (key == 'std')} "
                f"(one per RGB channel), got {value!r}; use a checkpoint written by crackseg train"
            )


class Predictor:
    """Owns inference-time state: model, normalisation, window, scale, TTA.

    `scale` resizes every image for the model (a checkpoint's default: how training resized its
    images); with `auto`, a large image is downscaled further (`auto_scale`)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        window: int,
        mean,
        std,
        device: str | torch.device = "cpu",
        scale: float = 1.0,
        auto: bool = False,
        overlap: bool = True,
        tta: bool = False,
        amp_dtype: torch.dtype | None = None,
        tiles_per_batch: int = 8,
        channels_last: bool = False,
    ):
        if window < 1 or tiles_per_batch < 1 or not scale > 0:
            raise ValueError(
                f"window and tiles_per_batch must be >= 1 and scale > 0, got window={window}, "
                f"tiles_per_batch={tiles_per_batch}, scale={scale}"
            )
        self.model = model.eval().to(device)
        self.window, self.scale, self.overlap, self.tta = window, scale, overlap, tta
        self.auto = auto  # per image: `auto_scale` of `scale`
        self.mean, self.std, self.device = mean, std, torch.device(device)
        self.amp_dtype, self.tiles_per_batch = amp_dtype, tiles_per_batch
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device="cpu", **overrides) -> Predictor:
        from crackseg.engine.checkpoint import load_model

        model = load_model(path, device=device)
        cfg = model.config
        kw = dict(window=cfg.get("image_size", 416), mean=cfg.get("mean") or IMAGENET_MEAN,
                  std=cfg.get("std") or IMAGENET_STD,
                  scale=cfg.get("predict_scale") or 1.0, device=device,
                  channels_last=cfg.get("channels_last", False))  # fmt: skip
        _check_config(kw, path)
        return cls(model, **{**kw, **overrides})

    def _forward(self, images: Tensor) -> Tensor:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.amp_dtype):
            return self.model(images).float()

    def _tiled(self, images: Tensor) -> Tensor:
        """(B, C, H, W) larger than the window -> logits (B, K, H, W), blended windows.

        Every window lies inside the image: nothing is padded, so the model never sees a border
        (zeros, a reflection) that an untiled pass would not show it, and a blank photo stays
        blank. A window's weight tapers only towards its edges inside the image."""
        B, _, H, W = images.shape
        wh, ww = min(self.window, H), min(self.window, W)
        boxes = [(y, x) for y in window_starts(H, wh, overlap=self.overlap)
                 for x in window_starts(W, ww, overlap=self.overlap)]  # fmt: skip
        acc, total = None, torch.zeros(H, W)
        per_batch = max(1, self.tiles_per_batch // B)
        for i in range(0, len(boxes), per_batch):
            chunk = boxes[i : i + per_batch]
            crops = torch.stack([images[..., y : y + wh, x : x + ww] for y, x in chunk])
            crops = rearrange(crops, "n b c h w -> (n b) c h w")
            logits = rearrange(self._forward(crops).cpu(), "(n b) k h w -> n b k h w", b=B)
            if acc is None:
                acc = torch.zeros(B, logits.shape[2], H, W)
            for (y, x), window_logits in zip(chunk, logits, strict=True):
                wy = edge_weight(wh, taper_start=y > 0, taper_end=y + wh < H)
                wx = edge_weight(ww, taper_start=x > 0, taper_end=x + ww < W)
                weight = wy[:, None] * wx[None, :]  # (wh, ww)
                acc[..., y : y + wh, x : x + ww] += window_logits * weight
                total[y : y + wh, x : x + ww] += weight
        return acc / total

    @torch.no_grad()
    def logits(self, images: Tensor, *, scale: float | None = None) -> Tensor:
        """Normalised images (B, C, H, W) -> logits (B, K, H, W) at the same size.

        The model sees the images resized by `scale` (default: the predictor's own), e.g. a
        smaller one to bound the work on a large photo; logits come back at (H, W)."""
        H, W = images.shape[-2:]
        scale = self.scale_for(H, W) if scale is None else scale
        x = images.to(self.device)
        if scale != 1.0:
            size = (max(1, round(H * scale)), max(1, round(W * scale)))
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        big = max(x.shape[-2:]) > self.window
        run = self._tiled if big else (lambda t: self._forward(t).cpu())
        logits = run(x)
        if self.tta:
            logits = (logits + run(x.flip(-1)).flip(-1)) / 2
        if logits.shape[-2:] != (H, W):
            logits = F.interpolate(logits, size=(H, W), mode="bilinear", align_corners=False)
        return logits

    def scale_for(self, height: int, width: int) -> float:
        """The scale an image of this size is predicted at."""
        return auto_scale(height, width, self.window, self.scale) if self.auto else self.scale

    def __call__(self, images: Tensor) -> Tensor:
        return self.logits(images)

    def predict_probs(self, image: np.ndarray, *, scale: float | None = None) -> np.ndarray:
        """One uint8 RGB image (H, W, 3) -> crack probability (H, W) float32 in [0, 1]."""
        from crackseg.metrics import probs_from_logits

        x = image_to_tensor(image)  # (1, 3, H, W) in [0, 1]
        logits = self.logits(normalize(x, self.mean, self.std), scale=scale)
        return probs_from_logits(logits)[0].numpy()
