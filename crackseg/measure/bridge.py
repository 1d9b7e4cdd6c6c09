"""Bridge small gaps along a crack, so that one crack broken by the model counts as one.

A crack tip (an end of the mask's skeleton) is joined to a tip of *another* crack when the two
are at most `gap_px` apart (edge to edge: the distance between the skeleton tips less the crack's
half-width at each) and face each other: each tip's direction (from the skeleton just behind it
to the tip) points within `MAX_ANGLE_DEG` of the other tip. Two parallel cracks side by side do
not face each other, so they stay two. Each tip is used once, and a bridge never closes a loop.
The bridge is a straight band as wide as the thinner of the two tips.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree
from skimage.draw import line
from skimage.morphology import disk, skeletonize

from crackseg.measure.skeleton import EIGHT

MAX_ANGLE_DEG = 45.0  # how far a tip's direction may point away from the tip it is joined to
REACH_PX = 6.0  # skeleton pixels within this distance of a tip give its direction
MIN_TIP_PIXELS = 3  # a shorter skeleton (a dot) has no direction and is never bridged


def _tips(skel: np.ndarray) -> np.ndarray:
    """(T, 2) row/col of skeleton pixels with exactly one 8-neighbour."""
    neighbours = ndi.convolve(skel.astype(np.uint8), EIGHT.astype(np.uint8), mode="constant")
    return np.argwhere(skel & (neighbours == 2))  # the pixel itself + one neighbour


def _direction(tip: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """Unit vector from the skeleton just behind `tip` to the tip, or None if too short."""
    near = points[np.linalg.norm(points - tip, axis=1) <= REACH_PX]
    if len(near) < MIN_TIP_PIXELS:
        return None
    d = tip - near.mean(axis=0)
    norm = float(np.linalg.norm(d))
    return d / norm if norm > 1e-6 else None


def _find(parent: dict, a: int) -> int:
    while parent.setdefault(a, a) != a:
        a = parent[a]
    return a


def bridge_gaps(binary: np.ndarray, gap_px: float) -> tuple[np.ndarray, int]:
    """(H, W) bool -> (the mask with bridges drawn in, number of bridges)."""
    if gap_px <= 0:
        return binary, 0
    labels, n = ndi.label(binary, structure=EIGHT)
    if n < 2:
        return binary, 0
    skel = skeletonize(binary, method="lee").astype(bool)
    tips = _tips(skel)  # (T, 2)
    if len(tips) < 2:
        return binary, 0
    half = ndi.distance_transform_edt(binary)  # ~ half-width + 0.5 on the skeleton
    points = np.argwhere(skel)  # (S, 2)
    point_labels = labels[points[:, 0], points[:, 1]]
    tip_labels = labels[tips[:, 0], tips[:, 1]]
    tip_half = half[tips[:, 0], tips[:, 1]]
    directions = [_direction(t, points[point_labels == lab]) for t, lab in zip(tips, tip_labels)]
    reach = gap_px + 2 * float(tip_half.max())
    cos_max = math.cos(math.radians(MAX_ANGLE_DEG))
    candidates = []
    for i, j in cKDTree(tips).query_pairs(reach):
        di, dj = directions[i], directions[j]
        if tip_labels[i] == tip_labels[j] or di is None or dj is None:
            continue
        offset = (tips[j] - tips[i]).astype(float)
        dist = float(np.linalg.norm(offset))
        if dist - tip_half[i] - tip_half[j] > gap_px:
            continue
        u = offset / dist
        if di @ u >= cos_max and dj @ -u >= cos_max:
            candidates.append((dist, i, j))
    parent: dict = {}
    used: set = set()
    bands: dict[int, np.ndarray] = {}  # band radius -> centre lines of that radius
    for _, i, j in sorted(candidates):
        a, b = _find(parent, int(tip_labels[i])), _find(parent, int(tip_labels[j]))
        if i in used or j in used or a == b:
            continue
        parent[a] = b
        used |= {i, j}
        radius = max(0, int(min(tip_half[i], tip_half[j]) - 0.5))
        centre = bands.setdefault(radius, np.zeros_like(binary))
        rr, cc = line(*tips[i], *tips[j])
        centre[rr, cc] = True
    bridged = binary.copy()
    for radius, centre in bands.items():
        bridged |= ndi.binary_dilation(centre, structure=disk(radius)) if radius else centre
    return bridged, len(used) // 2
