"""Polygons and COCO RLE (via pycocotools) <-> masks, at the image's own resolution.

Polygon rule (the Ultralytics one, so masks match what users see there): a vertex at normalised
(x, y) lands in pixel (floor(x * W), floor(y * H)) - the pixel whose square contains it - and the
polygon is filled by OpenCV boundary-inclusive, so a crack outlined as a zero-area line still gets
1 px. A square from 0.25 to 0.75 on a 100 x 100 image covers pixels 25..75: 51 x 51 = 2601 px.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
from pycocotools import mask as coco_mask

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
    """COCO RLE (counts as a list, or the compressed string) -> uint8 (H, W) mask in {0, 1}.

    pycocotools decodes; what it does not check is checked here, since it reads a malformed
    string without complaint (garbage pixels): list counts must be non-negative and sum to H*W,
    and a string must be the one pycocotools writes for the mask it decodes to.
    """
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        encoded = counts.encode() if isinstance(counts, str) else counts
        try:
            mask = _decode({"size": [h, w], "counts": encoded})  # (H, W) uint8
        except ValueError as err:
            raise ValueError(f"RLE string does not decode ({err})") from None
        if (
            mask.max(initial=0) > 1
            or coco_mask.encode(np.asfortranarray(mask))["counts"] != encoded
        ):
            raise ValueError(f"RLE string is not a valid encoding of a {h}x{w} mask")
        return mask
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or counts.sum() != h * w or (counts < 0).any():
        raise ValueError(f"RLE counts sum to {counts.sum()}, expected {h}*{w}={h * w}")
    return _decode(coco_mask.frPyObjects({"size": [h, w], "counts": counts.tolist()}, h, w))


def _decode(rle: dict) -> np.ndarray:
    with warnings.catch_warnings():  # pycocotools 2.0.x: numpy 2's __array__(copy=) notice
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco_mask.decode(rle)


def rle_encode(mask: np.ndarray, *, compressed: bool = True) -> dict:
    """uint8 (H, W) mask -> COCO RLE dict; `compressed` gives the string form pycocotools writes,
    else the list of run lengths (column-major, starting with a background run)."""
    mask = np.asarray(mask)
    size = [int(mask.shape[0]), int(mask.shape[1])]
    if compressed:
        binary = np.asfortranarray((mask > 0).astype(np.uint8))
        return {"size": size, "counts": coco_mask.encode(binary)["counts"].decode()}
    flat = (mask.T.reshape(-1) > 0).astype(np.int8)  # COCO runs go down columns
    change = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return {"size": size, "counts": counts}


def checked_rle_decode(rle: dict, source: str) -> np.ndarray:
    """rle_decode with the error turned into a message naming where the RLE came from."""
    try:
        return rle_decode(rle)
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise CrackSegError(f"{source}: invalid RLE segmentation ({err}). Re-export it.") from None
