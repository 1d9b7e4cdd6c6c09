"""Bad input gets a message naming the file (and line) and what to do; nothing dropped silently."""

import numpy as np
import pytest
from test_data_helpers import (
    coco_json,
    make_ultralytics,
    square_line,
    square_mask,
    write_image,
    write_label,
    write_mask,
)

from crackseg.cli import main
from crackseg.data import build_dataset, load_index
from crackseg.data.inspector import inspect_dataset
from crackseg.errors import CrackSegError

BAD_LINES = {
    "odd": ("0 0.1 0.1 0.2 0.2 0.3", "odd number of coordinates (5)"),
    "text": ("0 0.1 0.1 abc 0.2 0.3 0.3", "'abc' is not a number"),
    "box": ("0 0.5 0.5 0.2 0.2", "detection box"),
    "short": ("0", "expected 'class x1 y1"),
}


@pytest.mark.parametrize("case", BAD_LINES)
def test_malformed_label_line_skips_the_image_and_names_file_and_line(tmp_path, case):
    line, message = BAD_LINES[case]
    yaml_path = make_ultralytics(tmp_path)
    label = write_label(tmp_path / "labels/train/train1.txt", [square_line(), line])
    index = load_index(yaml_path)
    assert len(index.splits["train"]) == 2  # skipped, and counted:
    assert index.skipped() == {"malformed-label": 1}
    (problem,) = index.problems
    assert problem.file == str(label) and problem.line == 2 and message in str(problem)
    with pytest.raises(CrackSegError, match=f"train1.txt:2: .*{message[:10]}"):
        load_index(yaml_path, strict=True)


def test_out_of_range_coordinates_warn_and_clip_or_fail_when_strict(tmp_path):
    yaml_path = make_ultralytics(tmp_path, {"train": 1})
    write_label(tmp_path / "labels/train/train0.txt", [square_line(0, [-0.2, 0, 0.5, 0, 0.5, 1.3])])
    index = load_index(yaml_path)
    (problem,) = index.problems
    assert problem.kind == "coords-out-of-range" and not problem.skipped and problem.line == 1
    assert index.splits["train"][0].load_mask().sum() > 0
    with pytest.raises(CrackSegError, match="train0.txt:1: coordinates outside"):
        load_index(yaml_path, strict=True)
    write_label(tmp_path / "labels/train/train0.txt", [square_line(0, [0, 0, 1.0000001, 0, 1, 1])])
    assert not load_index(yaml_path).problems  # float noise from exporters is not a problem


def test_unknown_class_is_ignored_not_background(tmp_path):
    yaml_path = make_ultralytics(tmp_path, {"train": 1})
    write_label(tmp_path / "labels/train/train0.txt", [square_line(3)])
    index = load_index(yaml_path)
    assert index.problems[0].kind == "unknown-class" and "class id 3" in str(index.problems[0])
    assert set(np.unique(index.splits["train"][0].load_mask())) == {0, 255}
    with pytest.raises(CrackSegError, match="class id 3"):
        load_index(yaml_path, strict=True)


def test_label_without_image_and_unreadable_label(tmp_path):
    yaml_path = make_ultralytics(tmp_path)
    orphan = write_label(tmp_path / "labels/val/lost.txt", [square_line()])
    (tmp_path / "labels/train/train0.txt").write_bytes(b"\xff\xfe\x00bad")
    index = load_index(yaml_path)
    assert index.skipped() == {"label-without-image": 1, "unreadable-file": 1}
    assert any(p.file == str(orphan) and p.split == "val" for p in index.problems)
    assert len(index.splits["train"]) == 2


def test_corrupt_and_unreadable_images(tmp_path):
    yaml_path = make_ultralytics(tmp_path)
    bad = tmp_path / "images/train/train1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "images/val/dir.png").mkdir()  # a folder named like an image: cannot be read
    ds = build_dataset(yaml_path, "train")
    with pytest.raises(CrackSegError, match="train1.png: corrupt or truncated image"):
        ds[1]
    summary = inspect_dataset(yaml_path, workers=1)
    assert summary["splits"]["train"]["unreadable"] == 1
    assert summary["splits"]["val"]["unreadable"] == 1
    assert summary["problems"]["counts"]["unreadable-image"] == 2
    assert any("dir.png" in m for m in summary["problems"]["messages"])


