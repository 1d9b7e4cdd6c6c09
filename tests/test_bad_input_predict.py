"""Bad input to `crackseg predict` (and `serve` where it applies), built on the fly: bad flags are
one error line with exit 2 before any work; a folder with some unreadable images reports each one
on its own line, writes the others exactly as for a clean folder, and exits 1."""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
import torch
from cli_contract import assert_user_error, run_cli, run_cli_process, written_results
from PIL import Image

import crackseg
from crackseg.engine.checkpoint import model_payload, save_checkpoint

CONFIG = {"image_size": 64, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A freshly built (untrained) unet_small saved with the project's own checkpoint code."""
    torch.manual_seed(0)
    model = crackseg.build_model("unet_small", base_channels=4, depth=2)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    return save_checkpoint({**model_payload(model), "config": CONFIG}, path)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def good_image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (40, 48, 3), dtype=np.uint8)


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (over Pillow's bomb limit)."""
    data = bytearray(png_bytes(np.zeros((8, 8), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def write_bad(folder, kind: str):
    """One bad 'image' of `kind` in `folder`; returns its path and a word its message contains."""
    if kind == "empty":
        path = folder / "empty.jpg"
        path.write_bytes(b"")
        return path, "not a readable image"
    if kind == "truncated":
        path = folder / "cut.png"
        path.write_bytes(png_bytes(good_image(9))[:300])
        return path, "truncated"
    if kind == "not_an_image":
        path = folder / "notes.png"
        path.write_text("these are my notes, not pixels")
        return path, "not a readable image"
    if kind == "bomb":
        path = folder / "bomb.png"
        path.write_bytes(bomb_png())
        return path, "decompression bomb"
    if kind == "folder":
        path = folder / "x.jpg"
        path.mkdir()
        return path, "a folder, not an image"
    raise ValueError(kind)


def good_folder(folder):
    folder.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(good_image(i)).save(folder / f"good{i}.png")
    return folder


def predict(capsys, checkpoint, *args):
    return run_cli(capsys, "predict", "--checkpoint", checkpoint, *args)


BAD_KINDS = ["empty", "truncated", "not_an_image", "bomb", "folder"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_bad_image_in_a_folder_is_reported_skipped_and_the_rest_written(
    tmp_path, capsys, checkpoint, kind
):
    clean = predict(capsys, checkpoint, good_folder(tmp_path / "clean"), "--out", tmp_path / "a")
    assert clean.code == 0, clean.err
    mixed = good_folder(tmp_path / "mixed")
    bad, word = write_bad(mixed, kind)
    result = predict(capsys, checkpoint, mixed, "--out", tmp_path / "b", "--measure")
    assert_user_error(result, "1 of 3 images could not be read", code=1)
    skipped = [line for line in result.err.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and str(bad) in skipped[0] and word in skipped[0], result.err
    rows = json.loads((tmp_path / "b" / "predictions.json").read_text())
    assert [row["image"] for row in rows] == [str(mixed / "good0.png"), str(mixed / "good1.png")]
    for i in range(2):  # the good images' outputs are those of a clean run
        for suffix in ("mask", "prob", "overlay"):
            name = f"good{i}_{suffix}.png"
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_folder_of_only_bad_images_is_exit_2_and_claims_nothing(tmp_path, capsys, checkpoint):
    folder = tmp_path / "bad"
    folder.mkdir()
    for kind in ("empty", "not_an_image"):
        write_bad(folder, kind)
    result = predict(capsys, checkpoint, folder, "--out", tmp_path / "out")
    assert_user_error(result, "2 of 2 images could not be read", "nothing was written")
    assert written_results(tmp_path / "out") == []


def test_a_bad_image_named_directly_is_exit_2(tmp_path, capsys, checkpoint):
    bad, _ = write_bad(tmp_path, "truncated")
    result = predict(capsys, checkpoint, bad, "--out", tmp_path / "out")
    assert_user_error(result, "1 of 1 images")
    assert written_results(tmp_path / "out") == []


def test_a_real_process_prints_no_traceback_for_a_bad_image(tmp_path, checkpoint):
    mixed = good_folder(tmp_path / "mixed")
    write_bad(mixed, "bomb")
    result = run_cli_process("predict", "--checkpoint", checkpoint, mixed, "--out", tmp_path / "o")
    assert_user_error(result, "1 of 3 images could not be read", code=1)
    assert len(json.loads((tmp_path / "o" / "predictions.json").read_text())) == 2


BAD_FLAGS = [
    (["--threshold", "-0.1"], "--threshold"),
    (["--threshold", "1.5"], "--threshold"),
    (["--threshold", "nan"], "--threshold"),
    (["--measure", "--mm-per-px", "-1"], "--mm-per-px"),
    (["--measure", "--mm-per-px", "0"], "--mm-per-px"),
    (["--measure", "--mm-per-px", "inf"], "--mm-per-px"),
    (["--mm-per-px", "0.1"], "add --measure"),
    (["--threshold", "abc"], "--threshold"),  # argparse: exit 2, its own usage line
    (["--scale", "0"], "--scale"),
    (["--scale", "-1"], "--scale"),
    (["--scale", "big"], "--scale"),
    (["--scale", "inf"], "--scale"),
    (["--gap-px", "-1"], "--gap-px"),
    (["--min-length", "nan"], "--min-length"),
]


@pytest.mark.parametrize("flags, word", BAD_FLAGS)
def test_bad_flags_are_one_line_exit_2_before_any_work(tmp_path, capsys, checkpoint, flags, word):
    images = good_folder(tmp_path / "images")
    result = predict(capsys, checkpoint, images, "--out", tmp_path / "out", *flags)
    assert_user_error(result, word)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("threshold", ["0", "1"])
def test_threshold_ends_are_accepted(tmp_path, capsys, checkpoint, threshold):
    images = good_folder(tmp_path / "images")
    result = predict(capsys, checkpoint, images, "--out", tmp_path / "o", "--threshold", threshold)
    assert result.code == 0, result.err
    mask = np.asarray(Image.open(tmp_path / "o" / "good0_mask.png"))
    assert mask.min() == mask.max() == (255 if threshold == "0" else 0)  # all / no crack


def test_bad_paths_are_one_line_exit_2(tmp_path, capsys, checkpoint):
    images = good_folder(tmp_path / "images")
    result = predict(capsys, checkpoint, tmp_path / "nope", "--out", tmp_path / "o")
    assert_user_error(result, "nope", "no such image file")
    (tmp_path / "file").write_text("")
    result = predict(capsys, checkpoint, images, "--out", tmp_path / "file")
    assert_user_error(result, "--out", "is a file")
    result = run_cli(
        capsys, "predict", "--checkpoint", tmp_path / "no.ckpt", images, "--out", tmp_path / "o"
    )
    assert_user_error(result, "no.ckpt")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "config, word",
    [
        ({**CONFIG, "threshold": 3.0}, "stored threshold"),
        ({**CONFIG, "image_size": 0}, "image_size"),
        ({**CONFIG, "mean": "imagenet"}, "mean"),
        ({**CONFIG, "std": [0.2, 0.0, 0.2]}, "std"),
    ],
)
def test_a_checkpoint_with_bad_inference_settings_is_one_line(tmp_path, capsys, config, word):
    model = crackseg.build_model("unet_small", base_channels=4, depth=2)
    ckpt = save_checkpoint({**model_payload(model), "config": config}, tmp_path / "bad.ckpt")
    images = good_folder(tmp_path / "images")
    result = predict(capsys, ckpt, images, "--out", tmp_path / "o")
    assert_user_error(result, "bad.ckpt", word)
    assert written_results(tmp_path / "o") == []


@pytest.mark.parametrize(
    "flags, word",
    [
        (["--threshold", "1.5"], "--threshold must be between 0 and 1 (inclusive)"),
        (["--threshold", "-0.5"], "--threshold must be between 0 and 1 (inclusive)"),
        (["--threshold", "nan"], "--threshold"),
        (["--mm-per-px", "-1"], "--mm-per-px must be a positive number"),
        (["--max-upload-mb", "0"], "--max-upload-mb"),
        (["--max-megapixels", "inf"], "--max-megapixels"),
        (["--scale", "0"], "--scale must be auto or a number"),
    ],
)
def test_serve_checks_its_flags_like_predict(tmp_path, capsys, checkpoint, flags, word):
    result = run_cli(capsys, "serve", "--checkpoint", checkpoint, "--port", "0", *flags)
    assert_user_error(result, word)


@pytest.mark.parametrize("threshold", ["0", "1"])
def test_serve_accepts_the_threshold_ends_as_predict_does(capsys, checkpoint, threshold):
    """The flag passes validation: the run goes on to bind the (busy) port and fails there."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(capsys, "serve", "--checkpoint", checkpoint, "--port", port,
                         "--threshold", threshold)  # fmt: skip
    assert_user_error(result, "cannot listen there")


@pytest.mark.parametrize("kind", [k for k in BAD_KINDS if k != "folder"])
def test_the_same_bad_images_through_the_web_api_are_4xx_json_naming_the_file(
    tmp_path, checkpoint, kind
):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    import asyncio

    from crackseg.inference import Predictor
    from crackseg.serve import create_app

    bad, _ = write_bad(tmp_path, kind)
    app = create_app(Predictor.from_checkpoint(checkpoint))

    async def post():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            files = {"file": (bad.name, bad.read_bytes())}
            return await client.post("/api/predict", files=files)

    response = asyncio.run(post())
    assert 400 <= response.status_code < 500 and bad.name in response.json()["error"]


def test_a_checkpoint_without_normalisation_uses_imagenet_stats_as_explain_does(tmp_path, capsys):
    model = crackseg.build_model("unet_small", base_channels=4, depth=2)
    config = {"image_size": 64}
    ckpt = save_checkpoint({**model_payload(model), "config": config}, tmp_path / "old.ckpt")
    from crackseg.conventions import IMAGENET_MEAN, IMAGENET_STD
    from crackseg.inference import Predictor

    predictor = Predictor.from_checkpoint(ckpt)
    assert (predictor.mean, predictor.std) == (IMAGENET_MEAN, IMAGENET_STD)
    result = predict(capsys, ckpt, good_folder(tmp_path / "images"), "--out", tmp_path / "o")
    assert result.code == 0, result.err


def test_images_sharing_a_name_never_overwrite_each_other(tmp_path, capsys, checkpoint):
    """Nested folders with the same file name, and x.png next to x.jpg: every image gets its
    own outputs (sub-folders are kept), and predictions.json points at each one."""
    root = tmp_path / "photos"
    for sub, seed in (("a", 1), ("b", 2), ("", 3)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(good_image(seed)).save(root / sub / "x.png")
    Image.fromarray(good_image(4)).save(root / "x.jpg")
    result = predict(capsys, checkpoint, root, "--out", tmp_path / "o", "--threshold", "0.5")
    assert result.code == 0, result.err
    rows = json.loads((tmp_path / "o" / "predictions.json").read_text())
    masks = [row["mask"] for row in rows]
    assert len(rows) == 4 and len(set(masks)) == 4
    for row in rows:
        assert row["mask"].endswith("_mask.png") and Image.open(row["mask"]).size == (48, 40)
    assert (tmp_path / "o" / "a" / "x_mask.png").is_file()
    assert (tmp_path / "o" / "b" / "x_mask.png").is_file()
    assert {
        (tmp_path / "o" / "x_png_mask.png").is_file(),
        (tmp_path / "o" / "x_jpg_mask.png").is_file(),
    } == {True}


def test_same_named_files_given_one_by_one_get_distinct_outputs(tmp_path, capsys, checkpoint):
    for sub, seed in (("a", 1), ("b", 2)):
        (tmp_path / sub).mkdir()
        Image.fromarray(good_image(seed)).save(tmp_path / sub / "x.png")
    a, b = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"
    result = predict(capsys, checkpoint, a, b, a, "--out", tmp_path / "o")
    assert result.code == 0, result.err
    rows = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert [r["image"] for r in rows] == [str(a), str(b)]  # the repeated file is predicted once
    assert len({r["mask"] for r in rows}) == 2
