"""Image reshapes: tiling round trips, hand-computed grayscale and downsizing, mosaic layout."""

import numpy as np
import pytest
import torch
from PIL import Image

from crackseg.imageops import downsize2x, mosaic, tile, to_grayscale, untile


def test_tile_order_is_row_major_and_values_are_the_blocks():
    image = np.arange(16).reshape(4, 4)  # (H, W) without channels also works
    tiles = tile(image, 2, 2)
    assert tiles.shape == (4, 2, 2)
    np.testing.assert_array_equal(tiles[0], [[0, 1], [4, 5]])
    np.testing.assert_array_equal(tiles[1], [[2, 3], [6, 7]])  # top-right comes second
    np.testing.assert_array_equal(tiles[2], [[8, 9], [12, 13]])


@pytest.mark.parametrize("as_tensor", [False, True])
def test_tile_untile_round_trip(as_tensor):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    if as_tensor:
        image = torch.from_numpy(image)
    tiles = tile(image, 3, 2)
    assert tuple(tiles.shape) == (2 * 4, 3, 2, 3)
    back = untile(tiles, p1=2, p2=4)
    assert type(back) is type(image)
    assert (back == image).all()


def test_tile_rejects_sizes_that_do_not_divide():
    with pytest.raises(ValueError, match="pad it to a multiple"):
        tile(np.zeros((5, 4, 3)), 2, 2)
    with pytest.raises(ValueError, match="expected p1\\*p2"):
        untile(np.zeros((3, 2, 2)), 2, 2)


def test_grayscale_hand_values_keep_uint8():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    gray = to_grayscale(rgb)
    assert gray.dtype == np.uint8
    # 0.299*255 = 76.2, 0.587*255 = 149.7, 0.114*255 = 29.1, white stays white
    np.testing.assert_array_equal(gray, [[76, 150, 29, 255]])


def test_grayscale_matches_pil_and_torch():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    ours = to_grayscale(rgb).astype(int)
    pil = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)
    assert np.abs(ours - pil).max() <= 1  # PIL uses the same BT.601 weights in fixed point
    np.testing.assert_array_equal(to_grayscale(torch.from_numpy(rgb)).numpy(), to_grayscale(rgb))
    floats = rgb.astype(np.float32) / 255
    assert to_grayscale(floats).dtype == np.float32
    np.testing.assert_allclose(to_grayscale(floats)[0, 0], rgb[0, 0] @ [0.299, 0.587, 0.114] / 255)


def test_grayscale_rejects_four_channels():
    with pytest.raises(ValueError, match="3 channels"):
        to_grayscale(np.zeros((2, 2, 4)))


def test_downsize2x_means_blocks_and_drops_odd_edge():
    image = np.array([[0, 2, 10, 10, 99], [4, 6, 10, 11, 99], [99, 99, 99, 99, 99]], np.uint8)
    small = downsize2x(image)  # the odd 3rd row and 5th column are dropped
    np.testing.assert_array_equal(small, [[3, 10]])  # 12/4 = 3; 41/4 = 10.25 -> 10
    assert small.dtype == np.uint8
    rgb = np.random.default_rng(2).random((4, 6, 3)).astype(np.float32)
    expected = rgb.reshape(2, 2, 3, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(downsize2x(rgb), expected, rtol=1e-6)
    np.testing.assert_allclose(downsize2x(torch.from_numpy(rgb)).numpy(), expected, rtol=1e-6)


def test_mosaic_pads_uneven_sizes_and_fills_empty_cells():
    a = np.full((2, 3, 3), 10, np.uint8)
    b = np.full((3, 2), 20, np.uint8)  # grayscale, repeated to RGB
    c = np.full((1, 1, 3), 30, np.uint8)
    out = mosaic([a, b, c], cols=2, fill=255)
    assert out.shape == (2 * 3, 2 * 3, 3)
    assert (out[:2, :3] == 10).all() and (out[2, :3] == 255).all()  # a, then padding below it
    assert (out[:3, 3:5] == 20).all() and (out[:3, 5] == 255).all()  # b, padded on the right
    assert (out[3, 0] == 30).all() and (out[3, 1:] == 255).all()  # c starts row 2
    assert (out[3:, 3:] == 255).all()  # the empty 4th cell


def test_mosaic_rejects_mixed_dtypes():
    with pytest.raises(ValueError, match="one dtype"):
        mosaic([np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.float32)], cols=2)
