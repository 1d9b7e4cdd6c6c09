"""`crackseg models bundle` end to end on a tiny model and the synthetic dataset, then the bundle as
the default of `evaluate`, `explain` and `crackseg models` (weights in a tmp `CRACKSEG_WEIGHTS_DIR`)."""

from __future__ import annotations

import json
import shlex

import pytest
import torch
from cli_contract import assert_user_error, run_cli

import crackseg
from crackseg.cli import build_parser
from crackseg.engine.checkpoint import model_payload, save_checkpoint
from crackseg.evaluate import evaluate_checkpoint
from crackseg.models import build_model
from crackseg.weights import ENV_DIR
from crackseg.weights.bundle import bundle_checkpoint

TRAIN_CONFIG = {"image_size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "epochs": 3}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("unet_small")
    payload = {**model_payload(model), "config": TRAIN_CONFIG, "epoch": 3}
    return save_checkpoint(payload, tmp_path_factory.mktemp("run") / "best.ckpt")


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    monkeypatch.setenv(ENV_DIR, str(folder))
    return folder


def test_bundle_calibrates_converts_and_records(checkpoint, synth_yaml, weights_dir, capsys):
    argv = ["models", "bundle", "--checkpoint", checkpoint, "--data", synth_yaml, "--split", "val",
            "--name", "tiny-v1", "--description", "test model"]  # fmt: skip
    assert run_cli(capsys, *argv).code == 0
    weights, meta_path = weights_dir / "tiny-v1.safetensors", weights_dir / "tiny-v1.json"
    meta = json.loads(meta_path.read_text())
    fp32 = evaluate_checkpoint(checkpoint, synth_yaml, split="val")["metrics"]
    assert meta["threshold"] == fp32["ods_threshold"]  # the best-F1 threshold of val
    assert meta["threshold"] != 0.5  # calibrated, not the default (a random net is not at 0.5)
    at_threshold = evaluate_checkpoint(weights, synth_yaml, split="val")["metrics"]  # stored thr
    assert meta["metrics"]["crack_iou"] == at_threshold["crack_iou"]
    assert meta["metrics"]["split"] == "val" and meta["metrics"]["threshold"] == meta["threshold"]
    assert abs(meta["metrics"]["crack_iou"] - meta["metrics_fp32"]["crack_iou"]) <= 0.005
    assert meta["dtype"] == "fp16" and meta["size_bytes"] == weights.stat().st_size
    assert meta["model"] == {"name": "unet_small", "overrides": {}}
    assert meta["provenance"]["training_config"] == TRAIN_CONFIG
    assert meta["provenance"]["epoch"] == 3
    recorded = shlex.split(meta["provenance"]["command"])  # reruns the same bundle
    parse = build_parser().parse_args
    assert recorded[0] == "crackseg" and parse(recorded[1:]) == parse([str(a) for a in argv])
    assert meta["default"] is True and meta["description"] == "test model"

    result = run_cli(capsys, "models", "--bundled", "--json")
    (row,) = json.loads(result.out)
    assert (row["name"], row["preset"], row["dtype"]) == ("tiny-v1", "unet_small", "fp16")
    assert (
        row["threshold"] == meta["threshold"] and row["crack_iou"] == meta["metrics"]["crack_iou"]
    )
    assert row["size_mb"] == round(meta["size_bytes"] / 2**20, 2)
    table = run_cli(capsys, "models", "--filter", "unet_small", "--no-time", "--image-size", "64")
    assert "tiny-v1" in table.out and "unet_small" in table.out.split("Model presets")[1]


def test_bundle_names_the_sources_of_an_averaged_checkpoint(
    checkpoint, synth_yaml, weights_dir, capsys
):
    ckpt = torch.load(checkpoint, weights_only=True)
    averaged = save_checkpoint(
        {**ckpt, "soup": ["runs/a/last.ckpt", "runs/b/last.ckpt"]},
        checkpoint.parent / "soup.ckpt",
    )
    for source, name in ((checkpoint, "plain"), (averaged, "soup")):
        argv = ["models", "bundle", "--checkpoint", source, "--data", synth_yaml, "--name", name]
        assert run_cli(capsys, *argv).code == 0
    plain, soup = (json.loads((weights_dir / f"{n}.json").read_text()) for n in ("plain", "soup"))
    assert "soup_of" not in plain["provenance"]
    assert soup["provenance"]["soup_of"] == ["runs/a/last.ckpt", "runs/b/last.ckpt"]


def test_bundle_keeps_float32_when_the_conversion_loses_accuracy(
    checkpoint, synth_yaml, weights_dir, monkeypatch
):
    monkeypatch.setattr("crackseg.weights.bundle.MAX_IOU_DROP", -1.0)  # any change is too much
    lines = []
    meta = bundle_checkpoint(checkpoint, synth_yaml, "kept-fp32", dtype="bf16", log=lines.append)
    assert meta["dtype"] == "fp32" and meta["dtype_requested"] == "bf16"
    assert "kept float32" in meta["dtype_note"] and any("kept float32" in x for x in lines)
    assert meta["metrics"] == meta["metrics_fp32"]


def test_bundle_records_an_out_of_domain_score(checkpoint, synth_yaml, weights_dir):
    meta = bundle_checkpoint(checkpoint, synth_yaml, "with-ood", ood=synth_yaml, ood_split="test",
                             log=lambda _: None)  # fmt: skip
    assert meta["metrics_ood"]["split"] == "test" and meta["metrics_ood"]["images"] == 4
    assert meta["metrics_ood"]["threshold"] == meta["threshold"]


def test_bundle_refuses_weights_over_the_limit(checkpoint, synth_yaml, weights_dir, capsys,
                                               monkeypatch):  # fmt: skip
    monkeypatch.setattr("crackseg.weights.bundle.MAX_BYTES", 2**20)  # unet_small fp16 is 3.7 MB
    argv = ["models", "bundle", "--checkpoint", checkpoint, "--data", synth_yaml, "--name", "big"]
    assert_user_error(run_cli(capsys, *argv), "big.safetensors", "over the 1 MB limit")
    assert not list(weights_dir.glob("big.*"))


def test_bundle_bad_input_is_one_line(checkpoint, synth_yaml, weights_dir, tmp_path, capsys):
    base = ["models", "bundle", "--data", synth_yaml]
    assert_user_error(run_cli(capsys, *base, "--checkpoint", tmp_path / "no.ckpt", "--name", "x"),
                      "no.ckpt", "not found")  # fmt: skip
    assert_user_error(run_cli(capsys, *base, "--checkpoint", checkpoint, "--name", "a/b"),
                      "--name 'a/b'")  # fmt: skip
    assert_user_error(run_cli(capsys, *base, "--checkpoint", checkpoint, "--name", "x",
                              "--split", "nosuch"), "'nosuch'")  # fmt: skip


def test_evaluate_and_explain_without_checkpoint_use_the_bundle(
    checkpoint, synth_yaml, weights_dir, tmp_path, capsys, monkeypatch
):
    bundle_checkpoint(checkpoint, synth_yaml, "tiny-v1", log=lambda _: None)
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, "evaluate", "--data", synth_yaml, "--split", "val", "--json")
    assert result.code == 0, result.err
    note = "crackseg evaluate: using the bundled model tiny-v1 (val crack IoU "
    assert result.err.startswith(note) and len(result.err.strip().splitlines()) == 1
    meta = json.loads((weights_dir / "tiny-v1.json").read_text())
    scores = json.loads(result.out)
    assert scores["threshold"] == meta["threshold"]  # the calibrated one, not 0.5
    assert scores["metrics"]["crack_iou"] == meta["metrics"]["crack_iou"]
    assert (tmp_path / "eval_tiny-v1_val" / "metrics.json").is_file()  # not in the package
    image = next((synth_yaml.parent / "images" / "test").glob("*"))
    result = run_cli(capsys, "explain", image, "--out", tmp_path / "expl")
    assert result.code == 0, result.err
    assert "crackseg explain: using the bundled model tiny-v1" in result.err
    assert list((tmp_path / "expl").glob("*_saliency.png"))


