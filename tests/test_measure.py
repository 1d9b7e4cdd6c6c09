"""Crack measurement on cracks of known geometry: own strokes, then the synthetic generator."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from crackseg.cli import main
from crackseg.measure import CrackReport, local_width_map, measure_cracks, width_overlay
from crackseg.measure.io import read_binary_mask


def stroke(points, width: float, size: int = 256) -> np.ndarray:
    """Pixels whose centre lies within width/2 of the polyline `points` [(x, y), ...]: a crack of
    known centreline length and width, with round ends (the model the measurement uses)."""
    ys, xs = np.mgrid[:size, :size].astype(float)
    dist = np.full((size, size), np.inf)
    for (ax, ay), (bx, by) in zip(points[:-1], points[1:], strict=True):
        dx, dy = bx - ax, by - ay
        t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / (dx * dx + dy * dy), 0, 1)
        dist = np.minimum(dist, np.hypot(xs - ax - t * dx, ys - ay - t * dy))
    return (dist <= width / 2).astype(np.uint8)


def polyline_length(points) -> float:
    return float(np.linalg.norm(np.diff(np.asarray(points, float), axis=0), axis=1).sum())


def segment(length: float, angle_deg: float, centre=(128.3, 127.7)):
    """End points of a segment; angle counter-clockwise on screen (y points down). The centre is
    off the pixel grid so that no pixel centre sits exactly on the band's edge."""
    a = np.deg2rad(angle_deg)
    half = np.array([np.cos(a), -np.sin(a)]) * length / 2
    return [tuple(np.asarray(centre) - half), tuple(np.asarray(centre) + half)]


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 6])
def test_band_across_the_image_reads_its_exact_width_and_the_image_width(width):
    mask = np.zeros((40, 120), np.uint8)
    mask[10 : 10 + width] = 1  # runs out of the image on both sides
    crack = measure_cracks(mask).cracks[0]
    assert crack.mean_width_px == pytest.approx(width, abs=0.02)
    assert crack.max_width_px == pytest.approx(width)
    assert crack.length_px == pytest.approx(120, abs=0.5)  # measured to the image edges
    assert crack.orientation_deg == 0


@pytest.mark.parametrize("width", [1, 3, 6])
@pytest.mark.parametrize("angle", [0, 22.5, 45, 70, -30])
def test_straight_stroke_length_and_width(width, angle):
    points = segment(160, angle)
    crack = measure_cracks(stroke(points, width)).cracks[0]
    # counting 8-neighbour steps (1 or sqrt 2) would read 8% long at 22.5 degrees
    assert crack.length_px == pytest.approx(160, rel=0.02)
    # a 45-degree band of pixels is wider than its nominal width (3 -> 3.55 px by area)
    assert crack.mean_width_px == pytest.approx(width, abs=1.0)
    assert crack.orientation_deg == pytest.approx(angle, abs=1.0)
    assert crack.n_branches == 1


@pytest.mark.parametrize("width", [2, 5, 8])
def test_arc_length(width):
    theta = np.linspace(0, np.pi, 200)
    points = list(zip(128 + 80 * np.cos(theta), 150 - 80 * np.sin(theta), strict=True))
    crack = measure_cracks(stroke(points, width)).cracks[0]
    assert crack.length_px == pytest.approx(np.pi * 80, rel=0.02)
    assert crack.mean_width_px == pytest.approx(width, abs=0.6)
    assert crack.orientation_deg == pytest.approx(0, abs=1.0)  # the chord is horizontal


@pytest.mark.parametrize("width", [2, 5, 8])
def test_y_branch_length_and_width_leave_the_junction_out(width):
    centre = (128.0, 128.0)
    arms = [segment(160, angle, centre)[1] for angle in (-90, 60, 120)]  # 80 px each
    mask = np.maximum.reduce([stroke([centre, arm], width) for arm in arms])
    crack = measure_cracks(mask).cracks[0]
    assert crack.n_branches == 3
    assert crack.length_px == pytest.approx(240, rel=0.03)
    assert crack.mean_width_px == pytest.approx(width, abs=0.6)
    # the inscribed circle at the junction is wider than any arm; it is not the crack's width
    assert crack.max_width_px <= width + 1
    if width >= 5:
        assert local_width_map(mask).max() > width + 1


def test_spurs_from_edge_bumps_are_pruned():
    smooth = stroke(segment(160, 0), 9)  # rows 124..132
    mask = smooth.copy()
    for x in (70, 100, 130, 160):
        mask[122:124, x : x + 2] = 1  # 2-px bumps on the top edge
        mask[133:135, x + 10 : x + 12] = 1  # and on the bottom edge
    crack = measure_cracks(mask).cracks[0]
    assert crack.n_branches == 1
    assert crack.length_px == pytest.approx(measure_cracks(smooth).total_length_px, rel=0.02)


