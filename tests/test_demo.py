"""`crackseg demo` end to end on a tiny budget: every stage runs and the report is complete; the
bundled-model comparison with and without a bundled model."""

from pathlib import Path

import pytest
import torch
from cli_contract import assert_user_error, run_cli

from crackseg.cli import main
from crackseg.cli.demo_bundled import bundled_section
from crackseg.engine.checkpoint import model_payload, save_checkpoint
from crackseg.models import build_model
from crackseg.weights import ENV_DIR
from crackseg.weights.bundle import write_bundle

CRACK_SEG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crack-seg"


def test_demo_writes_a_complete_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "no-weights"))  # no bundled model: one line, go on
    out = tmp_path / "demo"
    assert (
        main(["demo", "--out", str(out), "--images", "30", "--epochs", "1", "--min-iou", "0"]) == 0
    )
    text = capsys.readouterr().out
    assert f"report: {out / 'README.md'}" in text
    for name in ("README.md", "metrics.json", "curves.png", "samples.png", "pr_curve.png",
                 "run/best.ckpt", "predictions/predictions.json"):  # fmt: skip
        assert (out / name).is_file(), name
    assert len(list((out / "predictions").glob("*_width.png"))) == 4
    assert "| synth_" in (out / "README.md").read_text()  # the measurement table
    assert "[5/5] no bundled model in this installation yet" in text
    assert "No bundled model in this installation yet" in (out / "README.md").read_text()
    assert not (out / "bundled.png").exists()


def test_demo_checks_its_options_before_writing_anything(tmp_path, capsys):
    out = tmp_path / "demo"
    for argv, words in [(["--epochs", "0"], ["--epochs 0"]), (["--min-iou", "2"], ["--min-iou"])]:
        assert_user_error(run_cli(capsys, "demo", "--out", out, *argv), *words)
        assert not out.exists()
    assert_user_error(
        run_cli(capsys, "demo", "--out", out, "--photo-count", "0"), "--photo-count 0"
    )
    assert not out.exists()


@pytest.fixture
def demo_and_bundle(tmp_path, monkeypatch):
    """A 'demo' checkpoint and a bundled model (both tiny, random) in a tmp weights folder."""
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "weights"))
    torch.manual_seed(0)
    demo = build_model("unet_small")
    config = {"image_size": 64, "mean": [0.5] * 3, "std": [0.25] * 3}
    ckpt = save_checkpoint({**model_payload(demo), "config": config}, tmp_path / "best.ckpt")
    shipped = build_model("unet_small")
    shipped.config = config
    write_bundle(shipped, tmp_path / "weights", "shipped-v1", threshold=0.6,
                 metrics={"split": "val", "crack_iou": 0.7})  # fmt: skip
    return ckpt


def test_bundled_section_compares_on_synthetic_photos_when_real_ones_are_absent(
    demo_and_bundle, synth_yaml, tmp_path
):
    logs = []
    lines = bundled_section(demo_and_bundle, tmp_path, photos=tmp_path / "absent",
                            synthetic=synth_yaml, count=3, log=logs.append)  # fmt: skip
    text = "\n".join(lines)
    assert "3 images from synthetic test images" in text and "shipped-v1" in text
    assert "- demo model: crack_iou " in text and "(threshold 0.50)" in text  # the run's default
    assert "- bundled `shipped-v1`: crack_iou " in text and "(threshold 0.60)" in text  # stored
    assert "val crack IoU 0.70" in text
    assert (tmp_path / "bundled.png").is_file() and "![bundled model](bundled.png)" in text
    assert logs[0].startswith("[5/5] the bundled model shipped-v1 vs the demo model on 3 ")


@pytest.mark.skipif(not CRACK_SEG.is_dir(), reason="../shared/data/crack-seg not present")
def test_bundled_section_uses_real_crack_photos_when_present(demo_and_bundle, synth_yaml,
                                                             tmp_path):  # fmt: skip
    lines = bundled_section(demo_and_bundle, tmp_path, photos=CRACK_SEG / "crack-seg.yaml",
                            synthetic=synth_yaml, count=1, log=lambda _: None)  # fmt: skip
    assert f"1 images from {CRACK_SEG / 'crack-seg.yaml'} (val, real photos)" in "\n".join(lines)
