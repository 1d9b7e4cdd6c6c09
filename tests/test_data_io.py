"""Image/mask reading rules, polygon filling and COCO RLE, on files written in tmp_path."""

import numpy as np
import pytest
from PIL import Image
from test_data_helpers import SQUARE, SQUARE_PIXELS_100, write_image, write_mask

from crackseg.data import read_image, read_mask
from crackseg.data.io import read_mask_checked
from crackseg.data.rasterize import fill_polygons, mask_to_polygons, rle_decode, rle_encode
from crackseg.errors import CrackSegError


def test_read_image_modes_give_uint8_rgb(tmp_path):
    for mode in ("RGB", "L", "RGBA", "P", "CMYK"):
        suffix = ".jpg" if mode == "CMYK" else ".png"
        path = write_image(tmp_path / f"im_{mode}{suffix}", hw=(30, 40), mode=mode)
        arr = read_image(path)
        assert arr.dtype == np.uint8 and arr.shape == (30, 40, 3), mode
    Image.fromarray(np.full((5, 6), 60000, np.uint16)).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png").max() == 233  # 16-bit scaled, not clipped to 255


def test_read_image_applies_exif_orientation(tmp_path):
    arr = np.zeros((20, 50, 3), np.uint8)
    arr[:, :10] = 255  # a white band on the left
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "phone.jpg", exif=exif)
    out = read_image(tmp_path / "phone.jpg")
    assert out.shape == (50, 20, 3)
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # the band is now at the top


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p.write_bytes(b"not an image at all"), "not a readable image"),
        (lambda p: p.write_bytes(b""), "not a readable image"),
        (lambda p: p.mkdir(), "is a folder, not a file"),
    ],
)
def test_read_image_errors_name_the_file(tmp_path, make, expected):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(CrackSegError, match=expected) as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_truncated_image_is_an_error(tmp_path):
    good = write_image(tmp_path / "good.jpg", hw=(64, 64))
    data = good.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(CrackSegError, match="cut.jpg: corrupt or truncated"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(CrackSegError, match="not found"):
        read_image(tmp_path / "missing.jpg")


def _mask_file(tmp_path, arr, mode=None, name="m.png"):
    return write_mask(tmp_path / name, arr, mode)


def test_mask_value_rules(tmp_path):
    base = np.zeros((8, 8), np.uint8)
    base[2:4, 2:6] = 1
    want = base.copy()
    for values, mode in [((0, 255), None), ((0, 1), None), ((0, 38), None), ((0, 1), "1")]:
        arr = np.where(base == 1, values[1], values[0]).astype(np.uint8)
        if mode == "1":
            arr = arr * 255
        mask, note = read_mask_checked(_mask_file(tmp_path, arr, mode))
        assert np.array_equal(mask, want) and note is None, (values, mode)
    # palette mask: indices, not colours
    pal = Image.fromarray(base, mode="L").convert("P")
    pal.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    pal.save(tmp_path / "pal.png")
    assert np.array_equal(read_mask(tmp_path / "pal.png"), want)
    # {0, 1, 255}: 255 is ignore
    ign = base.copy()
    ign[0, 0] = 255
    assert read_mask(_mask_file(tmp_path, ign))[0, 0] == 255
    # coloured masks: red cracks on black
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[base == 1] = (255, 0, 0)
    assert np.array_equal(read_mask(_mask_file(tmp_path, rgb)), want)


def test_nonbinary_mask_is_thresholded_and_reported(tmp_path):
    arr = np.zeros((8, 8), np.uint8)
    arr[:, :4] = 200
    arr[:, 4:6] = 100  # anti-aliased edge
    path = _mask_file(tmp_path, arr)
    mask, note = read_mask_checked(path)
    assert note and "not binary" in note
    assert mask[:, :4].all() and not mask[:, 4:].any()
    with pytest.raises(CrackSegError, match="m.png: mask is not binary"):
        read_mask(path, strict=True)
    classes = np.zeros((8, 8), np.uint8)
    classes[0, :3] = (1, 2, 3)
    mask, note = read_mask_checked(_mask_file(tmp_path, classes, name="cls.png"))
    assert mask.sum() == 3 and "class-index" in note


def test_square_polygon_rasterises_to_expected_pixels():
    polygon = np.array(SQUARE, np.float32).reshape(-1, 2)
    mask = fill_polygons([(1, polygon)], (100, 100))
    assert mask.sum() == SQUARE_PIXELS_100
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (25, 75, 25, 75)
    # non-square images: x scales with W, y with H; a zero-area outline still gives a 1 px line
    assert fill_polygons([(1, polygon)], (50, 200)).sum() == 26 * 101
    line = np.array([[0.1, 0.5], [0.9, 0.5], [0.9, 0.5], [0.1, 0.5]], np.float32)
    assert fill_polygons([(1, line)], (100, 100)).sum() == 81


def test_mask_to_polygons_round_trips(tmp_path):
    from crackseg.data.synthetic import render_crack

    for kind, width in [("curved", 1), ("branching", 3), ("straight", 6)]:
        mask, _, _ = render_crack(kind, width=width, size=128, seed=width)
        polygons = [(1, p) for p in mask_to_polygons(mask)]
        assert np.array_equal(fill_polygons(polygons, mask.shape), mask), kind


def test_rle_matches_pycocotools_reference():
    # pycocotools.mask.encode of this 7x9 mask gives b"01>3E00000c0M" (checked once, offline)
    mask = np.zeros((7, 9), np.uint8)
    mask[1:5, 2:6] = 1
    mask[6, 8] = 1
    mask[0, 0] = 1
    assert rle_encode(mask)["counts"] == "01>3E00000c0M"
    assert np.array_equal(rle_decode({"size": [7, 9], "counts": "01>3E00000c0M"}), mask)
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = (rng.random(rng.integers(1, 40, 2)) < rng.random()).astype(np.uint8)
        for compressed in (True, False):
            assert np.array_equal(rle_decode(rle_encode(m, compressed=compressed)), m)
    with pytest.raises(ValueError, match="sum"):
        rle_decode({"size": [2, 2], "counts": [1, 1]})


@pytest.mark.parametrize("counts", ["", "0", "6<1", "zzzz", "\x7f\x7f", [5, -2, 17], [3, 3]])
def test_malformed_rle_is_an_error_not_garbage_pixels(counts):
    # pycocotools alone decodes "" or "0" into uninitialised pixels; we check before trusting it
    with pytest.raises(ValueError, match="RLE"):
        rle_decode({"size": [4, 5], "counts": counts})
