"""Inference on images of any size: rescale, sliding window with blending, flip TTA.

An image no larger than the model's window gets one plain forward pass (the models pad internally).
A larger one is covered by window-sized crops that all lie inside the image, neighbours sharing at
least `overlap` of a window (default a quarter: benchmarks/tiling_overlap.py), and blended by a
linear cross-fade over the shared strip only. Nothing is padded, so the image border looks to the
model as in an untiled pass: an earlier version padded shifted tilings with the mean colour and
painted a crack frame around large photos.

A photo is predicted in bounded memory: it stays uint8 until a batch of tiles is cut from it (each
tile normalised on its own), and the blend keeps one crack log-odds map, not K class maps.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from crackseg.conventions import IMAGENET_MEAN, IMAGENET_STD
from crackseg.tensors import autocast, normalize

OVERLAPS = {"none": 0.0, "quarter": 0.25, "half": 0.5}  # share of a window neighbours overlap
DEFAULT_OVERLAP = "quarter"


def overlap_fraction(overlap: bool | float | str) -> float:
    """`overlap` as a share of the window in [0, 0.5]: a name in OVERLAPS, a number, or a bool
    (True: half, the layout of earlier versions; False: none)."""
    if isinstance(overlap, str):
        if overlap not in OVERLAPS:
            raise ValueError(f"overlap must be one of {', '.join(OVERLAPS)}, got {overlap!r}")
        return OVERLAPS[overlap]
    fraction = 0.5 if overlap is True else float(overlap)
    if not 0 <= fraction <= 0.5:
        raise ValueError(f"overlap must be in [0, 0.5], got {overlap!r}")
    return fraction


def window_starts(length: int, window: int, *, overlap: bool | float | str) -> list[int]:
    """Start offsets of windows that cover [0, length) and all lie inside it, evenly spread, each
    sharing at least `overlap` of a window with the next (stride <= window - overlap * window).
    A side no longer than the window gets one window, the whole side."""
    if length <= window:
        return [0]
    stride = max(1, window - math.ceil(overlap_fraction(overlap) * window))
    n = math.ceil((length - window) / stride) + 1
    return [round(i * (length - window) / (n - 1)) for i in range(n)]


def edge_weight(size: int, *, ramp_start: int, ramp_end: int) -> Tensor:
    """1-D blending weights (size,): a linear rise over the first `ramp_start` pixels and a fall
    over the last `ramp_end` (the strips shared with the previous and next window), 1 elsewhere.
    Two neighbours' ramps over their shared strip add up to 1: a cross-fade. 0 = no ramp (an
    image border, where no other window can take over)."""
    i = torch.arange(size, dtype=torch.float32)
    rise = ((i + 0.5) / ramp_start).clamp(max=1.0) if ramp_start > 0 else torch.ones(size)
    fall = ((size - i - 0.5) / ramp_end).clamp(max=1.0) if ramp_end > 0 else torch.ones(size)
    return rise * fall


def axis_weights(starts: list[int], window: int) -> list[Tensor]:
    """Per window along one axis, its `edge_weight`: ramps as long as the overlap with each
    neighbour."""
    shared = [max(0, a + window - b) for a, b in zip(starts, starts[1:], strict=False)]
    return [edge_weight(window, ramp_start=([0] + shared)[i], ramp_end=(shared + [0])[i])
            for i in range(len(starts))]  # fmt: skip


def crack_logodds(logits: Tensor) -> Tensor:
    """(B, K, H, W) logits -> (B, 1, H, W) log-odds of crack, log p(crack) - log p(background);
    its sigmoid is `probs_from_logits`. For K = 2 it is l1 - l0, so blending it equals blending
    the logits."""
    crack = logits[:, 1:2] if logits.shape[1] == 2 else logits[:, 1:].logsumexp(1, keepdim=True)
    return crack - logits[:, :1]


AUTO_SHORT_SIDE = 2.0  # `auto` scale: the model sees a short side of at most this many windows


def scale_settings(value: str | float) -> dict:
    """--scale as Predictor keywords: "auto" -> {"auto": True}, a factor F -> {"scale": F};
    CrackSegError (naming the flag) unless F is a number in (0, 8]. Shared by predict, serve and
    evaluate."""
    from crackseg.errors import CrackSegError

    if value == "auto":
        return {"auto": True}
    try:
        scale = float(value)
    except (TypeError, ValueError):
        scale = math.nan
    if not (math.isfinite(scale) and 0 < scale <= 8):
        raise CrackSegError(f"--scale must be auto or a number in (0, 8], got {value!r}")
    return {"scale": scale}


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
    """Owns inference-time state: model, normalisation, window, overlap, scale, TTA, precision.

    `scale` resizes every image for the model (a checkpoint's default: how training resized its
    images); with `auto`, a large image is downscaled further (`auto_scale`). `overlap`: see
    `window_starts`; `amp_dtype`: autocast dtype (bf16) or None for fp32; `tiles_per_batch`:
    windows per forward pass (default 1 on CPU, 8 on a GPU)."""

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
        overlap: bool | float | str = DEFAULT_OVERLAP,
        tta: bool = False,
        amp_dtype: torch.dtype | None = None,
        tiles_per_batch: int | None = None,
        channels_last: bool = False,
    ):
        device = torch.device(device)
        if tiles_per_batch is None:  # on CPU, 8 tiles of 416 px a batch were slower per tile
            # than 1 (bundled model, 1 thread: bf16 357 vs 298 ms, fp32 657 vs 482) and peaked
            # 430 MB higher; a GPU wants batches
            tiles_per_batch = 8 if device.type == "cuda" else 1
        if window < 1 or tiles_per_batch < 1 or not scale > 0:
            raise ValueError(
                f"window and tiles_per_batch must be >= 1 and scale > 0, got window={window}, "
                f"tiles_per_batch={tiles_per_batch}, scale={scale}"
            )
        self.model = model.eval().to(device)
        self.window, self.scale, self.tta = window, scale, tta
        self.overlap = overlap_fraction(overlap)
        self.auto = auto  # per image: `auto_scale` of `scale`
        self.mean, self.std, self.device = mean, std, device
        self.amp_dtype, self.tiles_per_batch = amp_dtype, tiles_per_batch
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device="cpu", backend: str = "torch",
                        **overrides) -> Predictor:  # fmt: skip
        """`backend` "onnxruntime": `path` is a file from crackseg export (`crackseg.deploy`)."""
        from crackseg.deploy import load_for_inference

        model = load_for_inference(path, backend=backend, device=device)
        cfg = model.config
        kw = dict(window=cfg.get("image_size", 416), mean=cfg.get("mean") or IMAGENET_MEAN,
                  std=cfg.get("std") or IMAGENET_STD,
                  scale=cfg.get("predict_scale") or 1.0, device=device,
                  channels_last=cfg.get("channels_last", False))  # fmt: skip
        _check_config(kw, path)
        return cls(model, **{**kw, **overrides})

    def _forward(self, images: Tensor) -> Tensor:
        """Images, uint8 (as read) or already normalised -> logits (B, K, h, w) float32."""
        if images.dtype == torch.uint8:  # one tile batch at a time, never the whole photo
            images = normalize(images.float().div_(255.0), self.mean, self.std)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.amp_dtype):
            return self.model(images).float()

    def _tiled(self, images: Tensor, head) -> Tensor:
        """(B, C, H, W) larger than the window -> head(logits) (B, C', H, W), blended windows.

        Every window lies inside the image: nothing is padded, so the model never sees a border
        (zeros, a reflection) that an untiled pass would not show it, and a blank photo stays
        blank. A window's weight ramps down only over the strips it shares with a neighbour."""
        B, _, H, W = images.shape
        wh, ww = min(self.window, H), min(self.window, W)
        ys, xs = (
            window_starts(H, wh, overlap=self.overlap),
            window_starts(W, ww, overlap=self.overlap),
        )
        wys, wxs = axis_weights(ys, wh), axis_weights(xs, ww)
        boxes = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
        acc = None
        per_batch = max(1, self.tiles_per_batch // B)
        for k in range(0, len(boxes), per_batch):
            chunk = boxes[k : k + per_batch]
            crops = torch.stack(
                [images[..., ys[i] : ys[i] + wh, xs[j] : xs[j] + ww] for i, j in chunk]
            )
            crops = rearrange(crops, "n b c h w -> (n b) c h w")
            out = rearrange(head(self._forward(crops)).cpu(), "(n b) k h w -> n b k h w", b=B)
            if acc is None:
                acc = torch.zeros(B, out.shape[2], H, W)
            for (i, j), window_out in zip(chunk, out, strict=True):
                weight = wys[i][:, None] * wxs[j][None, :]  # (wh, ww)
                acc[..., ys[i] : ys[i] + wh, xs[j] : xs[j] + ww].addcmul_(window_out, weight)
        total_y, total_x = torch.zeros(H), torch.zeros(W)  # the weights are separable, and so
        for y, wy in zip(ys, wys, strict=True):  # is their sum: total = total_y x total_x
            total_y[y : y + wh] += wy
        for x, wx in zip(xs, wxs, strict=True):
            total_x[x : x + ww] += wx
        return acc.div_(total_y[:, None]).div_(total_x)  # in place: no second full-size map

    def _at_scale(self, images: Tensor, head, scale: float | None) -> Tensor:
        """(B, C, H, W) -> head(logits) (B, C', H, W): resized by `scale` for the model, tiled
        when larger than the window, flip-averaged with TTA, resized back to (H, W)."""
        H, W = images.shape[-2:]
        scale = self.scale_for(H, W) if scale is None else scale
        x = images
        if scale != 1.0:  # uint8 stays uint8 (no float copy of a whole photo)
            size = (max(1, round(H * scale)), max(1, round(W * scale)))
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        x = x.to(self.device)
        big = max(x.shape[-2:]) > self.window
        run = (lambda t: self._tiled(t, head)) if big else (lambda t: head(self._forward(t)).cpu())
        out = run(x)
        if self.tta:
            out = out.add_(run(x.flip(-1)).flip(-1)).div_(2)
        if out.shape[-2:] != (H, W):
            out = F.interpolate(out, size=(H, W), mode="bilinear", align_corners=False)
        return out

    @torch.no_grad()
    def logits(self, images: Tensor, *, scale: float | None = None) -> Tensor:
        """Normalised images (B, C, H, W) -> logits (B, K, H, W) at the same size.

        The model sees the images resized by `scale` (default: the predictor's own), e.g. a
        smaller one to bound the work on a large photo; logits come back at (H, W)."""
        return self._at_scale(images, lambda logits: logits, scale)

    def scale_for(self, height: int, width: int) -> float:
        """The scale an image of this size is predicted at."""
        return auto_scale(height, width, self.window, self.scale) if self.auto else self.scale

    def __call__(self, images: Tensor) -> Tensor:
        return self.logits(images)

    @torch.no_grad()
    def predict_probs(self, image: np.ndarray, *, scale: float | None = None) -> np.ndarray:
        """One uint8 RGB image (H, W, 3) -> crack probability (H, W) float32 in [0, 1].

        The photo is never copied as floats: tiles are cut from the uint8 image, and the blend
        and the answer are one (H, W) float32 map."""
        with warnings.catch_warnings():  # a read-only array (np.asarray of a PIL image) is
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")  # only read
            x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]  # (1, 3, H, W)
        logodds = self._at_scale(x, crack_logodds, scale)  # (1, 1, H, W)
        return logodds[0, 0].sigmoid_().numpy()
