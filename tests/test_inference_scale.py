"""Large photos: `auto` scale brings a big photo's short side down to 2 training windows, keeps
small images as they are, and always returns probabilities at the photo's own size."""

import numpy as np
import pytest
import torch
from torch import nn

from crackseg.errors import CrackSegError
from crackseg.inference import AUTO_SHORT_SIDE, Predictor, auto_scale, scale_settings


class SizeRecorder(nn.Module):
    """A pointwise model that remembers the largest input it was given."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        self.seen = (0, 0)

    def forward(self, images):  # (B, 3, H, W) -> (B, 2, H, W)
        self.seen = max(self.seen, tuple(images.shape[-2:]))
        return self.conv(images)


def test_auto_scale_bounds_the_short_side_and_never_upscales():
    assert auto_scale(3000, 4000, 416) == pytest.approx(AUTO_SHORT_SIDE * 416 / 3000)
    assert auto_scale(416, 416, 416) == 1.0
    assert auto_scale(800, 600, 416) == 1.0  # 600 <= 832
    assert auto_scale(3000, 4000, 416, scale=0.1) == 0.1  # the run's own smaller scale wins


def test_auto_predictor_shows_the_model_a_smaller_photo_and_answers_at_full_size():
    model = SizeRecorder().eval()
    predictor = Predictor(model, window=16, mean=(0, 0, 0), std=(1, 1, 1), auto=True)
    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    probs = predictor.predict_probs(image)
    assert probs.shape == (90, 120)
    assert predictor.scale_for(90, 120) == pytest.approx(32 / 90)
    model.seen = (0, 0)
    predictor.logits(torch.zeros(1, 3, 90, 120))
    assert model.seen == (16, 16)  # tiled at about (32, 43): every window is the model's size
    fixed = Predictor(model, window=16, mean=(0, 0, 0), std=(1, 1, 1), scale=1.0)
    assert fixed.scale_for(90, 120) == 1.0


@pytest.mark.parametrize("value", ["0", "-2", "nan", "inf", "9", "big", ""])
def test_bad_scale_values_are_user_errors(value):
    with pytest.raises(CrackSegError, match="--scale"):
        scale_settings(value)


def test_scale_settings():
    assert scale_settings("auto") == {"auto": True}
    assert scale_settings("0.5") == {"scale": 0.5}


def test_evaluate_scores_what_predict_sees_at_a_scale(synth_yaml, tmp_path, monkeypatch):
    """`evaluate --scale F` shows the model the images resized by F, as `predict --scale F` does,
    scores at the labels' size, and records the scale; the default (auto) is the run's own."""
    from crackseg import build_model
    from crackseg.conventions import IMAGENET_MEAN, IMAGENET_STD
    from crackseg.engine.checkpoint import model_payload, save_checkpoint
    from crackseg.evaluate import check_options, evaluate_checkpoint

    config = {"image_size": 64, "threshold": 0.5, "mean": list(IMAGENET_MEAN),
              "std": list(IMAGENET_STD)}  # fmt: skip
    torch.manual_seed(0)
    model = build_model("unet_small", base_channels=4, depth=2)
    ckpt = save_checkpoint({**model_payload(model), "config": config}, tmp_path / "m.ckpt")
    seen = []
    forward = Predictor._forward
    monkeypatch.setattr(Predictor, "_forward",
                        lambda self, x: seen.append(tuple(x.shape[-2:])) or forward(self, x))  # fmt: skip
    own = evaluate_checkpoint(ckpt, synth_yaml, split="val")
    assert set(seen) == {(64, 64)} and own["scale"] == "auto"
    seen.clear()
    half = evaluate_checkpoint(ckpt, synth_yaml, split="val", scale=0.5)
    assert set(seen) == {(32, 32)} and half["scale"] == 0.5
    assert half["metrics"]["images"] == own["metrics"]["images"] == 4
    assert half["metrics"]["labelled_pixels"] == own["metrics"]["labelled_pixels"]  # label size
    with pytest.raises(CrackSegError, match="--scale"):
        check_options(batch_size=1, workers=0, tolerance_px=2, threshold=None, scale=0)
