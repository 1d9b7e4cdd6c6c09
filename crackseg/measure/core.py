"""Measure cracks in a binary mask: length, width, orientation and extent of each connected crack.

Recipe per connected crack (8-connectivity): fill small holes -> skeleton (scikit-image, Lee's
method) -> prune spurs -> length of the centreline along the branches -> local width along the
skeleton from a Euclidean distance transform (scipy) -> orientation from the skeleton's principal
axis.

Length is the centreline (medial axis) length, the model of `crackseg.data.synthetic`: a crack
is a curve with a width, so a round or blunt end adds nothing, and a tapering real crack's
skeleton reaches its tip anyway. Only where a crack runs out of the image is the tip extended to
the image edge (the skeleton stops about a half-width short of it).

Width convention: the distance transform is taken on the mask upsampled 2x (nearest), so it
measures to pixel *edges* on a half-pixel grid; the local width at a pixel is the largest
distance in its 2x2 block, in original pixels. A straight w-px-wide band then reads exactly w
for every w >= 1, odd or even (`2 * edt - 1` on the original grid reads even widths one short).
"""

from __future__ import annotations

import numpy as np
from einops import reduce, repeat
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from crackseg.measure.bridge import bridge_gaps
from crackseg.measure.report import Crack, CrackReport
from crackseg.measure.skeleton import EIGHT, prune_spurs, summarise

GAP_PX = 5.0  # default: bridge gaps up to this wide between crack tips that face each other
MIN_LENGTH_PX = 8.0  # default: shorter pieces are slivers, dropped and counted
JUNCTION_ZONE = 2.0  # widths within this many junction half-widths of a junction are not used