def test_small_holes_are_filled():
    mask = stroke(segment(160, 10), 7)
    mask[126:128, 100] = 0  # a 2-px hole inside the crack
    crack = measure_cracks(mask).cracks[0]
    assert crack.n_branches == 1  # no loop around the hole
    assert crack.length_px == pytest.approx(160, rel=0.02)
    assert crack.area_px == mask.sum()  # the area is the mask's own
    assert local_width_map(mask)[126, 100] == 0  # and the hole is not painted as crack


def test_small_components_are_ignored_and_counted():
    mask = stroke(segment(100, 0), 3)
    for x in (10, 20, 30):
        mask[10:12, x : x + 2] = 1  # three 4-px specks
    report = measure_cracks(mask, min_area_px=10)
    assert (report.count, report.ignored_count, report.ignored_area_px) == (1, 3, 12)
    assert report.area_fraction == pytest.approx((mask.sum() - 12) / mask.size)
    specks_measured = measure_cracks(mask, min_area_px=1)  # too short to be cracks: slivers
    assert (specks_measured.count, specks_measured.dropped_slivers) == (1, 3)
    assert specks_measured.dropped_sliver_area_px == 12


def test_ids_bboxes_and_image_totals():
    mask = np.zeros((100, 200), np.uint8)
    mask[20:23, 10:90] = 1  # crack 1: first in raster order
    mask[50:95, 150:155] = 1  # crack 2: vertical, 5 px wide
    report = measure_cracks(mask)
    first, second = report.cracks
    assert (first.id, first.bbox) == (1, (10, 20, 80, 3))
    assert (second.id, second.bbox) == (2, (150, 50, 5, 45))
    assert second.orientation_deg == 90
    assert report.count == 2
    assert report.total_length_px == pytest.approx(first.length_px + second.length_px)
    assert report.max_width_px == pytest.approx(5)


def test_mm_per_px_scales_lengths_widths_and_areas():
    mask = stroke(segment(120, 30), 4)
    px, mm = measure_cracks(mask), measure_cracks(mask, mm_per_px=0.5)
    row = mm.to_rows()[0]
    assert row["length_mm"] == pytest.approx(0.5 * px.cracks[0].length_px, abs=0.01)
    assert row["mean_width_mm"] == pytest.approx(0.5 * px.cracks[0].mean_width_px, abs=0.01)
    assert row["area_mm2"] == pytest.approx(0.25 * mask.sum())
    assert mm.summary()["total_length_mm"] == pytest.approx(0.5 * px.total_length_px, abs=0.01)
    assert "length_mm" not in px.to_rows()[0]
    with pytest.raises(ValueError, match="positive"):
        measure_cracks(mask, mm_per_px=0)


def test_mask_encodings_give_the_same_report():
    mask = stroke(segment(120, 15), 3)
    rgb = np.zeros((*mask.shape, 3), np.uint8)
    rgb[mask > 0] = (255, 0, 0)
    reports = [measure_cracks(m) for m in (mask, mask.astype(bool), mask * 255, rgb)]
    assert all(r.cracks == reports[0].cracks for r in reports)


def test_report_serialises_and_columns_match_rows():
    report = measure_cracks(stroke(segment(100, 0), 3), mm_per_px=0.1, source="a.png")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["image"] == "a.png" and data["count"] == 1
    assert set(data["cracks"][0]) >= {"length_px", "length_mm", "bbox_x", "orientation_deg"}
    crack_cols, image_cols = CrackReport.columns(0.1)
    assert list(report.to_rows()[0]) == crack_cols
    assert list(report.summary()) == image_cols


def test_width_overlay_colours_by_width():
    mask = np.maximum(stroke(segment(100, 0, (128, 60)), 2), stroke(segment(100, 0, (128, 180)), 9))
    report = measure_cracks(mask)
    overlay = width_overlay(None, mask, report)
    assert overlay.shape == (256, 256 + 72, 3) and overlay.dtype == np.uint8
    thin, wide = overlay[60, 128], overlay[180, 128]
    assert not np.array_equal(thin, wide)
    assert np.array_equal(overlay[5, 5], [24, 24, 24])  # background untouched
    photo = np.full((256, 256, 3), 200, np.uint8)
    on_photo = width_overlay(photo, mask, report)
    assert np.array_equal(on_photo[180, 128], wide) and on_photo[5, 5, 0] == 120  # photo dimmed
    with pytest.raises(ValueError, match="does not belong"):
        width_overlay(None, mask[:100], report)


