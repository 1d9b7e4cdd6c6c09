"""The one overlay/caption implementation: what each pixel becomes, and curves without pyplot."""

from __future__ import annotations

import numpy as np
import pytest

from crackseg.conventions import IGNORE_INDEX
from crackseg.visualize import CRACK_RGB, caption, label, overlay, save_curves


def test_overlay_colours_crack_greys_ignore_and_keeps_background():
    image = np.full((4, 4, 3), 100, dtype=np.uint8)
    mask = np.zeros((4, 4), dtype=np.uint8)
    mask[0, 0], mask[1, 1] = 1, IGNORE_INDEX
    out = overlay(image, mask, alpha=0.5)
    expected_crack = np.rint(0.5 * 100 + 0.5 * np.asarray(CRACK_RGB)).astype(int)
    assert np.abs(out[0, 0].astype(int) - expected_crack).max() <= 1
    assert out[1, 1].tolist() == [50, 50, 50]  # ignore: halved
    assert out[2, 2].tolist() == [100, 100, 100]  # background untouched
    assert image[0, 0].tolist() == [100, 100, 100]  # the input is not modified
    yellow = overlay(image, mask, alpha=1.0, ignore_color=(255, 220, 0))
    assert yellow[1, 1].tolist() == [255, 220, 0]


def test_overlay_rejects_a_mask_of_another_size():
    with pytest.raises(ValueError, match="mask"):
        overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8))


def test_caption_dims_a_band_and_writes_white_text_there_only():
    image = np.full((64, 200, 3), 150, dtype=np.uint8)
    out = caption(image, "prediction")
    band = out[:12, :60]
    assert band.max() > 200  # white glyphs
    assert (band == 50).any()  # dimmed to a third behind the text
    assert (out[40:] == 150).all()  # below the band nothing changes
    assert (image == 150).all()  # a copy


def test_label_draws_outlined_text_in_place():
    canvas = np.full((30, 60, 3), 128, dtype=np.uint8)
    label(canvas, "7", (5, 20), scale=0.8)
    assert canvas.max() > 230 and canvas.min() < 25  # white fill, black outline


def test_save_curves_writes_a_png_without_switching_the_backend(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    history = [
        {"epoch": 1, "train_loss": 0.9, "crack_iou": 0.2, "crack_f1": 0.3},
        {"epoch": 2, "train_loss": 0.5, "crack_iou": None},
    ]
    path = save_curves(history, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == before