def as_binary(mask) -> np.ndarray:
    """(H, W) or (H, W, C) array -> (H, W) bool; nonzero in any channel = crack."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask.any(axis=2)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be (H, W) or (H, W, C), got shape {mask.shape}")
    return mask != 0


def _local_width(component: np.ndarray) -> np.ndarray:
    """Local width in pixels at every pixel of a (h, w) bool crop (0 outside the crack)."""
    up = repeat(component, "h w -> (h a) (w b)", a=2, b=2)  # (2h, 2w)
    edt = ndi.distance_transform_edt(up)  # in half-pixels = twice the distance to an edge
    return reduce(edt, "(h a) (w b) -> h w", "max", a=2, b=2).astype(np.float32)


def _orientation(points: np.ndarray) -> float:
    """Principal-axis angle of (N, 2) row/col points in degrees, (-90, 90], 0 = horizontal,
    counter-clockwise on screen positive (image y points down, so rows are negated)."""
    if len(points) < 2:
        return 0.0
    xy = np.stack([points[:, 1], -points[:, 0]], axis=1).astype(float)  # (N, 2), y up
    _, vectors = np.linalg.eigh(np.cov(xy, rowvar=False))
    vx, vy = vectors[:, -1]  # eigenvector of the largest eigenvalue
    angle = float(np.degrees(np.arctan2(vy, vx)))
    if angle <= -90:
        angle += 180
    elif angle > 90:
        angle -= 180
    return round(angle, 2) + 0.0  # + 0.0 turns -0.0 into 0.0


def _fill_small_holes(component: np.ndarray, max_area: float) -> np.ndarray:
    """Fill enclosed background regions of at most `max_area` px (the outside is never filled)."""
    holes = ndi.binary_fill_holes(component) & ~component
    labels, n = ndi.label(holes)
    if n == 0:
        return component
    small = np.bincount(labels.ravel()) <= max_area  # (n + 1,)
    small[0] = False
    return component | small[labels]


def _edge_gap(box: tuple[slice, slice], shape: tuple[int, int]) -> np.ndarray:
    """(h + 2, w + 2) distance from each pixel centre of a padded crop to the image edge."""
    rows = np.arange(box[0].start - 1, box[0].stop + 1)
    cols = np.arange(box[1].start - 1, box[1].stop + 1)
    to_row_edge = np.minimum(rows, shape[0] - 1 - rows)[:, None]
    to_col_edge = np.minimum(cols, shape[1] - 1 - cols)[None, :]
    return np.minimum(to_row_edge, to_col_edge) + 0.5


def _measure_one(component: np.ndarray, edge_gap: np.ndarray) -> tuple[dict, np.ndarray]:
    """Figures for one crack crop (h, w) bool, padded by one background pixel on each side,
    and its width map (every crack pixel coloured by the width at its nearest skeleton pixel)."""
    filled = _fill_small_holes(component, max(9.0, float(_local_width(component).max()) ** 2))
    width = _local_width(filled)  # (h, w)
    half = width / 2
    skel = prune_spurs(skeletonize(filled, method="lee"), half)
    if not skel.any():  # cannot happen for a non-empty crop; keep the widest pixel if it does
        skel = width == width.max()
    summary = summarise(skel, half, edge_gap)
    points = np.argwhere(skel)  # (N, 2)
    usable = np.ones(len(points), dtype=bool)
    for centre, radius in summary.junctions:
        usable &= np.linalg.norm(points - centre, axis=1) > JUNCTION_ZONE * radius
    widths = width[points[:, 0], points[:, 1]]
    kept = widths[usable] if usable.any() else widths
    figures = {
        "length_px": summary.length,
        "mean_width_px": float(kept.mean()),
        "max_width_px": float(kept.max()),
        "orientation_deg": _orientation(points),
        "n_branches": summary.n_branches,
    }
    _, nearest = ndi.distance_transform_edt(~skel, return_indices=True)  # (2, h, w)
    width_map = np.where(component, width[nearest[0], nearest[1]], 0.0)
    return figures, width_map.astype(np.float32)


def measure_cracks(
    mask,
    *,
    mm_per_px: float | None = None,
    min_area_px: int = 10,
    gap_px: float = GAP_PX,
    min_length_px: float = MIN_LENGTH_PX,
    source: str | None = None,
) -> CrackReport:
    """Measure every crack in `mask` (H, W) bool/uint8 or (H, W, C); nonzero = crack.

    A crack is a connected component (8-connectivity) after bridging gaps of at most `gap_px`
    between crack tips that face each other (`crackseg.measure.bridge`; 0 = no bridging), so a
    crack the model broke into pieces counts once; a bridge adds length, not area. Components
    smaller than `min_area_px` pixels are not measured (`report.ignored_count` /
    `ignored_area_px`), nor are slivers shorter than `min_length_px` (`report.dropped_slivers` /
    `dropped_sliver_area_px`); a crack of length 0 is never reported. Holes inside a crack
    smaller than its squared maximum width are filled first (prediction noise, not concrete), so
    they neither cut the width nor loop the skeleton. `mm_per_px` adds millimetre twins of the
    figures. `source` names the mask's file in the report.
    """
    if mm_per_px is not None and not mm_per_px > 0:
        raise ValueError(f"mm_per_px must be positive, got {mm_per_px}")
    if not (gap_px >= 0 and min_length_px >= 0):
        raise ValueError(f"gap_px and min_length_px must be >= 0, got {gap_px}, {min_length_px}")
    binary = as_binary(mask)  # (H, W)
    bridged, n_bridges = bridge_gaps(binary, gap_px)  # (H, W)
    labels, n = ndi.label(bridged, structure=EIGHT)
    areas = np.bincount(labels[binary], minlength=n + 1)  # mask pixels only, bridges excluded
    report = CrackReport(
        height=binary.shape[0],
        width=binary.shape[1],
        cracks=[],
        min_area_px=min_area_px,
        min_length_px=min_length_px,
        gap_px=gap_px,
        mm_per_px=mm_per_px,
        bridged_gaps=n_bridges,
        source=source,
        width_map=np.zeros(binary.shape, dtype=np.float32),
    )
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        area = int(areas[index])
        if area < min_area_px:
            report.ignored_count += 1
            report.ignored_area_px += area
            continue
        component = np.pad(labels[box] == index, 1)  # (h + 2, w + 2)
        figures, width_map = _measure_one(component, _edge_gap(box, binary.shape))
        if not figures["length_px"] > 0 or figures["length_px"] < min_length_px:
            report.dropped_slivers += 1
            report.dropped_sliver_area_px += area
            continue
        inside = width_map[1:-1, 1:-1] * binary[box]  # bridges are not painted
        report.width_map[box] = np.maximum(report.width_map[box], inside)
        y, x = box[0].start, box[1].start
        h, w = box[0].stop - y, box[1].stop - x
        crack = Crack(id=len(report.cracks) + 1, area_px=area, bbox=(x, y, w, h), **figures)
        report.cracks.append(crack)
    return report


def local_width_map(mask, *, min_area_px: int = 0) -> np.ndarray:
    """(H, W) float32: at each crack pixel, the crack's width (px) at its nearest skeleton
    point; 0 on background and on components smaller than `min_area_px`."""
    return measure_cracks(mask, min_area_px=min_area_px).width_map
