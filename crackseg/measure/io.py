"""Reading masks from files and writing measurement tables, with errors that name the file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from crackseg.errors import CrackSegError

LOSSY = {".jpg", ".jpeg"}


def read_binary_mask(path: str | Path) -> np.ndarray:
    """Read a mask image as (H, W) bool: nonzero (in any colour channel) = crack.

    {0, 1}, {0, 255}, palette and RGB masks all work; an alpha channel is ignored. JPEG masks are
    thresholded at 128 instead, because lossy compression leaves faint non-zero pixels around
    every edge.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            mask = np.asarray(image)
            if image.mode in ("RGBA", "LA", "PA"):
                mask = mask[..., :-1]  # (H, W, C - 1) without alpha
    except FileNotFoundError:
        raise CrackSegError(f"{path}: no such mask file") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise CrackSegError(
            f"{path}: cannot read it as a mask image ({err}); give a PNG/TIFF/BMP with "
            f"nonzero = crack"
        ) from None
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    if mask.ndim != 2 or mask.size == 0:
        raise CrackSegError(f"{path}: a mask must be one 2-D image, got shape {mask.shape}")
    if path.suffix.lower() in LOSSY:
        return mask >= 128
    return mask != 0


def write_csv(path: str | Path, rows: list[dict], columns: list[str]) -> None:
    """Write `rows` (dicts) under the header `columns`; an empty table still gets its header."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    except OSError as err:
        raise CrackSegError(f"{path}: cannot write the CSV file ({err.strerror})") from None
