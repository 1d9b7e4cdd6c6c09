"""Phone photo formats: HEIC/HEIF (iPhone cameras; the 'heic' extra, pillow-heif) and AVIF are
found in folders, read by predict, and served; without the extra a HEIC photo is a one-line
message that says how to read it, never silently passed over."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from bench_scripts import tiny_checkpoint
from cli_contract import assert_user_error, run_cli
from PIL import Image, features

from crackseg.data.io import read_image
from crackseg.errors import CrackSegError
from crackseg.inputs import expand_inputs
from crackseg.serve.upload import UploadError, accepted_formats, decode_upload

pillow_heif = pytest.importorskip("pillow_heif", reason="the 'heic' extra is not installed")
_y, _x = np.mgrid[0:60, 0:80]  # smooth and asymmetric: survives HEIC's lossy coding, shows a flip
PIXELS = np.stack([_x * 3, _y * 4, np.full_like(_x, 128)], axis=-1).astype(np.uint8)


@pytest.fixture
def photos(tmp_path):
    pillow_heif.register_heif_opener()
    folder = tmp_path / "phone"
    folder.mkdir()
    Image.fromarray(PIXELS).save(folder / "a.heic")
    Image.fromarray(PIXELS).save(folder / "b.jpg")
    return folder


@pytest.fixture
def without_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # `import pillow_heif` fails


def test_a_heic_photo_is_read_at_its_size(photos):
    image = read_image(photos / "a.heic")
    assert image.shape == (60, 80, 3) and image.dtype == np.uint8
    assert np.abs(image.astype(int) - PIXELS).mean() < 8  # lossy, but the same picture


def test_a_heic_photo_under_a_jpg_name_is_read(photos):
    (photos / "a.heic").rename(photos / "renamed.jpg")
    assert read_image(photos / "renamed.jpg").shape == (60, 80, 3)


def test_predict_reads_the_heic_photos_of_a_folder(capsys, tmp_path, photos):
    assert expand_inputs([str(photos)]) == [photos / "a.heic", photos / "b.jpg"]
    checkpoint = tiny_checkpoint(tmp_path / "tiny.ckpt")
    result = run_cli(capsys, "predict", "--checkpoint", checkpoint, photos, "--out", tmp_path / "o")
    assert result.code == 0, result.err
    assert (tmp_path / "o" / "a_mask.png").is_file() and (tmp_path / "o" / "b_mask.png").is_file()


def test_without_the_extra_a_heic_photo_says_how_to_read_it(
    capsys, tmp_path, photos, without_extra
):
    with pytest.raises(CrackSegError, match=r"a\.heic: a HEIC/HEIF photo .*crackseg\[heic\]"):
        read_image(photos / "a.heic")
    checkpoint = tiny_checkpoint(tmp_path / "tiny.ckpt")
    result = run_cli(capsys, "predict", "--checkpoint", checkpoint, photos, "--out", tmp_path / "o")
    assert "skipped" in result.err and "pip install 'crackseg[heic]'" in result.err
    assert_user_error(result, "1 of 2 images could not be read", code=1)
    assert (tmp_path / "o" / "b_mask.png").is_file()


def test_only_heic_photos_without_the_extra_is_one_line_before_any_work(
    capsys, tmp_path, photos, without_extra
):
    (photos / "b.jpg").unlink()
    (photos / "c.HEIC").write_bytes((photos / "a.heic").read_bytes())
    result = run_cli(capsys, "predict", photos, "--out", tmp_path / "o")  # no model is loaded
    assert_user_error(result, "2 HEIC/HEIF photo(s)", "no other image", "crackseg[heic]")
    assert "skipped" not in result.err and not (tmp_path / "o").exists()


def test_serve_decodes_a_heic_upload_and_lists_the_formats(photos):
    data = (photos / "a.heic").read_bytes()
    assert decode_upload(data, max_pixels=10**6).shape == (60, 80, 3)
    assert "HEIC" in accepted_formats()
    assert ("AVIF" in accepted_formats()) == features.check("avif")


def test_serve_without_the_extra_refuses_heic_with_the_remedy(photos, without_extra):
    with pytest.raises(UploadError) as caught:
        decode_upload((photos / "a.heic").read_bytes(), max_pixels=10**6, name="IMG_1.HEIC")
    assert caught.value.status == 415
    assert "IMG_1.HEIC" in caught.value.message and "crackseg[heic]" in caught.value.message
    assert "HEIC" not in accepted_formats()


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow reads no AVIF")
def test_an_avif_photo_is_found_and_read(tmp_path):
    Image.fromarray(PIXELS).save(tmp_path / "x.avif")
    assert expand_inputs([str(tmp_path)]) == [tmp_path / "x.avif"]
    assert read_image(tmp_path / "x.avif").shape == (60, 80, 3)
    assert decode_upload((tmp_path / "x.avif").read_bytes(), max_pixels=10**6).shape == (60, 80, 3)


def test_a_failed_upload_names_a_heic_or_avif_photo_by_its_header():
    from crackseg.serve.upload import _what_is_it

    def box(brand: bytes) -> bytes:
        return b"\x00\x00\x00\x1cftyp" + brand + bytes(16)

    for brand in (b"heic", b"mif1", b"avif"):
        assert "HEIC/AVIF photo" in _what_is_it(box(brand)), brand
    assert _what_is_it(box(b"isom")) == ""  # an MP4 video is not named a photo
