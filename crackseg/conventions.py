"""The rules several layers share, in one place: label values, normalisation, fills, thresholds.

A leaf module (no torch, no crackseg imports), so data, engine, inference, explain, serve and
measure can all depend on it without depending on each other.
"""

from __future__ import annotations

import math

IGNORE_INDEX = 255  # mask value that counts as neither crack nor background (never trained on)
CRACK, BACKGROUND = 1, 0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LETTERBOX_FILL = 114  # Ultralytics' grey, for padded image borders
DEFAULT_THRESHOLD = (
    0.5  # p(crack) >= threshold is crack, when neither user nor model says otherwise
)


def resolve_threshold(requested: float | None, stored: float | None = None) -> float:
    """The threshold to use: the user's (0 is a valid request), else the model's stored one, else 0.5.

    Raises ValueError for a value outside [0, 1] or not finite (callers at the boundary turn a
    user's flag into a CrackSegError before this point).
    """
    for value in (requested, stored):
        if value is not None:
            value = float(value)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"threshold must be in [0, 1], got {value}")
            return value
    return DEFAULT_THRESHOLD
