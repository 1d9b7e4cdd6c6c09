"""ONNX export and the onnxruntime backend: exported logits equal PyTorch's at sizes the trace never
saw, the file alone predicts (metadata), and predict / serve give the same masks on both backends."""

from __future__ import annotations

import base64
import io
import os
import pickle
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from crackseg.cli import main  # noqa: E402
from crackseg.deploy.onnx_export import export_onnx  # noqa: E402
from crackseg.deploy.onnx_runtime import load_onnx_model  # noqa: E402
from crackseg.engine.checkpoint import load_model, model_payload, save_checkpoint  # noqa: E402
from crackseg.inference import Predictor  # noqa: E402
from crackseg.models import build_model  # noqa: E402

WINDOW = 32
CONFIG = {"image_size": WINDOW, "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3],
          "predict_scale": 1.0, "threshold": 0.55}  # fmt: skip
TINY_VIT = dict(embed_dim=32, depth=1, num_heads=2, image_size=WINDOW)
TINY = {  # one of each family, tiny widths: the whole file runs in seconds at 1 thread
    "unet_small": dict(base_channels=4, depth=2),
    "unet_vit_small": dict(
        base_channels=4, depth=2, transformer_depth=1, embed_dim=16, num_heads=2, image_size=WINDOW
    ),  # fmt: skip
    "segmenter_vit_tiny_patch16_mask": TINY_VIT,  # learned positions, resampled per size
    "segmenter_vit_tiny_convstem8_skip": dict(TINY_VIT, stem_channels=4),
}


def tiny_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, **TINY[name]).eval()
    with torch.no_grad():  # zero-initialised parts (positions, biases) made to matter
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.config = dict(CONFIG)
    return model


def tiny_checkpoint(folder, name="unet_vit_small"):
    return save_checkpoint({**model_payload(tiny_model(name)), "config": CONFIG},
                           folder / f"{name}.ckpt")  # fmt: skip


@pytest.mark.parametrize("name", sorted(TINY))
def test_exported_logits_equal_pytorch_at_two_unseen_sizes(name, tmp_path):
    model = tiny_model(name)
    report = export_onnx(model, tmp_path / "m.onnx", dynamic=True)
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    traced = report.checks[0][0]
    for shape in [(1, 3, 45, 70), (3, 3, 96, 61)]:  # neither the trace's nor a patch multiple
        assert shape != traced
        images = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            expected = model(images).numpy()
        (got,) = session.run(None, {"images": images.numpy()})
        assert got.shape == expected.shape == (shape[0], 2, *shape[2:])
        assert np.abs(got - expected).max() <= 1e-4, name


def test_static_export_takes_its_size_only(tmp_path):
    report = export_onnx(tiny_model("unet_small"), tmp_path / "s.onnx", dynamic=False,
                         image_size=40)  # fmt: skip
    (image,) = ort.InferenceSession(str(report.path)).get_inputs()
    assert image.shape[1:] == [3, 40, 40] and not isinstance(image.shape[0], int)  # any batch
    assert load_onnx_model(report.path, any_size=False).fixed_size == (40, 40)


def test_the_file_alone_carries_what_inference_needs(tmp_path):
    path = export_onnx(tiny_model("unet_vit_small"), tmp_path / "m.onnx", dynamic=True).path
    model = load_onnx_model(path)
    assert {k: model.config[k] for k in CONFIG} == CONFIG
    assert model.preset["name"] == "unet_vit_small"
    predictor = Predictor.from_checkpoint(path, backend="onnxruntime")
    assert (predictor.window, predictor.mean, predictor.std, predictor.scale) == (
        WINDOW, CONFIG["mean"], CONFIG["std"], 1.0)  # fmt: skip
    clone = pickle.loads(pickle.dumps(model))  # predict --processes sends it to workers
    images = torch.randn(2, 3, 33, 47)
    assert torch.equal(clone(images), model(images))


def test_ort_threads_follow_torch(tmp_path):
    from crackseg.deploy.onnx_runtime import session_options

    assert session_options().intra_op_num_threads == torch.get_num_threads()
    assert session_options(3).intra_op_num_threads == 3


def write_images(folder) -> list:
    """Three photos: smaller than the window, about its size, and larger (tiled)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(24, 30), (32, 40), (90, 75)]):
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        image[h // 2 : h // 2 + 2] = 10  # a dark line for some crack pixels
        Image.fromarray(image).save(folder / f"p{i}.png")
    return sorted(folder.iterdir())


def test_predict_writes_the_same_masks_on_both_backends(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path)
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--dynamic", "--out", str(onnx_path)]) == 0
    assert "ONNX Runtime matches PyTorch" in capsys.readouterr().out
    images = write_images(tmp_path / "in")
    runs = {"torch": ckpt, "onnxruntime": onnx_path}
    for backend, checkpoint in runs.items():
        argv = ["predict", tmp_path / "in", "--checkpoint", checkpoint, "--backend", backend,
                "--out", tmp_path / backend, "--precision", "fp32"]  # fmt: skip
        assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    for image in images:
        masks = [np.asarray(Image.open(tmp_path / b / f"{image.stem}_mask.png")) for b in runs]
        probs = [np.asarray(Image.open(tmp_path / b / f"{image.stem}_prob.png")) for b in runs]
        np.testing.assert_array_equal(masks[0], masks[1])
        assert np.abs(probs[0].astype(int) - probs[1]).max() <= 1  # 8-bit rounding
    assert sum(m.mean() for m in masks) > 0 and max(Image.open(images[2]).size) > WINDOW


def test_export_of_the_bundled_default_says_so(weights_dir, tmp_path, capsys):
    from crackseg.weights.bundle import write_bundle

    write_bundle(tiny_model("unet_small"), weights_dir, "tiny-v0", dtype="fp32", threshold=0.65,
                 extra={"default": True})  # fmt: skip
    assert main(["export", "--dynamic", "--out", str(tmp_path / "b.onnx")]) == 0
    err = capsys.readouterr().err
    assert "using the bundled model tiny-v0" in err and len(err.strip().splitlines()) == 1
    assert load_onnx_model(tmp_path / "b.onnx").config["threshold"] == 0.65
    assert load_model(None).config["threshold"] == 0.65


def test_serve_with_onnxruntime_answers_like_torch(tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    ckpt = tiny_checkpoint(tmp_path)
    onnx_path = export_onnx(load_model(ckpt), tmp_path / "m.onnx", dynamic=True).path
    image = write_images(tmp_path / "in")[2]
    cmd = [sys.executable, "-m", "crackseg", "serve", "--backend", "onnxruntime",
           "--checkpoint", str(onnx_path), "--port", "0"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)  # fmt: skip
    try:
        first = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url and "unet_vit_small" in first, first
        for _ in range(100):  # bound before uvicorn accepts
            try:
                files = {"file": ("p.png", image.read_bytes(), "image/png")}
                body = httpx.post(f"{url.group()}/api/predict", files=files, timeout=60).json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask_png_base64"]))))
    predictor = Predictor.from_checkpoint(ckpt, auto=True)  # as serve: --scale auto
    probs = predictor.predict_probs(np.asarray(Image.open(image).convert("RGB")))
    assert body["threshold"] == CONFIG["threshold"]
    np.testing.assert_array_equal(mask > 0, probs >= CONFIG["threshold"])