def test_mask_size_mismatch_and_nonbinary_masks(tmp_path):
    write_image(tmp_path / "images/a.png")
    write_mask(tmp_path / "masks/a.png", square_mask(hw=(50, 50)))
    write_image(tmp_path / "images/b.png")
    soft = square_mask().astype(np.float32)
    soft[19, 30:70] = 128  # anti-aliased edge
    write_mask(tmp_path / "masks/b.png", soft.astype(np.uint8))
    index = load_index(tmp_path)
    (problem,) = index.problems
    assert problem.kind == "mask-size-mismatch" and "50x50" in str(problem) and problem.skipped
    assert [i.image.name for i in index.splits["train"]] == ["b.png"]
    summary = inspect_dataset(tmp_path, workers=1)
    assert summary["splits"]["train"]["nonbinary_masks"] == 1
    ds = build_dataset(tmp_path, "train", strict=False)
    assert set(ds[0]["mask"].unique().tolist()) == {0, 1}
    with pytest.raises(CrackSegError, match="mask-size|50x50"):
        load_index(tmp_path, strict=True)
    (tmp_path / "masks/a.png").unlink()
    (tmp_path / "images/a.png").unlink()
    with pytest.raises(CrackSegError, match="b.png: mask is not binary .*1 such files"):
        inspect_dataset(tmp_path, workers=1, strict=True)


def test_nonbinary_mask_fails_in_strict_dataset(tmp_path):
    write_image(tmp_path / "images/b.png")
    soft = square_mask()
    soft[19, 30:70] = 128
    write_mask(tmp_path / "masks/b.png", soft)
    with pytest.raises(CrackSegError, match="b.png: mask is not binary"):
        build_dataset(tmp_path, "train", strict=True)[0]


def test_empty_dataset_missing_split_and_yaml_pointing_nowhere(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CrackSegError, match="empty dataset"):
        load_index(tmp_path / "empty")
    write_image(tmp_path / "photos/x.jpg")
    with pytest.raises(CrackSegError, match="1 images but no labels or masks"):
        load_index(tmp_path / "photos")
    yaml_path = make_ultralytics(tmp_path / "ok")
    with pytest.raises(CrackSegError, match=r"no 'test' split .* splits: train \(3\), val \(2\)"):
        build_dataset(yaml_path, "test")
    nowhere = make_ultralytics(
        tmp_path / "bad", yaml_text="path: .\ntrain: images/train\nval: ../nope/images\n"
    )
    with pytest.raises(CrackSegError, match=r"data.yaml: 'val: ../nope/images' points nowhere"):
        load_index(nowhere)
    with pytest.raises(CrackSegError, match="no such file"):
        load_index(tmp_path / "missing")


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["data", "inspect", str(tmp_path / "empty"), "--grid", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("crackseg data: error:") and "empty dataset" in err and "\n" not in err
    assert "Traceback" not in err


def test_coco_bad_annotations_name_the_annotation(tmp_path):
    write_image(tmp_path / "train/a.jpg")
    write_image(tmp_path / "train/b.jpg", seed=1)
    write_image(tmp_path / "train/stray.jpg", seed=2)  # not in the json: labels unknown
    names = ["a.jpg", "b.jpg", "gone.jpg"]
    images = [{"id": i, "file_name": n, "width": 100, "height": 100} for i, n in enumerate(names)]
    anns = [
        {"id": 7, "image_id": 0, "category_id": 1, "segmentation": [[10, 10, 20, 10, 20]]},
        {"id": 8, "image_id": 1, "category_id": 5, "segmentation": [[10, 10, 20, 10, 20, 20]]},
    ]
    path = coco_json(tmp_path / "train/_annotations.coco.json", images, anns)
    index = load_index(tmp_path)
    kinds = {p.kind: p for p in index.problems}
    assert "annotation id 7 of a.jpg: odd number of coordinates (5)" in str(
        kinds["malformed-label"]
    )
    assert "category id 5" in str(kinds["unknown-class"])
    assert "gone.jpg" in str(kinds["label-without-image"])
    assert "stray.jpg" in str(kinds["image-not-in-annotations"])
    assert [i.image.name for i in index.splits["train"]] == ["b.jpg"]
    path.write_text('{"images": [{"id": 0}], "annotations": []}')
    with pytest.raises(CrackSegError, match="unexpected COCO structure"):
        load_index(tmp_path)
    path.write_text('{"images": [')
    with pytest.raises(CrackSegError, match="_annotations.coco.json:1: not valid JSON"):
        load_index(tmp_path)
