"""Synthetic cracks: exact geometry (render_crack) and the generated Ultralytics-layout dataset."""

import numpy as np
import pytest

from crackseg.data.synthetic import render_crack


@pytest.mark.parametrize("kind", ["straight", "curved", "branching"])
@pytest.mark.parametrize("width", [1, 3, 8])
def test_render_crack_area_matches_length_times_width(kind, width):
    mask, length, true_width = render_crack(kind, width=width, size=256, seed=3)
    assert mask.dtype == np.uint8 and mask.shape == (256, 256)
    assert set(np.unique(mask)) == {0, 1}
    assert true_width == width and length > 100
    # a band of half-width w/2 around a centreline of length L has area L*w + the round caps
    expected = length * width + np.pi * width**2 / 4
    assert mask.sum() == pytest.approx(expected, rel=0.05)


def test_render_crack_is_seeded():
    a = render_crack("branching", width=2, size=128, seed=7)
    b = render_crack("branching", width=2, size=128, seed=7)
    c = render_crack("branching", width=2, size=128, seed=8)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0])


def test_render_crack_stays_inside_and_branches():
    mask, length, _ = render_crack("branching", width=4, size=256, seed=0)
    assert mask[0].sum() == mask[-1].sum() == mask[:, 0].sum() == mask[:, -1].sum() == 0
    straight_mask, straight_length, _ = render_crack("straight", width=4, size=256, seed=0)
    assert length > straight_length * 1.1  # branches add length
