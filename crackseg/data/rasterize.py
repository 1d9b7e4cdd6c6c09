"""Polygons and COCO RLE <-> masks, at the image's own resolution.

Polygon rule (the Ultralytics one, so masks match what users see there): a vertex at normalised
(x, y) lands in pixel (floor(x * W), floor(y * H)) - the pixel whose square contains it - and the
polygon is filled by OpenCV boundary-inclusive, so a crack outlined as a zero-area line still gets
1 px. A square from 0.25 to 0.75 on a 100 x 100 image covers pixels 25..75: 51 x 51 = 2601 px.
"""

from __future__ import annotations

import cv2
import numpy as np

from crackseg.errors import CrackSegError

_TOLERANCE = 1e-3  # px; float32 storage of normalised coordinates is exact to ~2e-4 px at 4096 px


def fill_polygons(
    polygons: list[tuple[int, np.ndarray]], hw: tuple[int, int], mask: np.ndarray | None = None
) -> np.ndarray:
    """Fill (value, (N, 2) normalised xy) polygons into a uint8 (H, W) mask, in the given order."""
    h, w = hw
    mask = np.zeros((h, w), np.uint8) if mask is None else mask
    scale = np.array([w, h], np.float64)
    for value, xy in polygons:
        # the tolerance keeps 0.9 * 100 (stored as 89.99999) in pixel 90, where it was meant to be
        px = np.floor(np.asarray(xy, np.float64) * scale + _TOLERANCE)  # (N, 2)
        px = np.clip(px, 0, scale - 1).astype(np.int32)
        cv2.fillPoly(mask, [px.reshape(-1, 1, 2)], int(value))
    return mask


def mask_to_polygons(mask: np.ndarray) -> list[np.ndarray]:
    """Outer contours of the crack pixels as (N, 2) normalised xy, one per 8-connected component.

    Vertices sit at pixel centres ((col + 0.5) / W), so `fill_polygons` gives the pixels back
    exactly when the mask has no holes.
    """
    h, w = mask.shape
    contours, _ = cv2.findContours(
        (mask == 1).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    scale = np.array([w, h], np.float64)
    return [(c.reshape(-1, 2) + 0.5) / scale for c in contours]


def rle_decode(rle: dict) -> np.ndarray:
    """COCO RLE (counts as a list, or the compressed string) -> uint8 (H, W) mask in {0, 1}."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = _counts_from_string(counts.decode() if isinstance(counts, bytes) else counts)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.sum() != h * w or (counts < 0).any():
        raise ValueError(f"RLE counts sum to {counts.sum()}, expected {h}*{w}={h * w}")
    values = np.zeros(len(counts), np.uint8)
    values[1::2] = 1  # runs alternate 0, 1, 0, ... starting with background
    flat = np.repeat(values, counts)
    return flat.reshape(w, h).T.copy()  # COCO runs go down columns (Fortran order)


def rle_encode(mask: np.ndarray, *, compressed: bool = True) -> dict:
    """uint8 (H, W) mask -> COCO RLE dict; `compressed` gives the string form pycocotools writes."""
    flat = (np.asarray(mask).T.reshape(-1) > 0).astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    size = [int(mask.shape[0]), int(mask.shape[1])]
    return {"size": size, "counts": _counts_to_string(counts) if compressed else counts}


def _counts_from_string(s: str) -> list[int]:
    """Decode pycocotools' LEB128-like string: 5 bits a char, deltas from two runs back."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p >= len(s):
                raise ValueError("RLE string ends inside a number")
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _counts_to_string(counts: list[int]) -> str:
    out = []
    for i, c in enumerate(counts):
        x = c - counts[i - 2] if i > 2 else c
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = not ((x == 0 and not ch & 0x10) or (x == -1 and ch & 0x10))
            out.append(chr((ch | (0x20 if more else 0)) + 48))
    return "".join(out)


def checked_rle_decode(rle: dict, source: str) -> np.ndarray:
    """rle_decode with the error turned into a message naming where the RLE came from."""
    try:
        return rle_decode(rle)
    except (KeyError, TypeError, ValueError) as err:
        raise CrackSegError(f"{source}: invalid RLE segmentation ({err}). Re-export it.") from None
