"""The dataset inspector and the `crackseg data` command, on fixtures in tmp_path."""

import json
import shutil

import numpy as np
from PIL import Image
from test_data_helpers import make_ultralytics, write_label

from crackseg.cli import main
from crackseg.data.inspector import format_report, inspect_dataset


def test_inspect_counts_fractions_duplicates_and_grid(tmp_path):
    yaml_path = make_ultralytics(tmp_path, {"train": 4, "val": 2})
    write_label(tmp_path / "labels/val/val1.txt", [])  # empty label: a crack-free image
    (tmp_path / "labels/train/train3.txt").unlink()  # image without label
    write_label(tmp_path / "labels/train/ghost.txt", ["0 0 0 1 0 1 1"])  # label without image
    # exact duplicate across splits, and a near duplicate (a mirrored, slightly brighter copy)
    shutil.copy(tmp_path / "images/train/train0.png", tmp_path / "images/val/copy.png")
    arr = np.asarray(Image.open(tmp_path / "images/train/train1.png"))[:, ::-1].astype(int) + 4
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(tmp_path / "images/val/near.png")
    summary = inspect_dataset(yaml_path, workers=1, grid=tmp_path / "grid.png", samples=4)
    train, val = summary["splits"]["train"], summary["splits"]["val"]
    assert (train["images"], train["labels"], train["without_label"]) == (4, 3, 1)
    assert train["labels_without_images"] == 1 and val["empty_labels"] == 1
    assert val["images"] == 4 and train["sizes"] == {"100x100": 4}
    assert (
        train["crack_fraction"]["max"] == 51 * 51 / 100**2 and train["crack_fraction"]["min"] == 0
    )
    dup = summary["duplicates"]
    assert dup["exact_across_splits"] == 1 and dup["near_across_splits"] == 1
    assert dup["near_examples"][0][:2] == [
        str(tmp_path / p) for p in ("images/train/train1.png", "images/val/near.png")
    ]
    grid = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB")).astype(int)
    assert grid.shape == (192, 4 * 192, 3)  # 2 samples per split, 4 tiles of 192 px in one row
    red = (grid[..., 0] > 150) & (grid[..., 1] < 120) & (grid[..., 2] < 120)
    assert red[:, :192].mean() > 0.15  # train0's square (26% of the tile) is drawn in crack red
    text = format_report(summary)
    assert "exact across splits" in text and "label-without-image 1" in text
    json.dumps(summary)


def test_cli_synth_then_inspect_json(tmp_path, capsys):
    out = tmp_path / "synth"
    assert (
        main(["data", "synth", "--out", str(out), "--n", "12", "--size", "64", "--seed", "2"]) == 0
    )
    assert (out / "data.yaml").is_file() and (out / "cracks.json").is_file()
    capsys.readouterr()
    grid = tmp_path / "g.png"
    assert main(["data", "inspect", str(out), "--json", "--grid", str(grid), "--workers", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "ultralytics" and summary["splits"]["train"]["images"] == 8
    assert summary["problems"]["counts"] == {} and grid.is_file()
