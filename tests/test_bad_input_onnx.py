"""Bad input to export and the onnxruntime backend: one `error:` line naming the file or option,
exit 2, no traceback, nothing written (the README's promise, tests/cli_contract.py)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from cli_contract import assert_user_error, run_cli, written_results  # noqa: E402

from crackseg.deploy.onnx_export import export_onnx  # noqa: E402
from crackseg.engine.checkpoint import model_payload, save_checkpoint  # noqa: E402
from crackseg.models import build_model  # noqa: E402

CONFIG = {"image_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3, "threshold": 0.5}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny checkpoint, its dynamic and fixed-size exports, and one image."""
    folder = tmp_path_factory.mktemp("onnx")
    model = build_model("unet_small", base_channels=4, depth=2).eval()
    model.config = dict(CONFIG)
    ckpt = save_checkpoint({**model_payload(model), "config": CONFIG}, folder / "tiny.ckpt")
    export_onnx(model, folder / "dynamic.onnx", dynamic=True)
    export_onnx(model, folder / "fixed.onnx", dynamic=False)
    Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(folder / "photo.png")
    return {"ckpt": ckpt, "dynamic": folder / "dynamic.onnx", "fixed": folder / "fixed.onnx",
            "image": folder / "photo.png"}  # fmt: skip


def handmade_onnx(path, inputs, output_shape=("B", 3, "H", "W")):
    """An Identity graph with the given inputs [(name, element type, shape)], no crackseg metadata."""
    from onnx import helper

    values = [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs]
    out = helper.make_tensor_value_info("y", inputs[0][1], list(output_shape))
    graph = helper.make_graph([helper.make_node("Identity", [inputs[0][0]], ["y"])], "g",
                              values, [out])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9  # readable by every onnxruntime the extra allows
    onnx.save(model, str(path))
    return path


def predict(capsys, files, tmp_path, checkpoint, *extra):
    args = ["predict", files["image"], "--out", tmp_path / "out", "--precision", "fp32"]
    args += ["--checkpoint", checkpoint] if checkpoint is not None else []
    result = run_cli(capsys, *args, *extra)
    assert written_results(tmp_path / "out") == []
    return result


def test_backend_and_file_must_match(files, tmp_path, capsys):
    r = predict(capsys, files, tmp_path, files["ckpt"], "--backend", "onnxruntime")
    assert_user_error(r, "tiny.ckpt", "crackseg export --checkpoint")
    r = predict(capsys, files, tmp_path, files["dynamic"])  # --backend torch, the default
    assert_user_error(r, "dynamic.onnx", "run it with --backend onnxruntime")
    r = predict(capsys, files, tmp_path, None, "--backend", "onnxruntime")
    assert_user_error(r, "--backend onnxruntime", "--checkpoint F.onnx")
    r = predict(capsys, files, tmp_path, files["dynamic"], "--backend", "tensorrt")
    assert r.code == 2 and "invalid choice" in r.err and "Traceback" not in r.err


@pytest.mark.parametrize("command", ["explain", "evaluate"])
def test_pytorch_only_commands_say_what_an_onnx_file_is(files, tmp_path, capsys, command):
    args = [command, "--checkpoint", files["dynamic"], "--out", tmp_path / "out"]
    args += [files["image"]] if command == "explain" else ["--data", tmp_path]
    result = run_cli(capsys, *args)
    assert_user_error(result, "dynamic.onnx", "PyTorch cannot load", "--backend onnxruntime")
    assert written_results(tmp_path / "out") == []


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", ["empty file"]),
        (b"just text, not a model", ["not a readable ONNX model"]),
        (None, ["ONNX model not found"]),
    ],  # fmt: skip
    ids=["empty", "not-onnx", "missing"],
)
def test_files_that_are_no_onnx_model(files, tmp_path, capsys, content, words):
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    r = predict(capsys, files, tmp_path, path, "--backend", "onnxruntime")
    assert_user_error(r, "model.onnx", *words)


def test_a_folder_named_like_a_model(files, tmp_path, capsys):
    (tmp_path / "model.onnx").mkdir()
    r = predict(capsys, files, tmp_path, tmp_path / "model.onnx", "--backend", "onnxruntime")
    assert_user_error(r, "model.onnx", "is a folder")