def test_read_binary_mask_formats(tmp_path):
    mask = stroke(segment(60, 0, (32, 32)), 3, size=64)
    Image.fromarray(mask * 255).save(tmp_path / "a.png")
    Image.fromarray(np.stack([mask * 255] * 3 + [np.full_like(mask, 255)], axis=2)).save(
        tmp_path / "b.png"
    )  # RGBA with an opaque alpha channel: alpha is not a crack
    Image.fromarray(mask * 255).save(tmp_path / "c.jpg", quality=70)  # faint JPEG artefacts
    for name in ("a.png", "b.png"):
        binary, note = read_binary_mask(tmp_path / name)
        np.testing.assert_array_equal(binary, mask > 0)
        assert note is None
    jpeg, note = read_binary_mask(tmp_path / "c.jpg")
    assert (jpeg != (mask > 0)).sum() < 10 and "thresholded" in note


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["measure", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_csv_and_overlays(tmp_path, capsys):
    masks = []
    for i, angle in enumerate((0, 40)):
        path = tmp_path / f"m{i}.png"
        Image.fromarray(stroke(segment(150, angle), 4) * 255).save(path)
        masks.append(path)
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(empty)
    args = ["--json", "--mm-per-px", "0.2", "--csv", tmp_path / "c.csv"]
    args += ["--summary-csv", tmp_path / "s.csv", "--overlay-dir", tmp_path / "ov"]
    code, out, err = run_cli(capsys, *masks, empty, *args)
    assert code == 0, err
    images = json.loads(out)["images"]
    assert [im["count"] for im in images] == [1, 1, 0]
    assert images[0]["cracks"][0]["length_mm"] == pytest.approx(0.2 * 150, rel=0.02)
    cracks = list(csv.DictReader((tmp_path / "c.csv").read_text().splitlines()))
    assert [row["image"] for row in cracks] == [str(m) for m in masks]
    summary = list(csv.DictReader((tmp_path / "s.csv").read_text().splitlines()))
    assert [row["count"] for row in summary] == ["1", "1", "0"]  # the empty mask is listed
    assert sorted(p.name for p in (tmp_path / "ov").iterdir()) == [
        "empty_width.png",
        "m0_width.png",
        "m1_width.png",
    ]


def test_cli_plain_output_and_min_area(tmp_path, capsys):
    mask = stroke(segment(100, 0), 3) * 255
    mask[5:7, 5:7] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    code, out, _ = run_cli(capsys, tmp_path / "m.png", "--min-area", "5")
    assert code == 0
    assert "1 crack(s)" in out and "1 speck(s) under 5 px ignored" in out


def test_cli_notes_converted_masks_and_skips_ignore_pixels(tmp_path, capsys):
    mask = stroke(segment(100, 0), 3)
    Image.fromarray(mask * 255).save(tmp_path / "j.jpg", quality=70)
    with_ignore = mask.copy()
    with_ignore[10:20, 10:60] = 255  # an ignore region: not a crack
    Image.fromarray(with_ignore).save(tmp_path / "i.png")
    code, out, err = run_cli(capsys, tmp_path / "j.jpg", tmp_path / "i.png", "--json")
    assert code == 0
    assert f"note: {tmp_path / 'j.jpg'}" in err
    assert [im["count"] for im in json.loads(out)["images"]] == [1, 1]


@pytest.mark.parametrize("content", [None, b"not an image"])
def test_cli_bad_mask_is_one_line_naming_the_file(tmp_path, capsys, content):
    bad = tmp_path / "bad.png"
    if content is not None:
        bad.write_bytes(content)
    code, out, err = run_cli(capsys, bad)
    assert code == 2
    assert str(bad) in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("width", range(1, 9))
@pytest.mark.parametrize("kind", ["straight", "curved", "branching"])
def test_against_synthetic_cracks_of_known_length_and_width(kind, width):
    from crackseg.data.synthetic import render_crack

    for seed in (0, 1):
        mask, true_length, true_width = render_crack(kind, width=width, size=256, seed=seed)
        report = measure_cracks(mask)
        assert report.count == 1
        assert report.total_length_px == pytest.approx(true_length, rel=0.05)
        assert report.cracks[0].mean_width_px == pytest.approx(true_width, abs=1.0)
        assert report.max_width_px == pytest.approx(true_width, abs=1.0)
        if kind != "branching":
            assert report.cracks[0].n_branches == 1


@pytest.mark.parametrize(
    "flags, word",
    [(["--mm-per-px", "-1"], "--mm-per-px"), (["--mm-per-px", "inf"], "--mm-per-px"),
     (["--min-area", "-1"], "--min-area"), (["--gap-px", "-2"], "--gap-px"),
     (["--gap-px", "nan"], "--gap-px"), (["--min-length", "-1"], "--min-length")],
)  # fmt: skip
def test_cli_bad_numbers_are_one_line_naming_the_flag(tmp_path, capsys, flags, word):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "m.png")
    code, _, err = run_cli(capsys, tmp_path / "m.png", *flags)
    assert code == 2 and word in err and len(err.strip().splitlines()) == 1


def test_cli_joins_a_broken_crack_and_says_what_it_dropped(tmp_path, capsys):
    mask = np.zeros((60, 120), np.uint8)
    mask[30:33, 10:50] = 255
    mask[30:33, 53:110] = 255  # the same crack after a 3-px gap
    mask[5:8, 5:10] = 255  # a 5-px sliver (area 15)
    Image.fromarray(mask).save(tmp_path / "m.png")
    code, out, _ = run_cli(capsys, tmp_path / "m.png")
    assert code == 0 and "1 crack(s)" in out
    assert "1 sliver(s) under 8 px long dropped" in out and "1 gap(s) bridged" in out
    code, out, _ = run_cli(capsys, tmp_path / "m.png", "--gap-px", "0", "--min-length", "2")
    assert "3 crack(s)" in out
