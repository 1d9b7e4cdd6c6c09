"""The REAL shipped model (`crackseg/weights/`): it loads with no argument, is small, half precision,
finite, calibrated, and finds cracks on real photos.

These tests fail until the trained weights are committed: that is intended (a release without its
model must not pass). Run them alone with `pytest -m bundled_model`. The accuracy check skips only
when ../shared/data/crack-seg is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import crackseg
from crackseg.weights import ENV_DIR, MAX_BYTES, default_model

pytestmark = pytest.mark.bundled_model

CRACK_SEG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crack-seg"
# The whole val split (200 images, ~30 s on 2 cores), not the first 20: those all come from one
# Roboflow upload batch (1604-1837) whose labels are drawn wider than the cracks (crackseg-unetvit-v3
# scores 0.640 on all 200 but 0.561 on the first 20 sorted; v2: 0.621, 0.552; per-batch figures:
# benchmarks/label_boundary.py and benchmarks/results/model_search.md).
VAL_IMAGES = 200
MIN_CRACK_IOU = 0.60


@pytest.fixture(autouse=True)
def package_weights(monkeypatch):
    """The package's own weights folder, never a test override."""
    monkeypatch.delenv(ENV_DIR, raising=False)


def test_the_default_bundled_model_is_shipped_small_and_sound():
    from safetensors import safe_open

    bundled = default_model()  # CrackSegError "no bundled model" until the weights are committed
    assert bundled.file.parent == Path(crackseg.__file__).parent / "weights"
    assert bundled.size_bytes < MAX_BYTES, f"{bundled.file}: {bundled.size_bytes} bytes"
    assert 0 < bundled.threshold < 1
    assert bundled.dtype in ("fp16", "bf16"), "keep float32 only when half precision loses IoU"
    stored = {"fp16": torch.float16, "bf16": torch.bfloat16}[bundled.dtype]
    with safe_open(bundled.file, framework="pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118
    floats = {d for d in dtypes if d in ("F16", "BF16", "F32", "F64")}
    assert floats == {{torch.float16: "F16", torch.bfloat16: "BF16"}[stored]}, dtypes
    model = crackseg.load_model()  # no argument: the bundled model
    assert not model.training
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            assert value.dtype == torch.float32, name
            assert bool(torch.isfinite(value).all()), name
    assert model.config["threshold"] == bundled.threshold
    assert {"image_size", "mean", "std"} <= set(model.config)
    logits = model(torch.rand(1, 3, 64, 96))
    assert logits.shape[-2:] == (64, 96) and bool(torch.isfinite(logits).all())


@pytest.mark.skipif(not CRACK_SEG.is_dir(), reason="../shared/data/crack-seg not present")
def test_the_bundled_model_finds_cracks_on_crack_seg_val():
    from crackseg.data import CrackDataset, load_index
    from crackseg.engine.loop import evaluate
    from crackseg.engine.setup import eval_loader
    from crackseg.inference import Predictor
    from crackseg.metrics import SegMetrics

    bundled = default_model()
    predictor = Predictor.from_checkpoint(bundled.file)
    index = load_index(CRACK_SEG / "crack-seg.yaml")
    items = sorted(index.split("val"), key=lambda item: item.image.name)[:VAL_IMAGES]
    dataset = CrackDataset(items, resize="native", class_names=index.class_names)
    metrics = SegMetrics(threshold=bundled.threshold)
    with torch.inference_mode():
        evaluate(predictor.model, eval_loader(dataset, batch_size=4, workers=0), metrics,
                 device=predictor.device, mean=predictor.mean, std=predictor.std,
                 predict=predictor)  # fmt: skip
    scores = metrics.compute()
    assert scores["images"] == VAL_IMAGES
    assert scores["crack_iou"] >= MIN_CRACK_IOU, (
        f"{bundled.name}: crack IoU {scores['crack_iou']:.3f} on the {VAL_IMAGES} crack-seg "
        f"val images at threshold {bundled.threshold}"
    )
