"""Inference on images of any size: rescale, sliding window with blending, flip TTA.

An image no larger than the model's window gets one plain forward pass (the models pad internally).
A larger one is cut into window-sized tiles with the einops `tile`/`untile` of `crackseg.imageops`;
with `overlap`, four tilings shifted by half a window are blended with a tent weight, so every pixel
is predicted from 4 windows and tile seams disappear.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from crackseg.conventions import IMAGENET_MEAN, IMAGENET_STD
from crackseg.imageops import tile, untile
from crackseg.tensors import autocast, image_to_tensor, normalize


def tent(size: int) -> Tensor:
    """1-D weights peaking at the window centre and positive at its edges: (size,)."""
    i = torch.arange(size, dtype=torch.float32)
    return torch.minimum(i + 0.5, size - i - 0.5) / (size / 2)


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
    """Owns inference-time state: model, normalisation, window, scale, TTA."""

    def __init__(
        self,
        model: nn.Module,
        *,
        window: int,
        mean,
        std,
        device: str | torch.device = "cpu",
        scale: float = 1.0,
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
        """(B, C, H, W) larger than the window -> logits (B, K, H, W), blended tilings."""
        B, _, H, W = images.shape
        win = self.window
        weight = tent(win)[:, None] * tent(win)[None, :]  # (win, win)
        shifts = [(0, 0), (win // 2, 0), (0, win // 2), (win // 2, win // 2)]
        acc, total = None, torch.zeros(H, W)
        for dy, dx in shifts if self.overlap else shifts[:1]:
            ph, pw = -(H + dy) % win, -(W + dx) % win
            padded = F.pad(images, (dx, pw, dy, ph))  # zeros = the mean colour after normalising
            p1, p2 = padded.shape[-2] // win, padded.shape[-1] // win
            tiles = tile(
                rearrange(padded, "b c h w -> h w b c"), win, win
            )  # (p1*p2, win, win, B, C)
            tiles = rearrange(tiles, "n h w b c -> (n b) c h w")
            logits = torch.cat([self._forward(t) for t in tiles.split(self.tiles_per_batch)])
            logits = rearrange(logits.cpu(), "(n b) k h w -> n h w b k", b=B)
            canvas = rearrange(untile(logits, p1, p2), "h w b k -> b k h w")
            w = repeat(weight, "h w -> (p1 h) (p2 w)", p1=p1, p2=p2)
            canvas, w = canvas[..., dy : dy + H, dx : dx + W], w[dy : dy + H, dx : dx + W]
            acc = canvas * w if acc is None else acc + canvas * w
            total += w
        return acc / total

    @torch.no_grad()
    def logits(self, images: Tensor, *, scale: float | None = None) -> Tensor:
        """Normalised images (B, C, H, W) -> logits (B, K, H, W) at the same size.

        The model sees the images resized by `scale` (default: the predictor's own), e.g. a
        smaller one to bound the work on a large photo; logits come back at (H, W)."""
        H, W = images.shape[-2:]
        scale = self.scale if scale is None else scale
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

    def __call__(self, images: Tensor) -> Tensor:
        return self.logits(images)

    def predict_probs(self, image: np.ndarray, *, scale: float | None = None) -> np.ndarray:
        """One uint8 RGB image (H, W, 3) -> crack probability (H, W) float32 in [0, 1]."""
        from crackseg.metrics import probs_from_logits

        if not image.flags.writeable:  # e.g. np.asarray of a PIL image: torch wants a copy
            image = image.copy()
        x = image_to_tensor(image)  # (1, 3, H, W) in [0, 1]
        logits = self.logits(normalize(x, self.mean, self.std), scale=scale)
        return probs_from_logits(logits)[0].numpy()
