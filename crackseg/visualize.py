"""Pictures for reports, drawn one way everywhere: mask overlays, captions and outlined labels,
sample grids and training curves (matplotlib's object API, no global backend switch).

`overlay` and `caption` are the single implementation used by training samples, `predict`, the
dataset inspector, explanations, measurements and the web app.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from crackseg.conventions import CRACK, IGNORE_INDEX
from crackseg.imageops import mosaic

CRACK_RGB = (255, 40, 40)
GT_RGB = (40, 220, 40)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    color=CRACK_RGB,
    alpha: float = 0.6,
    ignore_color=None,
) -> np.ndarray:
    """Blend `color` into uint8 RGB `image` (H, W, 3) where `mask` (H, W) is 1 (crack).

    IGNORE_INDEX pixels are greyed (halved), or blended with `ignore_color` when one is given.
    Returns a new uint8 (H, W, 3) array; `image` is not modified.
    """
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"image is {image.shape[:2]} but mask is {mask.shape[:2]}")
    out = np.array(image, dtype=np.uint8)  # (H, W, 3), a copy; only blended pixels go float
    hit, ignored = mask == CRACK, mask == IGNORE_INDEX
    out[hit] = _blend(out[hit], color, alpha)
    if ignore_color is None:
        out[ignored] = (out[ignored].astype(np.float32) * 0.5).astype(np.uint8)
    else:
        out[ignored] = _blend(out[ignored], ignore_color, alpha)
    return out


def _blend(pixels: np.ndarray, color, alpha: float) -> np.ndarray:
    """uint8 pixels (N, 3) blended towards `color` in float32, truncated back to uint8."""
    mixed = (1 - alpha) * pixels.astype(np.float32) + alpha * np.asarray(color, np.float32)
    return mixed.clip(0, 255).astype(np.uint8)


def caption(image: np.ndarray, text: str, *, scale: float | None = None) -> np.ndarray:
    """A copy of `image` with `text` at the top-left, white on a dimmed band (legible on any
    background). The font scale follows the image size unless `scale` is given."""
    out = np.ascontiguousarray(image).copy()
    if scale is None:
        scale = max(0.35, min(out.shape[:2]) / 480)
    (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
    band = out[: h + base + 6, : w + 8]
    band[:] = band // 3  # a view: dims the strip behind the text
    cv2.putText(out, text, (4, h + 3), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def label(canvas: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.35) -> None:
    """Draw `text` in place at `org` (x, y baseline): white with a black outline, for labels that
    sit on the picture itself (crack ids, colour-bar ticks) rather than in a caption band."""
    cv2.putText(canvas, text, org, FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, org, FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def sample_grid(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """One row per sample: image | ground truth overlay | prediction overlay."""
    cells = []
    for image, target, pred in rows:
        cells += [image, overlay(image, target, color=GT_RGB), overlay(image, pred)]
    return mosaic(cells, cols=3)


def save_png(array: np.ndarray, path: str | Path, *, compress_level: int = 6) -> Path:
    """Write a PNG (folders made as needed); `compress_level` is zlib's (1: fastest, 9: smallest;
    predict uses 1 for large photos)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, compress_level=compress_level)
    return path


def save_curves(history: list[dict], path: str | Path) -> Path:
    """Loss and validation crack IoU/F1 per epoch, side by side (a standalone Figure: no pyplot
    state, no backend switch, safe in threads and next to a user's own plots)."""
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
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
    if ax2.lines:
        ax2.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
