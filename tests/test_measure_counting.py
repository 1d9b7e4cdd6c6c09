"""Counting cracks as users do: small gaps along a crack are bridged, slivers are dropped (and
counted), and no crack is ever reported with length 0."""

import numpy as np
import pytest

from crackseg.measure import measure_cracks
from crackseg.measure.bridge import bridge_gaps


def dashed_line(width: int, gaps: list[int], angle_deg: float = 0.0, size: int = 200):
    """A straight crack of `width` px through the image centre, cut by the given gaps (px),
    evenly spaced along it; returns the mask and the crack's length in px."""
    length, pieces = 150, len(gaps) + 1
    run = (length - sum(gaps)) / pieces
    along, a = [], np.deg2rad(angle_deg)
    start = 0.0
    for gap in [*gaps, 0]:
        along.append((start, start + run))
        start += run + gap
    ys, xs = np.mgrid[:size, :size].astype(float)
    u = (xs - size / 2 + 0.3) * np.cos(a) - (ys - size / 2 + 0.2) * np.sin(a) + length / 2
    v = (xs - size / 2 + 0.3) * np.sin(a) + (ys - size / 2 + 0.2) * np.cos(a)
    inside = np.abs(v) <= width / 2
    mask = np.zeros((size, size), bool)
    for lo, hi in along:
        mask |= inside & (u >= lo) & (u < hi)
    return mask, length


@pytest.mark.parametrize("width", [1, 2, 3, 5])
@pytest.mark.parametrize("gaps", [[2], [3], [2, 3, 2]])
@pytest.mark.parametrize("angle", [0, 30, 90])
def test_a_line_with_small_gaps_is_one_crack_of_its_full_length(width, gaps, angle):
    mask, length = dashed_line(width, gaps, angle)
    assert measure_cracks(mask, gap_px=0).count == len(gaps) + 1  # the gaps are real
    report = measure_cracks(mask)
    assert report.count == 1 and report.bridged_gaps == len(gaps)
    assert report.cracks[0].length_px == pytest.approx(length, rel=0.05)
    assert report.cracks[0].area_px == mask.sum()  # a bridge adds no area
    assert report.cracks[0].mean_width_px == pytest.approx(width, abs=0.6)


@pytest.mark.parametrize("width", [1, 3])
def test_two_parallel_lines_10_px_apart_stay_two(width):
    mask = np.zeros((100, 200), bool)
    mask[40 : 40 + width, 20:180] = True
    mask[50 + width : 50 + 2 * width, 20:180] = True  # 10 px of background between them
    report = measure_cracks(mask, gap_px=12)
    assert report.count == 2 and report.bridged_gaps == 0


def test_tips_that_do_not_face_each_other_are_not_bridged():
    mask = np.zeros((100, 100), bool)
    mask[50, 10:50] = True  # ends at x = 49, pointing right
    mask[52:90, 51] = True  # its tip points up, across the first one's direction: not a gap
    assert measure_cracks(mask, min_area_px=1).count == 2


def test_a_gap_wider_than_gap_px_is_two_cracks():
    mask, _ = dashed_line(3, [12])
    assert measure_cracks(mask, gap_px=5).count == 2
    assert measure_cracks(mask, gap_px=14).count == 1


def test_an_isolated_2px_blob_is_not_a_crack_even_with_no_area_limit():
    mask = np.zeros((50, 50), bool)
    mask[20, 20:22] = True
    report = measure_cracks(mask, min_area_px=0)
    assert report.count == 0 and report.dropped_slivers == 1
    assert report.dropped_sliver_area_px == 2
    assert report.summary()["dropped_slivers"] == 1  # the totals say what was dropped


def test_no_crack_has_length_zero_whatever_the_limits():
    rng = np.random.default_rng(0)
    mask = rng.random((120, 120)) > 0.93  # specks and small clumps
    mask[60:63, 10:110] = True
    report = measure_cracks(mask, min_area_px=0, min_length_px=0)
    assert report.count >= 1
    assert all(c.length_px > 0 for c in report.cracks)
    kept = sum(c.area_px for c in report.cracks)
    assert kept + report.dropped_sliver_area_px + report.ignored_area_px == mask.sum()


def test_short_pieces_are_slivers_by_length():
    mask = np.zeros((60, 60), bool)
    mask[10:13, 10:16] = True  # 6 px long, area 18 >= min_area_px
    mask[40:43, 5:55] = True
    report = measure_cracks(mask, min_length_px=8)
    assert (report.count, report.dropped_slivers, report.dropped_sliver_area_px) == (1, 1, 18)
    assert measure_cracks(mask, min_length_px=3).count == 2


def test_bridge_gaps_leaves_a_single_crack_alone():
    mask, _ = dashed_line(3, [])
    bridged, n = bridge_gaps(mask, 5)
    assert n == 0 and (bridged == mask).all()
