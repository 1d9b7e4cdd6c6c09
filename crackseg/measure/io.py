"""Reading masks from files and writing measurement tables, with errors that name the file."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from crackseg.errors import CrackSegError


def read_binary_mask(path: str | Path) -> tuple[np.ndarray, str | None]:
    """Read a mask file as (H, W) bool, crack = True, plus a note when a conversion rule was needed.

    Values follow `crackseg.data.read_mask` (one reader for the whole project): {0, 1}, {0, 255},
    any single non-zero value, palette and two-colour RGB masks are binary as they stand;
    {0, 1, 255} masks use 255 as ignore, which is not measured; anti-aliased or JPEG-saved masks
    are thresholded at half range (noted). Unreadable files raise CrackSegError naming the file.
    """
    from crackseg.data.io import read_mask_checked  # lazy: crackseg.data pulls in torch

    mask, note = read_mask_checked(path)
    if mask.ndim != 2 or mask.size == 0:
        raise CrackSegError(f"{path}: a mask must be one 2-D image, got shape {mask.shape}")
    if note is not None:  # converted: anti-aliased, JPEG-saved, a probability map... or a photo
        crack, mid = float((mask == 1).mean()), mid_tone_share(path)
        if crack > PHOTO_SHARE or mid > PHOTO_SHARE:
            raise CrackSegError(
                f"{path}: a photo or an overlay, not a mask ({crack:.0%} of it would be crack, "
                f"{mid:.0%} is mid-tones); measure masks (predict's *_mask.png), or run "
                "`crackseg predict --measure` on the photo"
            )
    return mask == 1, note


PHOTO_SHARE = 0.5  # no crack mask is half crack or half mid-tones; a photo is one or the other


def mid_tone_share(path: str | Path) -> float:
    """Share of pixels between 10% and 90% of full scale (the brightest channel of a colour
    image): near 0 for masks, anti-aliased or JPEG-saved ones included; most of a photo."""
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im)
    if arr.ndim == 3:
        arr = arr[:, :, :3].max(axis=2)  # (H, W)
    top = np.iinfo(arr.dtype).max if arr.dtype.kind in "ui" else 1.0
    return float(((arr > 0.1 * top) & (arr < 0.9 * top)).mean())


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
