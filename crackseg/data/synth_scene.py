"""Synthetic crack photos: textured concrete or asphalt, stains, shadows, crack-like distractors
(saw-cut joints, slab edges, straight scratches, paint) that are NOT cracks, and real cracks whose
mask is exact (see `crackseg.data.synthetic`). Cracks meander and branch; distractors are straight:
the cue a model has to learn, as on real pavements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from crackseg.data.rasterize import fill_polygons, mask_to_polygons
from crackseg.data.synthetic import crack_lines, rasterize

WIDTHS = np.arange(1, 9)  # crack widths in px, thin ones a little rarer (harder to see)
WIDTH_P = np.array([0.07, 0.15, 0.19, 0.18, 0.14, 0.11, 0.09, 0.07])
N_CRACKS_P = np.array([0.15, 0.45, 0.3, 0.1])  # P(0, 1, 2, 3 cracks): 15% crack-free images


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) uint8 in {0, 1}
    cracks: list[dict] = field(default_factory=list)
    distractors: list[str] = field(default_factory=list)


def _noise(rng, size: int, cell: int) -> np.ndarray:
    """Smooth value noise with features about `cell` px across, unit std: (size, size) float32."""
    n = max(size // cell, 1) + 2
    grid = rng.standard_normal((n, n)).astype(np.float32)
    return cv2.resize(
        grid, (size, size), interpolation=cv2.INTER_CUBIC if cell > 1 else cv2.INTER_NEAREST
    )


def _fractal(rng, size: int, gains: dict[int, float]) -> np.ndarray:
    return sum(g * _noise(rng, size, cell) for cell, g in gains.items())


def _background(rng, size: int) -> tuple[np.ndarray, str]:
    """(H, W, 3) float32 texture in [0, 1]: smooth, pored concrete or grainy asphalt."""
    if rng.random() < 0.6:
        material, base = "concrete", rng.uniform(0.5, 0.75)
        tex = _fractal(rng, size, {64: 0.5, 32: 0.3, 16: 0.2, 8: 0.15, 4: 0.1, 2: 0.08, 1: 0.05})
        tex *= rng.uniform(0.04, 0.09)
        spots, radius, contrast = rng.integers(30, 200), (0.5, 2.0), (-0.35, 0.1)
    else:
        material, base = "asphalt", rng.uniform(0.22, 0.42)
        tex = _fractal(rng, size, {32: 0.3, 8: 0.3, 4: 0.4, 2: 0.5, 1: 0.4}) * rng.uniform(
            0.08, 0.14
        )
        spots, radius, contrast = rng.integers(300, 900), (0.8, 3.0), (-0.3, 0.6)
    colour = base * (1 + rng.normal(0, 0.04, 3)).astype(np.float32)  # a slight tint
    relief = np.zeros((size, size), np.float32)
    for _ in range(int(spots)):  # pores (dark) and aggregate stones (light or dark)
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(*radius)
        cv2.circle(
            relief, (int(x * 4), int(y * 4)), int(r * 4), rng.uniform(*contrast), -1, cv2.LINE_AA, 2
        )
    img = colour[None, None, :] * (1 + tex + cv2.GaussianBlur(relief, (0, 0), 0.6))[..., None]
    return img.astype(np.float32), material


def _line_map(size: int, p0, p1, width: float) -> np.ndarray:
    """A soft straight band (values 0..1) from p0 to p1, anti-aliased."""
    band = np.zeros((size, size), np.float32)
    s = 16  # sub-pixel precision (shift=4)
    cv2.line(
        band,
        tuple(int(v * s) for v in p0),
        tuple(int(v * s) for v in p1),
        1.0,
        max(int(round(width)), 1),
        cv2.LINE_AA,
        4,
    )
    return cv2.GaussianBlur(band, (0, 0), 0.7)


def _across(rng, size: int, axis_aligned: bool) -> tuple[np.ndarray, np.ndarray]:
    """End points of a straight line crossing the whole image."""
    angle = (
        rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.05)
        if axis_aligned
        else rng.uniform(0, np.pi)
    )
    centre = rng.uniform(0.15 * size, 0.85 * size, 2)
    d = np.array([np.cos(angle), np.sin(angle)]) * size * 1.5
    return centre - d, centre + d


def _joint(rng, img, size):
    """Saw-cut or sealed joint: a dark band with parallel straight edges, full length."""
    p0, p1 = _across(rng, size, axis_aligned=rng.random() < 0.7)
    band = _line_map(size, p0, p1, rng.uniform(3, 10))
    img *= (1 - rng.uniform(0.25, 0.7) * band)[..., None]


def _edge(rng, img, size):
    """Slab or curb edge: a brightness step along a straight line, sometimes with a thin groove."""
    p0, p1 = _across(rng, size, axis_aligned=rng.random() < 0.5)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    d = p1 - p0
    side = ((xs - p0[0]) * d[1] - (ys - p0[1]) * d[0]) / np.linalg.norm(d)  # signed distance
    step = 1 / (1 + np.exp(-side / rng.uniform(0.5, 2.0)))
    img *= (1 + rng.choice([-1, 1]) * rng.uniform(0.1, 0.25) * step)[..., None]
    if rng.random() < 0.5:
        img *= (1 - rng.uniform(0.15, 0.4) * _line_map(size, p0, p1, rng.uniform(1, 2.5)))[
            ..., None
        ]


def _scratch(rng, img, size):
    """Short straight thin line, dark or light (tool marks, tyre scuffs, wires' shadows)."""
    p0 = rng.uniform(0, size, 2)
    angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.6) * size
    p1 = p0 + length * np.array([np.cos(angle), np.sin(angle)])
    band = _line_map(size, p0, p1, rng.uniform(1, 2.5))
    img *= (1 + rng.choice([-1.0, 0.6]) * rng.uniform(0.15, 0.4) * band)[..., None]


