"""An overlay that shows where a crack is wide: crack pixels coloured by local width (turbo colour
map, dark = thin, red = wide), small ignored specks in grey, crack ids at their boxes, and a colour
bar with the width scale in a panel on the right."""

from __future__ import annotations

import cv2
import numpy as np
from einops import repeat

from crackseg.measure.core import as_binary, measure_cracks
from crackseg.measure.report import CrackReport
from crackseg.visualize import label

PANEL = 72  # px added on the right for the colour bar
MIN_HEIGHT = 64  # shorter masks are padded below so that the colour bar fits
IGNORED_GREY = (128, 128, 128)


def _colours(values: np.ndarray, vmax: float) -> np.ndarray:
    """(N,) widths -> (N, 3) uint8 RGB on the turbo colour map, 0..vmax (its darkest tenth is
    skipped so that the thinnest cracks stay visible on a dark background)."""
    if values.size == 0:
        return np.zeros((0, 3), dtype=np.uint8)
    levels = np.clip(np.rint(25 + values / vmax * 230), 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(levels[:, None], cv2.COLORMAP_TURBO)[:, 0]  # (N, 3)
    return bgr[:, ::-1]


def _colour_bar(height: int, vmax: float, unit: str, scale: float) -> np.ndarray:
    """(height, PANEL, 3) uint8 panel: a vertical bar, wide at the top, with three tick labels."""
    panel = np.full((height, PANEL, 3), 32, dtype=np.uint8)
    top, bottom = 18, max(height - 8, 26)
    bar = _colours(np.linspace(vmax, 0, bottom - top), vmax)  # (bottom - top, 3)
    panel[top:bottom, 6:20] = repeat(bar, "h c -> h w c", w=14)
    label(panel, f"width {unit}", (4, 12), 0.33)
    for frac in (0.0, 0.5, 1.0):
        y = int(round(bottom - 1 - frac * (bottom - top - 1)))
        label(panel, f"{frac * vmax * scale:.3g}", (24, min(max(y + 4, top + 4), height - 2)))
    return panel


def width_overlay(image, mask, report: CrackReport | None = None) -> np.ndarray:
    """(H, W + 72, 3) uint8 RGB: `image` ((H, W, 3) or (H, W), or None for a dark background)
    with the cracks of `mask` coloured by local width, and a colour bar on the right (masks
    under 64 px tall are padded below to 64).

    `report` is `measure_cracks(mask)` (computed here if not given); the scale is in mm when the
    report has `mm_per_px`.
    """
    binary = as_binary(mask)  # (H, W)
    height, width = binary.shape
    if report is None:
        report = measure_cracks(binary)
    elif report.width_map is None or report.width_map.shape != (height, width):
        raise ValueError("report does not belong to this mask: pass measure_cracks(mask)")
    if image is None:
        canvas = np.full((height, width, 3), 24, dtype=np.uint8)
    else:
        canvas = np.asarray(image)
        if canvas.shape[:2] != (height, width):
            raise ValueError(f"image is {canvas.shape[:2]} but mask is {(height, width)}")
        if canvas.ndim == 2:
            canvas = repeat(canvas, "h w -> h w c", c=3)
        canvas = np.ascontiguousarray(canvas[..., :3]).astype(np.uint8)
        canvas = (canvas * 0.6).astype(np.uint8)  # dim the photo so the colours stand out
    widths = report.width_map  # (H, W)
    vmax = max(report.max_width_px, float(widths.max()), 1.0)
    canvas[binary & (widths == 0)] = IGNORED_GREY
    measured = widths > 0
    canvas[measured] = _colours(widths[measured], vmax)
    for crack in report.cracks:
        x, y, _, _ = crack.bbox
        label(canvas, str(crack.id), (x, max(y - 2, 10)))
    unit, scale = ("mm", report.mm_per_px) if report.mm_per_px else ("px", 1.0)
    if height < MIN_HEIGHT:  # room for the colour bar below a tiny mask
        canvas = np.pad(canvas, ((0, MIN_HEIGHT - height), (0, 0), (0, 0)), constant_values=32)
    return np.concatenate([canvas, _colour_bar(len(canvas), vmax, unit, scale)], axis=1)
