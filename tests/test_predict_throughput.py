"""`crackseg predict` options for speed: --processes gives the same files with the same bytes,
--precision and --overlap take only their named values, and a run says its images/s."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_contract import assert_user_error, run_cli
from PIL import Image

from crackseg.cli import predict as cli_predict
from crackseg.engine.setup import resolve_amp
from crackseg.inference import DEFAULT_OVERLAP, OVERLAPS
from crackseg.models import build_model
from crackseg.weights.bundle import write_bundle

CONFIG = {"image_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


@pytest.fixture
def tiny_bundle(tmp_path):
    torch.manual_seed(0)
    model = build_model("unet_small", base_channels=4, depth=2).eval()
    model.config = dict(CONFIG)
    return write_bundle(model, tmp_path / "weights", "tiny-v1", dtype="fp32", threshold=0.5)


@pytest.fixture
def images(tmp_path):
    """Four small photos, two larger than the 32 px window (tiled), one in a sub-folder."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, size in [("a", (20, 24)), ("b", (70, 45)), ("sub/c", (31, 33)), ("d", (50, 90))]:
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
            folder / f"{name}.png"
        )
    return folder


def outputs(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*.png"))}  # fmt: skip


def test_two_processes_write_the_same_files_and_bytes_as_one(tmp_path, capsys, tiny_bundle, images):
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"out{n}"
        result = run_cli(capsys, "predict", images, "--out", out, "--checkpoint", tiny_bundle,
                         "--processes", n, "--precision", "fp32")  # fmt: skip
        assert result.code == 0, result.err
        assert "predicted 4 images in" in result.out and "images/s)" in result.out
        rows = json.loads((out / "predictions.json").read_text())
        runs[n] = (outputs(out), [(r["image"], r["crack_fraction"]) for r in rows])
    assert len(runs[1][0]) == 12  # mask, prob, overlay per image
    assert runs[2][0] == runs[1][0]
    assert runs[2][1] == runs[1][1]  # same rows, in input order


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--precision", "fp16"], ["--precision", "fp16"]),
        (["--precision", "BF16"], ["--precision", "auto, fp32 or bf16"]),
        (["--processes", "0"], ["--processes", ">= 1"]),
        (["--overlap", "third"], ["--overlap", "none, quarter or half"]),
        (["--no-overlap", "--overlap", "half"], ["--no-overlap", "half"]),
    ],
)
def test_bad_speed_options_are_one_line_errors(tmp_path, capsys, images, flags, words):
    result = run_cli(capsys, "predict", images, "--out", tmp_path / "o", *flags)
    assert_user_error(result, *words)
    assert not (tmp_path / "o").exists()


def test_precision_names_map_to_autocast_dtypes():
    cpu = torch.device("cpu")
    assert resolve_amp(cli_predict.precision_amp("fp32"), cpu) is None
    assert resolve_amp(cli_predict.precision_amp("bf16"), cpu) is torch.bfloat16
    assert resolve_amp(cli_predict.precision_amp("auto"), cpu) in (None, torch.bfloat16)


def test_the_cli_offers_the_inference_overlaps_and_default():
    assert tuple(OVERLAPS) == cli_predict.OVERLAPS
    assert cli_predict.DEFAULT_OVERLAP == DEFAULT_OVERLAP


def test_evaluate_rejects_a_bad_precision_before_any_work(tmp_path, capsys):
    result = run_cli(capsys, "evaluate", "--data", tmp_path / "none.yaml", "--precision", "fp64",
                     "--out", tmp_path / "eval")  # fmt: skip
    assert_user_error(result, "--precision", "fp64")
    assert not (tmp_path / "eval").exists()
