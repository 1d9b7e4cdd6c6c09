"""Pictures for reports: mask overlays, sample grids and training curves (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from crackseg.imageops import mosaic

CRACK_RGB = (255, 40, 40)
GT_RGB = (40, 220, 40)


def overlay(
    image: np.ndarray, mask: np.ndarray, *, color=CRACK_RGB, alpha: float = 0.6
) -> np.ndarray:
    """Blend `color` into uint8 RGB `image` (H, W, 3) where `mask` (H, W) is 1; 255 (ignore) greyed."""
    out = image.astype(np.float32).copy()
    hit = mask == 1
    out[hit] = (1 - alpha) * out[hit] + alpha * np.asarray(color, np.float32)
    out[mask == 255] *= 0.5
    return out.clip(0, 255).astype(np.uint8)


def sample_grid(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """One row per sample: image | ground truth overlay | prediction overlay."""
    cells = []
    for image, target, pred in rows:
        cells += [image, overlay(image, target, color=GT_RGB), overlay(image, pred)]
    return mosaic(cells, cols=3)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def save_curves(history: list[dict], path: str | Path) -> Path:
    """Loss and validation crack IoU/F1 per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_title("loss")
    ax1.legend()
    for key in ("crack_iou", "crack_f1", "ods_f1"):
        points = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
        if points:
            ax2.plot(*zip(*points), marker="o", label=f"val {key}")
    ax2.set_xlabel("epoch")
    ax2.set_ylim(0, 1)
    ax2.set_title("validation")
    ax2.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
