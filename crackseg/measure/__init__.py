"""Crack measurement from binary masks: per-crack length, width, orientation and extent,
per-image totals, and an overlay coloured by local width."""

from crackseg.measure.core import as_binary, local_width_map, measure_cracks
from crackseg.measure.overlay import width_overlay
from crackseg.measure.report import Crack, CrackReport

__all__ = [
    "Crack",
    "CrackReport",
    "as_binary",
    "local_width_map",
    "measure_cracks",
    "width_overlay",
]
