"""Image <-> tensor rules shared by training, inference and explanation (a torch-only leaf).

uint8 RGB photos become float tensors in [0, 1], then are normalised per channel; mixed precision
is one context manager. Nothing here imports the rest of crackseg.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import Tensor


def normalize(images: Tensor, mean, std) -> Tensor:
    """(B, 3, H, W) in [0, 1] -> (images - mean) / std, per channel."""
    mean = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images - mean) / std


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed-precision context for `dtype` (bf16/fp16) or a no-op for full precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def image_to_tensor(image: np.ndarray, device: torch.device | str | None = None) -> Tensor:
    """uint8 RGB (H, W, 3) -> float32 (1, 3, H, W) in [0, 1] on `device`.

    Read-only arrays (e.g. `np.asarray` of a PIL image) are copied: torch warns on them."""
    image = np.ascontiguousarray(image)
    if not image.flags.writeable:
        image = image.copy()
    chw = torch.from_numpy(image).permute(2, 0, 1)  # (3, H, W)
    return chw.to(device)[None].float().div_(255.0)


def uint8_to_float(images: Tensor) -> Tensor:
    """uint8 (B, 3, H, W) -> float32 in [0, 1]; float tensors pass through unchanged."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images
