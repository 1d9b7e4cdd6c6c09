"""Crack segmentation metrics: counts accumulated over a split, then scores (see `SegMetrics`)."""

from crackseg.metrics.report import format_table
from crackseg.metrics.seg_metrics import SegMetrics, probs_from_logits

__all__ = ["SegMetrics", "format_table", "probs_from_logits"]
