"""The preflight a run does before training: the problem summary, and a refusal on broken data."""

import pytest
from test_data_helpers import make_ultralytics, square_line, write_label

from crackseg.data import load_index
from crackseg.data.preflight import check_training_data
from crackseg.errors import CrackSegError


def test_clean_data_gives_summary_lines_and_no_error(tmp_path):
    index = load_index(make_ultralytics(tmp_path))
    lines = check_training_data(index, ["train", "val"])
    assert "  train: 3 images" in lines and "  problems: none" in lines


def test_a_clipped_label_refuses_with_counts_where_and_the_override(tmp_path):
    yaml_path = make_ultralytics(tmp_path)
    write_label(tmp_path / "labels/train/train1.txt", [square_line(0, [-0.5, 0, 0.5, 0, 0.5, 1])])
    with pytest.raises(CrackSegError) as err:
        check_training_data(load_index(yaml_path), ["train", "val"])
    message = str(err.value)
    for words in ("1 of 5 items", "train1.txt:1", "coords-out-of-range", "data inspect",
                  "--allow-bad-labels"):  # fmt: skip
        assert words in message
    lines = check_training_data(load_index(yaml_path), ["train", "val"], allow_bad_labels=True)
    assert any("warning: --allow-bad-labels" in line for line in lines)
    assert any("train1.txt:1" in line for line in lines)  # the example is shown, with its line


def test_names_empty_turns_every_label_into_ignore_and_never_trains(tmp_path):
    yaml_path = make_ultralytics(tmp_path, yaml_text="path: .\ntrain: images/train\n"
                                 "val: images/val\nnames: []\n")  # fmt: skip
    with pytest.raises(CrackSegError, match="'train' split .* no crack pixel"):
        check_training_data(load_index(yaml_path), ["train", "val"], allow_bad_labels=True)


@pytest.mark.parametrize("content", [b"", b"not an image at all", None])
def test_unreadable_images_are_found_from_headers_before_training(tmp_path, content):
    yaml_path = make_ultralytics(tmp_path)
    bad = tmp_path / "images/train/train2.png"
    bad.unlink()
    if content is None:
        bad.mkdir()  # a folder named like an image
    else:
        bad.write_bytes(content)
    index = load_index(yaml_path)
    with pytest.raises(CrackSegError, match="train2.png"):
        check_training_data(index, ["train", "val"])
    index = load_index(yaml_path)
    check_training_data(index, ["train", "val"], allow_bad_labels=True)
    assert bad not in [item.image for item in index.splits["train"]]  # dropped, and said so


def test_a_problem_in_another_split_does_not_block_this_run(tmp_path):
    yaml_path = make_ultralytics(tmp_path, {"train": 2, "val": 1, "test": 1})
    write_label(tmp_path / "labels/test/test0.txt", ["0 0.1 nan 0.2 0.2 0.3 0.3"])
    index = load_index(yaml_path)
    assert [p.split for p in index.problems] == ["test"]  # every problem knows its split
    assert "  problems: none" in check_training_data(index, ["train", "val"])
    with pytest.raises(CrackSegError, match="test0.txt:1: 'nan' is not a finite number"):
        check_training_data(index, ["test"])
