"""The bad-data corpus: each kind of broken dataset, built on the fly (32 px images), run through
`data inspect`, `train` (1 tiny epoch), `evaluate` and `predict` as a user would.

The promise (README): exit 2 with one `error:` line naming the file and the problem, no
traceback, nothing written that claims a result; or, with `--allow-bad-labels`, exit 0 with a
visible warning. Label problems are refused by train's preflight before any model is built.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from cli_contract import assert_user_error, run_cli, run_cli_process, written_results
from PIL import Image
from test_data_helpers import coco_json, square_line, write_image, write_label, write_mask

HW = (32, 32)
TRAIN = ("--model", "unet_small", "--epochs", "1", "--batch-size", "2", "--image-size", "64",
         "--workers", "0")  # fmt: skip


def yolo_dataset(root: Path, names: str = "['crack']") -> Path:
    """Ultralytics layout, train 2 + val 2 + test 2 images of 32 px, a square crack each."""
    for split in ("train", "val", "test"):
        for i in range(2):
            write_image(root / "images" / split / f"{split}{i}.png", HW, seed=i)
            write_label(root / "labels" / split / f"{split}{i}.txt", [square_line()])
    yaml_path = root / "data.yaml"
    keys = "".join(f"{s}: images/{s}\n" for s in ("train", "val", "test"))
    yaml_path.write_text(f"path: .\n{keys}names: {names}\n")
    return yaml_path


def mask_dataset(root: Path) -> Path:
    """train/ and val/ with images/ + masks/ (a square of 255 in each mask)."""
    for split in ("train", "val"):
        for i in range(2):
            write_image(root / split / "images" / f"{split}{i}.png", HW, seed=i)
            mask = np.zeros(HW, np.uint8)
            mask[8:24, 8:24] = 255
            write_mask(root / split / "masks" / f"{split}{i}.png", mask)
    return root


def coco_dataset(root: Path) -> Path:
    """Roboflow COCO: train/ and valid/ with _annotations.coco.json, one polygon per image."""
    for split in ("train", "valid"):
        images, anns = [], []
        for i in range(2):
            write_image(root / split / f"{split}{i}.jpg", HW, seed=i)
            images.append({"id": i, "file_name": f"{split}{i}.jpg", "width": 32, "height": 32})
            anns.append({"id": i, "image_id": i, "category_id": 1,
                         "segmentation": [[8, 8, 24, 8, 24, 24, 8, 24]]})  # fmt: skip
        coco_json(root / split / "_annotations.coco.json", images, anns)
    return root


def bomb_png(path: Path) -> None:
    """A valid PNG header claiming 100000 x 100000 pixels: Pillow's decompression-bomb error."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + iend)


def _label(root: Path, line: str) -> str:
    write_label(root / "labels/train/train1.txt", [square_line(), line])
    return "train1.txt:2"


def _replace_image(root: Path, content: bytes | None) -> str:
    bad = root / "images/train/train1.png"
    bad.unlink()
    if content is None:
        bad.mkdir()
    else:
        bad.write_bytes(content)
    return "train1.png"


def _bomb(root: Path) -> str:
    bomb_png(root / "images/train/train1.png")
    return "train1.png"


def _binary_label(root: Path) -> str:
    (root / "labels/train/train1.txt").write_bytes(b"\xff\xfe\x00")
    return "train1.txt"


def _orphan_label(root: Path) -> str:
    write_label(root / "labels/train/ghost.txt", [square_line()])
    return "ghost.txt"


def _mask_wrong_size(root: Path) -> str:
    write_mask(root / "train/masks/train1.png", np.full((16, 16), 255, np.uint8))
    return "train1.png"


def _mask_not_binary(root: Path) -> str:
    ramp = np.tile(np.linspace(0, 250, 32).astype(np.uint8), (32, 1))  # 32 grey levels
    write_mask(root / "train/masks/train1.png", ramp)
    return "train1.png"


def _mask_dataset_folder(root: Path) -> str:
    (root / "train/images/extra.png").mkdir()
    return "extra.png"


def _coco_edit(root: Path, edit) -> None:
    path = root / "train/_annotations.coco.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _coco_bad_rle(root: Path) -> str:
    def edit(data):
        data["annotations"][1]["segmentation"] = {"size": [32, 32], "counts": "0"}

    _coco_edit(root, edit)
    return "_annotations.coco.json"


