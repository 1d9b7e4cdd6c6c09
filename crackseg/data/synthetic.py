"""Synthetic crack geometry with exactly known centreline length and width.

A crack is a set of centrelines (a trunk and optional branches), each a dense polyline with 1 px
steps; its pixels are those whose centre lies within `width / 2` of a centreline. So the true
length is the polyline length and the true width is `width`, both exact by construction.
Pixel (row r, col c) has its centre at (x=c, y=r), as in OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("straight", "curved", "branching")


@dataclass(frozen=True)
class Centreline:
    """One stroke of a crack: points (N, 2) as (x, y) pixel coordinates and its width in px."""

    points: np.ndarray  # (N, 2)
    width: float

    @property
    def length(self) -> float:
        return float(np.linalg.norm(np.diff(self.points, axis=0), axis=1).sum())


def random_walk(
    rng: np.random.Generator,
    start: tuple[float, float],
    heading: float,
    length: float,
    *,
    bounds: tuple[float, float, float, float],
    wiggle: float = 0.007,
    jag: float = 0.0,
) -> np.ndarray:
    """A smooth random walk of 1 px steps, cut where it first leaves `bounds` (x0, y0, x1, y1).

    The heading turns by a curvature that drifts slowly (`wiggle`, radius of curvature >> width)
    plus an optional short-range term (`jag`) for the zig-zag of real cracks.
    """
    from scipy.signal import lfilter  # slow to import: only synthetic data should pay for it

    n = max(int(length), 1)
    curvature = lfilter([1.0], [1.0, -0.9], rng.normal(0.0, wiggle, n)) if wiggle else np.zeros(n)
    if jag:
        curvature = curvature + lfilter([1.0], [1.0, -0.5], rng.normal(0.0, jag, n))
    theta = heading + np.cumsum(curvature)
    steps = np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (n, 2)
    points = np.concatenate([[start], start + np.cumsum(steps, axis=0)])  # (n+1, 2)
    x0, y0, x1, y1 = bounds
    inside = (
        (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
    )
    first_out = np.argmin(inside) if not inside.all() else len(points)
    return points[:first_out]


def rasterize(lines: list[Centreline], shape: tuple[int, int], chunk: int = 8) -> np.ndarray:
    """Distance (px) from each pixel centre to the nearest centreline, minus its half-width.

    Returns a float32 (H, W) map that is <= 0 exactly on crack pixels (inf far from any crack).
    Works on runs of `chunk` segments at a time, each over the pixels of its bounding box.
    """
    h, w = shape
    field = np.full(shape, np.inf, np.float32)
    for line in lines:
        half = line.width / 2
        pad = int(np.ceil(half)) + 1
        pts = line.points
        for i in range(0, max(len(pts) - 1, 1), chunk):
            run = pts[i : i + chunk + 1]  # (K+1, 2)
            if len(run) == 1:
                run = np.concatenate([run, run])
            c0 = max(int(np.floor(run[:, 0].min())) - pad, 0)
            c1 = min(int(np.ceil(run[:, 0].max())) + pad + 1, w)
            r0 = max(int(np.floor(run[:, 1].min())) - pad, 0)
            r1 = min(int(np.ceil(run[:, 1].max())) + pad + 1, h)
            if c0 >= c1 or r0 >= r1:
                continue
            ys, xs = np.mgrid[r0:r1, c0:c1].astype(np.float64)  # (h', w') each
            a, d = run[:-1, None, None, :], np.diff(run, axis=0)[:, None, None, :]  # (K, 1, 1, 2)
            px = np.stack([xs, ys], axis=-1)[None] - a  # (K, h', w', 2)
            t = np.clip((px * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-12), 0, 1)  # (K, h', w')
            dist = np.linalg.norm(px - t[..., None] * d, axis=-1).min(axis=0) - half  # (h', w')
            np.minimum(field[r0:r1, c0:c1], dist, out=field[r0:r1, c0:c1])
    return field


def crack_lines(
    rng: np.random.Generator,
    kind: str,
    *,
    width: float,
    size: int,
    length: float,
    margin: float,
    jag: float = 0.0,
    start: tuple[float, float] | None = None,
    heading: float | None = None,
) -> list[Centreline]:
    """Centrelines of one crack of `kind`; the whole band stays `margin` px inside the image."""
    if kind not in KINDS:
        raise ValueError(f"unknown crack kind {kind!r}; expected one of {KINDS}")
    bounds = (margin, margin, size - 1 - margin, size - 1 - margin)
    if start is None:
        start = tuple(rng.uniform(margin, size - 1 - margin, 2))
    if heading is None:
        # head towards the image centre so that the crack crosses the image
        to_centre = np.arctan2(size / 2 - start[1], size / 2 - start[0])
        heading = to_centre + rng.uniform(-0.6, 0.6)
    wiggle = 0.0 if kind == "straight" else 0.007
    trunk = random_walk(
        rng, start, heading, length, bounds=bounds, wiggle=wiggle, jag=0 if wiggle == 0 else jag
    )
    lines = [Centreline(trunk, width)]
    if kind != "branching" or len(trunk) < 40:
        return lines
    for _ in range(int(rng.integers(1, 4))):
        lines += _branch(rng, lines, width=width, bounds=bounds, jag=jag)
    return lines


def _branch(rng, lines, *, width, bounds, jag) -> list[Centreline]:
    """A side branch leaving the trunk at 25-60 degrees that never touches other strokes again."""
    trunk = lines[0].points
    for _ in range(10):
        i = int(rng.integers(len(trunk) // 5, len(trunk) * 4 // 5))
        tangent = trunk[min(i + 3, len(trunk) - 1)] - trunk[max(i - 3, 0)]
        side = rng.choice([-1.0, 1.0])
        heading = np.arctan2(tangent[1], tangent[0]) + side * np.deg2rad(rng.uniform(25, 60))
        pts = random_walk(
            rng,
            tuple(trunk[i]),
            heading,
            rng.uniform(0.3, 0.7) * len(trunk),
            bounds=bounds,
            jag=jag,
        )
        if len(pts) < 15:
            continue
        # beyond its root, the branch keeps clear of every other stroke (no loops, no merging)
        far = pts[int(2 * width) + 6 :]
        others = np.concatenate([line.points for line in lines])
        if len(far) and _min_distance(far, others) > 2 * width + 3:
            return [Centreline(pts, width)]
    return []


def _min_distance(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.spatial import cKDTree

    return float(cKDTree(b).query(a)[0].min())


def render_crack(
    kind: str = "curved", *, width: int, size: int = 256, seed: int = 0
) -> tuple[np.ndarray, float, float]:
    """One crack on an empty (size, size) canvas, for validating length/width measurement.

    Returns (mask uint8 (H, W) in {0, 1}, true centreline length in px summed over the trunk and
    branches, true width in px). Round ends: the band is every pixel within width/2 of the
    centreline, so the medial axis of the band is the centreline itself.
    """
    if width < 1 or width > size // 8:
        raise ValueError(f"width must be in [1, {size // 8}] for size {size}, got {width}")
    rng = np.random.default_rng(seed)
    margin = width / 2 + 2
    for _ in range(20):  # retry the rare walk that hits the border early
        start = (margin + rng.uniform(0, size * 0.1), rng.uniform(size * 0.3, size * 0.7))
        lines = crack_lines(
            rng, kind, width=width, size=size, length=rng.uniform(0.6, 0.9) * size, margin=margin,
            start=start, heading=rng.uniform(-0.4, 0.4),
        )  # fmt: skip
        if lines[0].length >= 0.5 * size and (kind != "branching" or len(lines) > 1):
            break
    mask = (rasterize(lines, (size, size)) <= 0).astype(np.uint8)
    return mask, float(sum(line.length for line in lines)), float(width)
