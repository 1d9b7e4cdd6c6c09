"""Bad checkpoints (issue 11.5) and scores from nothing (issue 11.1): `evaluate`, `predict` and
`explain` answer each with exit 2 and one line naming the file and the problem, no traceback,
and nothing written that claims a result.

Every bad file is derived on the fly from one good unet_small checkpoint saved through the
project's own save path (`model_payload` + `save_checkpoint`).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_contract import assert_user_error, run_cli, run_cli_process, written_results
from PIL import Image

import crackseg
from crackseg.conventions import IMAGENET_MEAN, IMAGENET_STD
from crackseg.engine.checkpoint import model_payload, save_checkpoint

CONFIG = {
    "image_size": 64,
    "threshold": 0.5,
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
}


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = crackseg.build_model("unet_small", base_channels=4, depth=2)
    path = tmp_path_factory.mktemp("ckpt") / "good.ckpt"
    return save_checkpoint({**model_payload(model), "config": CONFIG}, path)


def _payload(good: Path) -> dict:
    return torch.load(good, weights_only=True)


def _edit(good: Path, path: Path, edit) -> Path:
    """Load the good payload, apply `edit` (returns the payload to save), write it to `path`."""
    torch.save(edit(_payload(good)), path)
    return path


def _drop(key):
    return lambda ckpt: {k: v for k, v in ckpt.items() if k != key}


def _weights(change):
    def edit(ckpt):
        ckpt["state_dict"] = change(dict(ckpt["state_dict"]))
        return ckpt

    return edit


def _rename_first(sd):
    first = next(iter(sd))
    sd["renamed." + first] = sd.pop(first)
    return sd


def _drop_last(sd):
    sd.pop(next(reversed(sd)))
    return sd


def _reshape_head(sd):
    sd["head.weight"] = torch.zeros(3, *sd["head.weight"].shape[1:])
    return sd


def _other_model(_sd):
    other = crackseg.build_model("vit_tiny_patch16", depth=1, image_size=32)
    return other.state_dict()


def _nan_all(sd):
    return {k: v.float().fill_(float("nan")) if v.is_floating_point() else v for k, v in sd.items()}


def _inf_one(sd):
    sd["head.bias"] = sd["head.bias"].clone().fill_(float("inf"))
    return sd


# name -> (how to make it from the good checkpoint (None: write bytes), words the error names)
CASES = {
    "missing": (lambda good, p: p, ["checkpoint not found"]),
    "folder": (lambda good, p: (p.mkdir(), p)[1], ["is a folder"]),
    "empty": (lambda good, p: (p.write_bytes(b""), p)[1], ["empty file"]),
    "truncated": (lambda good, p: (p.write_bytes(good.read_bytes()[:300]), p)[1],
                  ["not a readable checkpoint"]),
    "text": (lambda good, p: (p.write_text("model: unet\n"), p)[1], ["not a readable checkpoint"]),
    "foreign": (lambda good, p: (torch.save({"weights": torch.zeros(2)}, p), p)[1],
                ["not a crackseg checkpoint"]),
    "no-model": (lambda good, p: _edit(good, p, _drop("model")), ["no 'model' entry"]),
    "no-config": (lambda good, p: _edit(good, p, _drop("config")), ["no 'config' entry"]),
    "no-weights": (lambda good, p: _edit(good, p, _drop("state_dict")), ["no 'state_dict'"]),
    "unknown-preset": (lambda good, p: _edit(good, p, lambda c: {**c, "model": {
        "name": "resnet9000", "overrides": {}}}), ["cannot rebuild", "resnet9000"]),
    "renamed-key": (lambda good, p: _edit(good, p, _weights(_rename_first)),
                    ["do not fit", "missing"]),
    "missing-key": (lambda good, p: _edit(good, p, _weights(_drop_last)),
                    ["do not fit", "missing"]),
    "shape": (lambda good, p: _edit(good, p, _weights(_reshape_head)),
              ["do not fit", "another shape", "head.weight"]),
    "other-model": (lambda good, p: _edit(good, p, _weights(_other_model)),
                    ["do not fit", "unet_small", "unexpected"]),
    "all-nan": (lambda good, p: _edit(good, p, _weights(_nan_all)), ["non-finite weights"]),
    "one-inf": (lambda good, p: _edit(good, p, _weights(_inf_one)),
                ["non-finite weights", "head.bias"]),
}  # fmt: skip
COMMANDS = ("evaluate", "predict", "explain")


def _argv(command: str, ckpt: Path, data: Path, out: Path) -> list:
    """evaluate on the data's test split; predict and explain on one of its test images."""
    if command == "evaluate":
        return ["evaluate", "--checkpoint", ckpt, "--data", data, "--out", out]
    image = next((Path(data).parent / "images" / "test").glob("*.jpg"))
    return [command, image, "--checkpoint", ckpt, "--out", out]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", CASES)
def test_bad_checkpoint_is_one_line_naming_the_file(
    case, command, good_checkpoint, synth_yaml, tmp_path, capsys
):
    make, words = CASES[case]
    ckpt = make(good_checkpoint, tmp_path / f"{case}.ckpt")
    out = tmp_path / "out"
    result = run_cli(capsys, *_argv(command, ckpt, synth_yaml, out))
    assert_user_error(result, ckpt.name, *words)
    assert not written_results(out) and not (out / "metrics.json").exists()
    assert not list(out.glob("*.png")) if out.exists() else True