def test_commands_without_checkpoint_or_bundle_say_what_to_do(synth_yaml, weights_dir, capsys):
    image = next((synth_yaml.parent / "images" / "test").glob("*"))
    for argv in (["evaluate", "--data", synth_yaml], ["explain", image]):
        assert_user_error(run_cli(capsys, *argv), "no bundled model in this installation",
                          "--checkpoint")  # fmt: skip


def test_fp16_overflow_falls_back_to_bf16_not_to_inf(synth_yaml, weights_dir, tmp_path):
    torch.manual_seed(0)
    model = build_model("unet_small")
    model.up[0].convs[0][1].running_var.fill_(1e5)  # a trained BatchNorm can exceed fp16's 65504
    payload = {**model_payload(model), "config": TRAIN_CONFIG, "epoch": 3}
    ckpt = save_checkpoint(payload, tmp_path / "big.ckpt")
    meta = bundle_checkpoint(ckpt, synth_yaml, name="big-v1", folder=weights_dir, log=lambda _: 0)
    assert meta["dtype"] == "bf16" and "up.0.convs.0.1.running_var" in meta["dtype_note"]
    loaded = crackseg.load_model("big-v1")
    assert torch.isfinite(loaded.up[0].convs[0][1].running_var).all()


def test_a_bundled_model_is_recalibrated_on_other_labels(checkpoint, synth_yaml, weights_dir,
                                                          capsys):  # fmt: skip
    """A user with labelled photos drawn at another width re-bundles the shipped model: the new
    bundle keeps the weights, stores the threshold that fits those labels and says where it came
    from; it cannot overwrite the model it was made from."""
    bundle_checkpoint(checkpoint, synth_yaml, "tiny-v1", split="val", log=lambda *_: None)
    source = json.loads((weights_dir / "tiny-v1.json").read_text())
    argv = ["models", "bundle", "--checkpoint", "tiny-v1", "--data", synth_yaml, "--split", "test",
            "--name", "tiny-mine", "--not-default"]  # fmt: skip
    assert run_cli(capsys, *argv).code == 0
    meta = json.loads((weights_dir / "tiny-mine.json").read_text())
    test_best = evaluate_checkpoint(weights_dir / "tiny-v1.safetensors", synth_yaml,
                                    split="test", threshold=None)["metrics"]["ods_threshold"]  # fmt: skip
    assert meta["threshold"] == test_best
    assert meta["provenance"]["recalibrated_from"] == "tiny-v1"
    assert meta["provenance"]["threshold_before"] == source["threshold"]
    assert meta["provenance"]["source_provenance"] == source["provenance"]
    assert meta["description"] == f"tiny-v1 recalibrated on {synth_yaml} [test]"
    assert meta["model"] == source["model"] and meta["default"] is False
    old = crackseg.load_model(weights_dir / "tiny-v1.safetensors").state_dict()
    new = crackseg.load_model(weights_dir / "tiny-mine.safetensors").state_dict()
    assert all(torch.equal(old[k], new[k]) for k in old)  # fp16 -> fp16: the same weights
    before = (weights_dir / "tiny-v1.safetensors").read_bytes()
    argv[argv.index("tiny-mine")] = "tiny-v1"
    assert_user_error(run_cli(capsys, *argv), "--name tiny-v1", "its own name")
    assert (weights_dir / "tiny-v1.safetensors").read_bytes() == before