def test_models_with_other_inputs(files, tmp_path, capsys):
    from onnx import TensorProto

    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    cases = {
        "two.onnx": ([("a", f, ["B", 3, "H", "W"]), ("b", f, ["B", 3, "H", "W"])], "2 inputs"),
        "flat.onnx": ([("x", f, ["B", 768])], "shape [Bx768]"),
        "ints.onnx": ([("x", i64, ["B", 3, "H", "W"])], "tensor(int64)"),
        "gray.onnx": ([("x", f, ["B", 1, "H", "W"])], "shape [Bx1xHxW]"),
        "plain.onnx": ([("x", f, ["B", 3, "H", "W"])], "no crackseg metadata"),
    }
    for name, (inputs, words) in cases.items():
        path = handmade_onnx(tmp_path / name, inputs)
        r = predict(capsys, files, tmp_path, path, "--backend", "onnxruntime")
        assert_user_error(r, name, words)


def test_a_fixed_size_export_asks_for_dynamic(files, tmp_path, capsys):
    r = predict(capsys, files, tmp_path, files["fixed"], "--backend", "onnxruntime")
    assert_user_error(r, "fixed.onnx", "fixed 32x32 input", "crackseg export --dynamic")


def test_bf16_is_not_silently_dropped_under_onnxruntime(files, tmp_path, capsys):
    r = predict(capsys, files, tmp_path, files["dynamic"], "--backend", "onnxruntime",
                "--precision", "bf16")  # fmt: skip
    assert_user_error(r, "--precision bf16", "float32 in ONNX Runtime")


def test_onnxruntime_not_installed(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    r = predict(capsys, files, tmp_path, files["dynamic"], "--backend", "onnxruntime")
    assert_user_error(r, "onnxruntime is missing", "pip install 'crackseg[onnx]'")
    r = run_cli(capsys, "export", "--checkpoint", files["ckpt"], "--out", tmp_path / "m.onnx")
    assert_user_error(r, "onnxruntime is missing", "pip install 'crackseg[onnx]'")
    assert not (tmp_path / "m.onnx").exists()


def test_serve_refuses_a_mismatched_backend_before_binding(files, capsys):
    pytest.importorskip("fastapi")  # the serve extra: the file is read after it is imported
    r = run_cli(capsys, "serve", "--checkpoint", files["ckpt"], "--backend", "onnxruntime",
                "--port", "0")  # fmt: skip
    assert_user_error(r, "tiny.ckpt", "crackseg export")
    r = run_cli(capsys, "serve", "--checkpoint", files["fixed"], "--backend", "onnxruntime",
                "--port", "0")  # fmt: skip
    assert_user_error(r, "fixed.onnx", "--dynamic")


def test_export_options(files, tmp_path, capsys):
    ckpt = files["ckpt"]
    cases = [
        (["--out", tmp_path / "m.txt"], ["--out", "*.onnx"]),
        (["--out", tmp_path / "m.onnx", "--image-size", "0"], ["--image-size", ">= 1"]),
        (
            ["--out", tmp_path / "m.onnx", "--checkpoint", files["dynamic"]],
            ["dynamic.onnx", "already an ONNX model"],
        ),  # fmt: skip
        (
            ["--out", tmp_path / "m.onnx", "--checkpoint", tmp_path / "no.ckpt"],
            ["no.ckpt", "not found"],
        ),  # fmt: skip
    ]
    for extra, words in cases:
        argv = ["export", *(["--checkpoint", ckpt] if "--checkpoint" not in extra else []), *extra]
        assert_user_error(run_cli(capsys, *argv), *words)
    (tmp_path / "dir.onnx").mkdir()
    r = run_cli(capsys, "export", "--checkpoint", ckpt, "--out", tmp_path / "dir.onnx")
    assert_user_error(r, "dir.onnx", "is a folder")
    r = run_cli(capsys, "export", "--checkpoint", ckpt, "--format", "tflite", "--out", "m.onnx")
    assert r.code == 2 and "invalid choice: 'tflite'" in r.err and "Traceback" not in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.onnx"]


def test_export_refuses_a_model_without_segmentation_logits(tmp_path, capsys):
    encoder = build_model("vit_tiny_patch16", embed_dim=32, depth=1, num_heads=2, image_size=32)
    ckpt = save_checkpoint({**model_payload(encoder), "config": CONFIG}, tmp_path / "vit.ckpt")
    r = run_cli(capsys, "export", "--checkpoint", ckpt, "--dynamic", "--out", tmp_path / "v.onnx")
    assert_user_error(r, "vit_tiny_patch16", "only segmentation models export")
    assert not (tmp_path / "v.onnx").exists() and not list(tmp_path.glob(".*.tmp"))