def _coco_nan(root: Path) -> str:
    def edit(data):
        data["annotations"][1]["segmentation"] = [[8, 8, float("nan"), 8, 24, 24]]

    _coco_edit(root, edit)
    return "_annotations.coco.json"


def _coco_wrong_size(root: Path) -> str:
    def edit(data):
        data["images"][1].update(width=64, height=64)  # the file is 32x32

    _coco_edit(root, edit)
    return "_annotations.coco.json"


def _coco_missing_image(root: Path) -> str:
    (root / "train/train1.jpg").unlink()
    return "train1.jpg"


# case -> (dataset builder, how to break it -> the file named, words the error must contain)
CASES = {
    "clipped-coords": (yolo_dataset, lambda r: _label(r, square_line(0, [-0.5, 0, 1, 0, 1, 2])),
                       "coordinates outside [0, 1]"),
    "odd-count": (yolo_dataset, lambda r: _label(r, "0 0.1 0.1 0.2 0.2 0.3"), "odd number"),
    "unknown-class": (yolo_dataset, lambda r: _label(r, square_line(7)), "class id 7"),
    "garbage-token": (yolo_dataset, lambda r: _label(r, "0 0.1 zz 0.2 0.2 0.3 0.3"),
                      "'zz' is not a number"),
    "nan-coord": (yolo_dataset, lambda r: _label(r, "0 0.1 nan 0.5 0.1 0.5 0.5"),
                  "'nan' is not a finite number"),
    "inf-coord": (yolo_dataset, lambda r: _label(r, "0 0.1 0.1 inf 0.1 0.5 0.5"),
                  "'inf' is not a finite number"),
    "detection-box": (yolo_dataset, lambda r: _label(r, "0 0.5 0.5 0.2 0.2"), "detection box"),
    "binary-label": (yolo_dataset, _binary_label, "cannot read label"),
    "label-without-image": (yolo_dataset, _orphan_label, "label without image"),
    "zero-byte-image": (yolo_dataset, lambda r: _replace_image(r, b""), "not a readable image"),
    "not-an-image": (yolo_dataset, lambda r: _replace_image(r, b"hello"), "not a readable image"),
    "folder-named-png": (yolo_dataset, lambda r: _replace_image(r, None), "is a folder"),
    "decompression-bomb": (yolo_dataset, _bomb, "too large"),
    "mask-wrong-size": (mask_dataset, _mask_wrong_size, "mask is 16x16"),
    "mask-folder-named-png": (mask_dataset, _mask_dataset_folder, "is a folder"),
    "mask-not-binary": (mask_dataset, _mask_not_binary, "not binary"),
    "coco-bad-rle": (coco_dataset, _coco_bad_rle, "invalid RLE"),
    "coco-nan": (coco_dataset, _coco_nan, "not a finite number"),
    "coco-wrong-size": (coco_dataset, _coco_wrong_size, "but the json says 64x64"),
    "coco-missing-image": (coco_dataset, _coco_missing_image, "listed but missing"),
}  # fmt: skip


@pytest.fixture(params=sorted(CASES))
def bad_dataset(request, tmp_path) -> tuple[Path, str, str]:
    build, breaks, words = CASES[request.param]
    built = build(tmp_path / "data")
    named = breaks(tmp_path / "data")
    return built, named, words


def test_inspect_lists_the_problem_and_strict_refuses(bad_dataset, capsys, tmp_path):
    data, named, words = bad_dataset
    result = run_cli(capsys, "data", "inspect", data, "--grid", "none", "--workers", "1")
    assert result.code == 0 and "Traceback" not in result.err
    shown = [line for line in result.out.splitlines() if named in line and words in line]
    assert shown, f"{named} / {words} not in:\n{result.out}"
    strict = run_cli(capsys, "data", "inspect", data, "--grid", "none", "--strict")
    assert_user_error(strict, named)


def test_train_refuses_with_the_file_and_problem_and_writes_no_result(bad_dataset, capsys,
                                                                     tmp_path):  # fmt: skip
    data, named, words = bad_dataset
    out = tmp_path / "run"
    result = run_cli(capsys, "train", "--data", data, "--out", out, *TRAIN)
    line = assert_user_error(result, named, words)
    assert "--allow-bad-labels" in line and "data inspect" in line  # how to see all, override
    assert written_results(out) == []