def _paint(rng, img, size):
    """Road marking: a wide bright (white or yellow) straight band."""
    p0, p1 = _across(rng, size, axis_aligned=rng.random() < 0.5)
    band = _line_map(size, p0, p1, rng.uniform(10, 30))[..., None]
    colour = np.array([0.9, 0.9, 0.88] if rng.random() < 0.6 else [0.9, 0.78, 0.25], np.float32)
    img[:] = img * (1 - 0.85 * band) + colour * 0.85 * band


def _stain(rng, img, size):
    """Wet patch, oil or rust: a soft blob that darkens and tints."""
    blob = _noise(rng, size, int(rng.integers(24, 64)))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy, r = *rng.uniform(0, size, 2), rng.uniform(0.15, 0.4) * size
    inside = np.clip(1.2 - np.hypot(xs - cx, ys - cy) / r + 0.3 * blob, 0, 1)
    tint = np.array(rng.choice([[0.75, 0.72, 0.7], [0.8, 0.65, 0.5], [0.6, 0.6, 0.62]]), np.float32)
    img *= 1 - rng.uniform(0.1, 0.4) * inside[..., None] * (1 - tint)


def _shadow(rng, img, size):
    """A soft-edged cast shadow: a half-plane or a band (pole, person)."""
    p0, p1 = _across(rng, size, axis_aligned=False)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    d = (p1 - p0) / np.linalg.norm(p1 - p0)
    side = (xs - p0[0]) * d[1] - (ys - p0[1]) * d[0]
    soft = rng.uniform(3, 30)
    shade = 1 / (1 + np.exp(-side / soft))
    if rng.random() < 0.5:  # a band: shadow between two parallel lines
        shade = shade * (1 - 1 / (1 + np.exp(-(side - rng.uniform(15, 0.5 * size)) / soft)))
    img *= (1 - rng.uniform(0.25, 0.55) * shade)[..., None]


DISTRACTORS = {
    "joint": (_joint, 0.35),
    "edge": (_edge, 0.25),
    "scratch": (_scratch, 0.35),
    "paint": (_paint, 0.1),
}


def _place_cracks(rng, size: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Cracks that polygons can represent exactly (no loops): mask, depth map, per-crack records."""
    mask = np.zeros((size, size), np.uint8)
    depth = np.zeros((size, size), np.float32)
    records = []
    for _ in range(rng.choice(len(N_CRACKS_P), p=N_CRACKS_P)):
        for _attempt in range(6):
            width = int(rng.choice(WIDTHS, p=WIDTH_P))
            kind = "branching" if rng.random() < 0.5 else "curved"
            lines = crack_lines(
                rng, kind, width=width, size=size, length=rng.uniform(0.4, 1.2) * size,
                margin=width / 2 + 1, jag=rng.uniform(0.01, 0.03),
            )  # fmt: skip
            if lines[0].length < 0.15 * size:
                continue
            dist = rasterize(lines, (size, size))
            new = dist <= 0
            union = (mask.astype(bool) | new).astype(np.uint8)
            polygons = [(1, p) for p in mask_to_polygons(union)]
            if not np.array_equal(fill_polygons(polygons, (size, size)), union):
                continue  # it closed a loop with another crack: a hole polygons cannot carry
            mask = union
            centre = 1 - np.clip((dist[new] + width / 2) / (width / 2), 0, 1)  # 1 on the centreline
            strength = rng.uniform(0.5, 0.8) + (0.1 if width <= 2 else 0)
            depth[new] = np.maximum(depth[new], strength * (0.75 + 0.25 * centre))
            records.append({
                "kind": kind if len(lines) > 1 else "curved",
                "width_px": float(width),
                "length_px": round(sum(line.length for line in lines), 3),
                "segments": [
                    {"length_px": round(line.length, 3), "width_px": float(width)} for line in lines
                ],
                "pixels": int(new.sum()),
            })  # fmt: skip
            break
    return mask, depth, records


def render_scene(rng: np.random.Generator, size: int) -> Scene:
    """One synthetic photo with its exact crack mask and what was drawn in it."""
    img, material = _background(rng, size)
    drawn = [material]
    for _ in range(rng.poisson(0.8)):
        _stain(rng, img, size)
        drawn.append("stain")
    for name, (draw, p) in DISTRACTORS.items():
        if rng.random() < p:
            draw(rng, img, size)
            drawn.append(name)
    mask, depth, cracks = _place_cracks(rng, size)
    # crack darkness varies along the crack (slow) and grain by grain (fast)
    shade = depth * (1 + 0.1 * _noise(rng, size, 2) + 0.12 * _noise(rng, size, 24))
    img *= (1 - np.clip(shade, 0, 0.95))[..., None]
    if rng.random() < 0.35:
        _shadow(rng, img, size)
        drawn.append("shadow")
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    gx, gy = rng.uniform(-0.2, 0.2, 2)
    img *= (1 + gx * xs + gy * ys)[..., None]  # uneven lighting
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 0.8))  # optics
    img += rng.normal(0, rng.uniform(0.005, 0.02), img.shape).astype(np.float32)  # sensor noise
    image = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Scene(image, mask, cracks, drawn)
