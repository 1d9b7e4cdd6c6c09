"""`crackseg measure` given a photo or an overlay instead of a mask: a one-line error that says
what to run instead, never "1 crack over 90% of the image". Converted masks (probability maps,
JPEG-saved masks) and binary masks of any crack share are still measured."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from crackseg.cli import main
from crackseg.errors import CrackSegError
from crackseg.measure.io import mid_tone_share, read_binary_mask


def crack_band(h: int = 96, w: int = 128) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[40:46, 10:118] = 1
    return mask


def photo(bright: bool, seed: int = 0) -> np.ndarray:
    """A textured colour 'photo' of concrete: bright (most pixels >= 90% of full scale) or dark."""
    rng = np.random.default_rng(seed)
    base = 235 if bright else 110
    image = rng.normal(base, 12, (96, 128, 3)).clip(0, 255).astype(np.uint8)
    image[40:46, 10:118] //= 3  # a dark crack
    return image


@pytest.mark.parametrize("bright", [True, False])
def test_a_photo_is_refused_naming_the_file_and_the_command_to_run(tmp_path, capsys, bright):
    path = tmp_path / "wall.jpg"
    Image.fromarray(photo(bright)).save(path, quality=90)
    code = main(["measure", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert str(path) in line and "a photo or an overlay, not a mask" in line
    assert "crackseg predict --measure" in line


def test_an_overlay_is_refused(tmp_path):
    image = photo(bright=False)
    image[crack_band() == 1] = (255, 0, 0)  # the crack painted red, as predict's overlay does
    Image.fromarray(image).save(tmp_path / "x_overlay.png")
    with pytest.raises(CrackSegError, match="x_overlay.png: a photo or an overlay"):
        read_binary_mask(tmp_path / "x_overlay.png")


def test_converted_masks_are_still_measured(tmp_path):
    band = crack_band()
    prob = (band * 230 + 3).astype(np.uint8)  # a probability map: near 0 or near full scale
    prob[39, 10:118] = prob[46, 10:118] = 128  # soft edges
    Image.fromarray(prob).save(tmp_path / "p_prob.png")
    Image.fromarray(band * 255).save(tmp_path / "m.jpg", quality=60)  # JPEG artefacts
    for name in ("p_prob.png", "m.jpg"):
        mask, note = read_binary_mask(tmp_path / name)
        assert note is not None  # converted, with a note
        assert abs(int(mask.sum()) - int(band.sum())) <= 2 * 108 + 10
    assert mid_tone_share(tmp_path / "p_prob.png") < 0.05


def test_a_binary_mask_is_measured_whatever_its_crack_share(tmp_path):
    """A binary mask is never second-guessed: only conversions are checked."""
    wide = np.zeros((32, 32), np.uint8)
    wide[:, 4:28] = 255  # 75% crack: a close-up of one wide crack
    Image.fromarray(wide).save(tmp_path / "close.png")
    mask, note = read_binary_mask(tmp_path / "close.png")
    assert note is None and mask.mean() == 0.75