def test_names_empty_never_trains_even_when_bad_labels_are_allowed(tmp_path, capsys):
    data = yolo_dataset(tmp_path / "data", names="[]")
    out = tmp_path / "run"
    result = run_cli(capsys, "train", "--data", data, "--out", out, "--allow-bad-labels", *TRAIN)
    assert_user_error(result, "'train' split", "no crack pixel", "names")
    assert written_results(out) == []


def test_exif_rotated_photos_with_raw_masks_point_at_the_rotation(tmp_path, capsys):
    data = mask_dataset(tmp_path / "data")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display: the photo is 32x48 as seen, 48x32 as stored
    for i in range(2):
        Image.new("RGB", (48, 32), (90, 90, 90)).save(
            data / f"train/images/train{i}.png", exif=exif.tobytes()
        )
        write_mask(data / f"train/masks/train{i}.png", np.full((32, 48), 255, np.uint8))
    result = run_cli(capsys, "train", "--data", data, "--out", tmp_path / "run", *TRAIN)
    assert_user_error(result, "no 'train' split", "2 items skipped", "EXIF", "train0.png")


def test_allow_bad_labels_trains_on_the_rest_with_a_visible_warning(tmp_path, capsys):
    data = yolo_dataset(tmp_path / "data")
    _label(tmp_path / "data", square_line(0, [-0.5, 0, 1, 0, 1, 2]))
    _replace_image(tmp_path / "data", b"")  # unreadable: dropped, and said so
    write_image(tmp_path / "data/images/train/train2.png", HW, seed=2)  # 2 readable remain
    out = tmp_path / "run"
    result = run_cli(capsys, "train", "--data", data, "--out", out, "--allow-bad-labels", *TRAIN)
    assert result.code == 0, result.err
    assert "warning: --allow-bad-labels" in result.out and "train1.png" in result.out
    assert (out / "best.ckpt").is_file()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])  # the header survives, the pixels do not


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """One tiny model trained on a clean dataset, for evaluate and predict."""
    root = tmp_path_factory.mktemp("clean")
    data = yolo_dataset(root / "data")
    from crackseg.cli import main

    assert main(["train", "--data", str(data), "--out", str(root / "run"), *TRAIN]) == 0
    return root / "run/best.ckpt"


def test_truncated_image_mid_training_is_one_line_from_a_dataloader_worker(tmp_path):
    data = yolo_dataset(tmp_path / "data")
    _truncate(tmp_path / "data/images/train/train1.png")  # passes the header check
    out = tmp_path / "run"
    one_worker = (*TRAIN[:-1], "1")  # TRAIN ends with --workers 0
    result = run_cli_process("train", "--data", data, "--out", out, *one_worker)
    assert_user_error(result, "train1.png", "truncated")
    assert written_results(out) == []


def test_evaluate_names_an_unreadable_image(checkpoint, tmp_path, capsys):
    data = yolo_dataset(tmp_path / "data")
    _truncate(tmp_path / "data/images/test/test1.png")
    out = tmp_path / "eval"
    result = run_cli(capsys, "evaluate", "--checkpoint", checkpoint, "--data", data, "--out", out)
    assert_user_error(result, "test1.png", "truncated")
    assert written_results(out) == []


def test_evaluate_without_crack_labels_says_undefined_never_a_score(checkpoint, tmp_path, capsys):
    data = yolo_dataset(tmp_path / "data", names="[]")  # every crack polygon becomes 'ignore'
    out = tmp_path / "eval"
    result = run_cli(capsys, "evaluate", "--checkpoint", checkpoint, "--data", data, "--out", out)
    assert result.code == 0 and "Traceback" not in result.err  # the documented outcome: a warning
    assert "warning:" in result.err and "no labelled crack pixel" in result.err
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["crack_iou"] is None and metrics["crack_f1"] is None  # not 1.0


def test_predict_reports_unreadable_images_and_keeps_the_rest(checkpoint, tmp_path, capsys):
    images = tmp_path / "images"
    for i in range(2):
        write_image(images / f"ok{i}.png", HW, seed=i)
    shutil.copy(images / "ok0.png", images / "cut.png")
    _truncate(images / "cut.png")
    (images / "empty.png").write_bytes(b"")
    out = tmp_path / "pred"
    result = run_cli(capsys, "predict", "--checkpoint", checkpoint, images, "--out", out)
    assert result.code == 1 and "Traceback" not in result.err
    assert "cut.png" in result.err and "empty.png" in result.err
    assert sorted(p.name for p in out.glob("*_mask.png")) == ["ok0_mask.png", "ok1_mask.png"]
