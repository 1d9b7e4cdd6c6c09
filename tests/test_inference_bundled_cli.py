"""`predict` and `serve` without --checkpoint use the bundled model and say so in one line;
with no bundled model installed it is one error line (bundles are built in a tmp folder)."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
from cli_contract import assert_user_error, run_cli
from PIL import Image

from crackseg.models import build_model
from crackseg.weights.bundle import write_bundle

CONFIG = {"image_size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


def bundle(folder, threshold=0.7):
    torch.manual_seed(0)
    model = build_model("unet_small", base_channels=4, depth=2).eval()
    model.config = dict(CONFIG)
    metrics = {"split": "val", "crack_iou": 0.42}
    return write_bundle(model, folder, "tiny-v1", dtype="fp16", threshold=threshold,
                        metrics=metrics)  # fmt: skip


def photo(folder):
    folder.mkdir()
    image = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(image).save(folder / "wall.png")
    return folder / "wall.png"


def test_predict_without_checkpoint_uses_the_bundle_and_says_so(tmp_path, capsys, weights_dir):
    bundle(weights_dir)
    image = photo(tmp_path / "in")
    result = run_cli(capsys, "predict", image, "--out", tmp_path / "out")
    assert result.code == 0, result.err
    notes = [line for line in result.err.splitlines() if "bundled model" in line]
    assert notes == [
        "crackseg predict: using the bundled model tiny-v1 (val crack IoU 0.42; "
        "pass --checkpoint to use your own)"
    ]
    rows = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert rows[0]["image"] == str(image)
    assert (tmp_path / "out" / "wall_mask.png").is_file()


def test_predict_by_bundle_name_prints_no_note(tmp_path, capsys, weights_dir):
    bundle(weights_dir)
    image = photo(tmp_path / "in")
    result = run_cli(capsys, "predict", image, "--out", tmp_path / "o", "--checkpoint", "tiny-v1")
    assert result.code == 0, result.err
    assert "bundled model" not in result.err


@pytest.mark.parametrize("command", ["predict", "serve"])
def test_no_checkpoint_and_no_bundle_is_one_error_line(tmp_path, capsys, weights_dir, command):
    image = photo(tmp_path / "in")
    args = [image, "--out", tmp_path / "o"] if command == "predict" else ["--port", "0"]
    result = run_cli(capsys, command, *args)
    assert_user_error(result, "no bundled model", "--checkpoint")
    assert not (tmp_path / "o").exists()


def test_serve_without_checkpoint_says_so_before_binding(capsys, weights_dir):
    """The note comes first; the run then fails on the busy port (no server is started)."""
    bundle(weights_dir)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run_cli(capsys, "serve", "--port", port)
    assert result.code == 2
    assert "crackseg serve: using the bundled model tiny-v1" in result.err
