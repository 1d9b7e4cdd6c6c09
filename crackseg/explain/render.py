"""Explanation pictures: heat maps (matplotlib colormap) blended onto the photo, captioned cells laid
out with `crackseg.imageops.mosaic`. Overlays and captions are the shared `crackseg.visualize` ones.
"""

from __future__ import annotations

import cv2
import numpy as np
from torch import Tensor

from crackseg.explain.types import Explanation
from crackseg.imageops import mosaic
from crackseg.visualize import caption, overlay

CMAP = "turbo"


def fit(image: np.ndarray, cell: int) -> np.ndarray:
    """Resize so that the long side is `cell` px (area filter shrinking, bilinear enlarging)."""
    H, W = image.shape[:2]
    s = cell / max(H, W)
    size = (max(1, round(W * s)), max(1, round(H * s)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def heat_overlay(image: np.ndarray, heat: np.ndarray, *, alpha: float = 0.55) -> np.ndarray:
    """Colour `heat` (h, w), min-max scaled per map, and blend it onto uint8 RGB `image` (h, w, 3).

    Each map is scaled on its own, so cells show where a map is high, not how high across maps.
    """
    from matplotlib import colormaps

    heat = np.asarray(heat, dtype=np.float32)
    lo, hi = float(heat.min()), float(heat.max())
    heat = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
    rgb = colormaps[CMAP](heat)[..., :3] * 255  # (h, w, 3)
    return ((1 - alpha) * image + alpha * rgb).clip(0, 255).astype(np.uint8)


def class_names(k: int) -> list[str]:
    return ["background", "crack"] if k == 2 else [f"class {i}" for i in range(k)]


def _prediction(expl: Explanation, small: np.ndarray) -> np.ndarray:
    probs = cv2.resize(expl.probs.numpy(), small.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    return caption(overlay(small, (probs >= expl.threshold).astype(np.uint8)), "prediction")


def explanation_grid(
    expl: Explanation, image: np.ndarray, *, layers: str = "all", cell: int = 224
) -> np.ndarray:
    """uint8 RGB grid. Attention: a first row (image, prediction, rollout, then the last decoder
    block's attention of each class embedding), one row per encoder layer (each head, then their
    mean) and, with layers="all", one row per earlier decoder block. Saliency: a single row.
    """
    if layers not in ("all", "last"):
        raise ValueError(f"layers must be 'all' or 'last', got {layers!r}")
    small = fit(image, cell)
    size = small.shape[:2]

    def heat(maps: Tensor, text: str) -> np.ndarray:
        return caption(heat_overlay(small, expl.upsample(maps, size).numpy()), text)

    first = [caption(small, "image")]
    if expl.probs is not None:
        first.append(_prediction(expl, small))
    if expl.kind == "saliency":
        sal = cv2.resize(expl.saliency.numpy(), small.shape[1::-1], interpolation=cv2.INTER_AREA)
        sal = np.minimum(sal, np.percentile(sal, 99))  # gradients are heavy-tailed: clip the top 1%
        return mosaic(first + [caption(heat_overlay(small, sal), "gradient saliency")], cols=3)
    first.append(heat(expl.rollout, "rollout"))
    rows = [first]
    if expl.class_attention is not None:
        names = class_names(expl.class_attention.shape[1])
        first += [heat(m, f"class emb: {n}") for m, n in zip(expl.class_attention[-1], names)]
    L, nh = expl.cls_attention.shape[:2]
    for i in range(L) if layers == "all" else [L - 1]:
        maps = expl.cls_attention[i]
        rows.append([heat(m, f"layer {i + 1} head {h + 1}") for h, m in enumerate(maps)])
        rows[-1].append(heat(maps.mean(dim=0), f"layer {i + 1} mean"))
    if expl.class_attention is not None and layers == "all":
        for j, maps in enumerate(expl.class_attention[:-1]):
            rows.append([heat(m, f"dec {j + 1} {n}") for m, n in zip(maps, names)])
    cols = max(len(r) for r in rows)
    blank = np.zeros_like(small)
    cells = [c for r in rows for c in r + [blank] * (cols - len(r))]
    return mosaic(cells, cols=cols)


def rollout_panel(expl: Explanation, image: np.ndarray, *, cell: int = 512) -> np.ndarray:
    """Image | rollout overlay, side by side."""
    small = fit(image, cell)
    heat = expl.upsample(expl.rollout, small.shape[:2]).numpy()
    return mosaic([caption(small, "image"), caption(heat_overlay(small, heat), "rollout")], cols=2)
