"""Measurement results: one `Crack` per connected crack, one `CrackReport` per image.

Pixel figures are always present; with `mm_per_px` set, each length or width gets a `_mm`
twin (areas a `_mm2` one). Conventions: bbox is (x, y, w, h) in pixels with x to the right
and y down; orientation is in degrees in (-90, 90], 0 = horizontal, counter-clockwise as seen
on screen positive (a crack rising to the right is positive, 90 = vertical).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Crack:
    """One connected crack (8-connectivity)."""

    id: int  # 1-based, in raster order of the crack's first pixel
    area_px: int
    length_px: float  # of the centreline (pruned skeleton), to the image edge if it runs out
    mean_width_px: float  # mean local width along the skeleton, junction zones left out
    max_width_px: float
    orientation_deg: float
    bbox: tuple[int, int, int, int]  # (x, y, w, h)
    n_branches: int


@dataclass
class CrackReport:
    """Measurements of every crack in one mask, plus what was ignored."""

    height: int
    width: int
    cracks: list[Crack]
    ignored_count: int = 0  # components smaller than min_area_px
    ignored_area_px: int = 0
    min_area_px: int = 0
    dropped_slivers: int = 0  # components of at least min_area_px but shorter than min_length_px
    dropped_sliver_area_px: int = 0
    min_length_px: float = 0.0
    bridged_gaps: int = 0  # gaps between facing crack tips joined (each joins two pieces)
    gap_px: float = 0.0
    mm_per_px: float | None = None
    source: str | None = None  # file the mask came from, if any
    width_map: np.ndarray | None = field(default=None, repr=False, compare=False)  # (H, W)

    @property
    def count(self) -> int:
        return len(self.cracks)

    @property
    def total_length_px(self) -> float:
        return float(sum(c.length_px for c in self.cracks))

    @property
    def max_width_px(self) -> float:
        return max((c.max_width_px for c in self.cracks), default=0.0)

    @property
    def area_fraction(self) -> float:
        """Share of the image covered by measured cracks (ignored specks not included)."""
        return sum(c.area_px for c in self.cracks) / float(self.height * self.width)

    def _mm(self, row: dict, keys: tuple[str, ...]) -> dict:
        """Add `_mm` (and `_mm2` for areas) twins of the pixel figures in `keys`."""
        if self.mm_per_px is None:
            return row
        for key in keys:
            if key.startswith("area"):
                row[key.replace("_px", "_mm2")] = row[key] * self.mm_per_px**2
            else:
                row[key.replace("_px", "_mm")] = row[key] * self.mm_per_px
        return row

    def summary(self) -> dict:
        """Per-image figures (one CSV row / the top of the JSON object)."""
        row = {
            "image": self.source,
            "height": self.height,
            "width": self.width,
            "count": self.count,
            "total_length_px": round(self.total_length_px, 2),
            "max_width_px": round(self.max_width_px, 2),
            "area_fraction": round(self.area_fraction, 6),
            "ignored_count": self.ignored_count,
            "ignored_area_px": self.ignored_area_px,
            "min_area_px": self.min_area_px,
            "dropped_slivers": self.dropped_slivers,
            "dropped_sliver_area_px": self.dropped_sliver_area_px,
            "min_length_px": self.min_length_px,
            "bridged_gaps": self.bridged_gaps,
            "gap_px": self.gap_px,
            "mm_per_px": self.mm_per_px,
        }
        return self._mm(row, ("total_length_px", "max_width_px"))

    def to_rows(self) -> list[dict]:
        """One flat dict per crack, for CSV; the bbox is split into bbox_x/y/w/h."""
        rows = []
        for crack in self.cracks:
            row = {"image": self.source, **asdict(crack)}
            x, y, w, h = row.pop("bbox")
            row.update(bbox_x=x, bbox_y=y, bbox_w=w, bbox_h=h)
            for key in ("length_px", "mean_width_px", "max_width_px", "orientation_deg"):
                row[key] = round(row[key], 2)
            rows.append(self._mm(row, ("area_px", "length_px", "mean_width_px", "max_width_px")))
        return rows

    @staticmethod
    def columns(mm_per_px: float | None = None) -> tuple[list[str], list[str]]:
        """CSV headers (per crack, per image), the same whether or not there are cracks."""
        dummy = Crack(0, 0, 0.0, 0.0, 0.0, 0.0, (0, 0, 0, 0), 0)
        report = CrackReport(1, 1, [dummy], mm_per_px=mm_per_px)
        return list(report.to_rows()[0]), list(report.summary())

    def to_dict(self) -> dict:
        """JSON-ready: the summary plus a `cracks` list."""
        cracks = [{k: v for k, v in row.items() if k != "image"} for row in self.to_rows()]
        return {**self.summary(), "cracks": cracks}