def test_good_checkpoint_passes_every_command(good_checkpoint, synth_yaml, tmp_path, capsys):
    """The corpus' baseline: without the damage, the same commands succeed."""
    for command in COMMANDS:
        out = tmp_path / command
        result = run_cli(capsys, *_argv(command, good_checkpoint, synth_yaml, out))
        assert result.code == 0, result.err
        assert any(out.iterdir())


def _nan_outputs(ckpt):
    """Finite weights, NaN outputs: a negative BatchNorm variance makes sqrt(var) NaN."""
    sd = ckpt["state_dict"]
    name = next(k for k in sd if k.endswith("running_var"))
    sd[name] = -torch.ones_like(sd[name])
    return ckpt


def test_non_finite_outputs_stop_evaluate(good_checkpoint, synth_yaml, tmp_path, capsys):
    ckpt = _edit(good_checkpoint, tmp_path / "nanout.ckpt", _nan_outputs)
    out = tmp_path / "out"
    result = run_cli(capsys, *_argv("evaluate", ckpt, synth_yaml, out))
    assert_user_error(result, "model outputs are not finite", "nanout.ckpt")
    assert not (out / "metrics.json").exists()


def _yolo_split(root: Path, names: str, label: str) -> Path:
    """A one-image YOLO test split: a 32 x 32 photo, one label line, data.yaml with `names`."""
    (root / "images/test").mkdir(parents=True)
    (root / "labels/test").mkdir(parents=True)
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(root / "images/test/a.png")
    (root / "labels/test/a.txt").write_text(label + "\n")
    (root / "data.yaml").write_text(f"path: .\ntest: images/test\nnames: {names}\n")
    return root / "data.yaml"


def test_split_without_any_labelled_pixel_is_an_error(good_checkpoint, tmp_path, capsys):
    """names: [] and a polygon over the whole image: every pixel is ignore, nothing to score."""
    data = _yolo_split(tmp_path / "data", "[]", "0 0 0 1 0 1 1 0 1")
    out = tmp_path / "out"
    result = run_cli(capsys, *_argv("evaluate", good_checkpoint, data, out))
    assert_user_error(result, "data.yaml", "no labelled pixel")
    assert "1.0000" not in result.out and not (out / "metrics.json").exists()


def test_split_without_crack_label_reports_crack_scores_undefined(
    good_checkpoint, tmp_path, capsys
):
    """names: [] turns every crack pixel into ignore: crack IoU is 'undefined', never 1.0."""
    data = _yolo_split(tmp_path / "data", "[]", "0 0.2 0.2 0.4 0.2 0.4 0.4 0.2 0.4")
    out = tmp_path / "out"
    # --threshold 1: nothing predicted either, so there is nothing at all to score crack IoU on
    result = run_cli(capsys, *_argv("evaluate", good_checkpoint, data, out), "--threshold", "1")
    assert result.code == 0, result.err
    assert "warning:" in result.err and "no labelled crack pixel" in result.err
    rows = {line.rsplit(None, 1)[0].strip(): line.split()[-1] for line in result.out.splitlines()}
    assert rows["crack IoU"] == rows["crack F1 (Dice)"] == rows["recall"] == "undefined"
    saved = json.loads((out / "metrics.json").read_text())["metrics"]
    assert saved["crack_iou"] is None and saved["labelled_pixels"] > 0


BAD_FLAGS = {
    "evaluate": [(["--batch-size", "0"], "--batch-size"), (["--batch-size", "-3"], "--batch-size"),
                 (["--workers", "-1"], "--workers"), (["--tolerance", "-1"], "--tolerance"),
                 (["--threshold", "2"], "--threshold"), (["--threshold", "nan"], "--threshold"),
                 (["--scale", "0"], "--scale"), (["--scale", "big"], "--scale")],
    "explain": [(["--smoothgrad", "-1"], "--smoothgrad"), (["--cell", "8"], "--cell")],
}  # fmt: skip


@pytest.mark.parametrize("command,flags,word",
                         [(c, f, w) for c, cases in BAD_FLAGS.items() for f, w in cases])  # fmt: skip
def test_bad_flags_are_refused_before_any_work(
    command, flags, word, good_checkpoint, synth_yaml, tmp_path, capsys
):
    out = tmp_path / "out"
    result = run_cli(capsys, *_argv(command, good_checkpoint, synth_yaml, out), *flags)
    assert_user_error(result, word)
    assert not out.exists()


def test_evaluate_honours_threshold_zero(good_checkpoint, synth_yaml, tmp_path, capsys):
    """--threshold 0 is a request (every pixel is crack: recall 1), not "unset" (issue 10.3)."""
    out = tmp_path / "out"
    result = run_cli(capsys, *_argv("evaluate", good_checkpoint, synth_yaml, out), "--threshold",
                     "0", "--json")  # fmt: skip
    assert result.code == 0, result.err
    saved = json.loads(result.out)
    assert saved["threshold"] == 0.0 and saved["metrics"]["recall"] == 1.0


def test_a_real_process_prints_one_line_for_non_finite_weights(
    good_checkpoint, synth_yaml, tmp_path
):
    """As a user runs it (python -m crackseg, real DataLoader workers): exit 2, one line."""
    ckpt = _edit(good_checkpoint, tmp_path / "nan.ckpt", _weights(_nan_all))
    result = run_cli_process(*_argv("evaluate", ckpt, synth_yaml, tmp_path / "out"))
    assert_user_error(result, "nan.ckpt", "non-finite weights")
