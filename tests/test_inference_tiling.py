"""Tiled prediction: no crack frame around large photos, and the same answer as an untiled pass.

The models here are tiny and hand-made so that their behaviour is known: `DarkDetector` calls
every pixel crack whose neighbourhood is darker than a grey level, so any padding the tiler adds
(the mean colour, black) would be painted as a frame.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from crackseg.conventions import IMAGENET_MEAN, IMAGENET_STD
from crackseg.inference import (
    OVERLAPS,
    Predictor,
    axis_weights,
    crack_logodds,
    edge_weight,
    window_starts,
)
from crackseg.metrics import probs_from_logits
from crackseg.tensors import normalize


class DarkDetector(nn.Module):
    """Crack logit > 0 where the 5x5 mean brightness is below `level` (image in [0, 1])."""

    def __init__(self, level: float = 0.49):
        super().__init__()
        self.level = level
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images):  # (B, 3, H, W) normalised -> (B, 2, H, W)
        brightness = (images * self.std + self.mean).mean(1, keepdim=True)  # (B, 1, H, W)
        local = F.avg_pool2d(F.pad(brightness, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
        crack = (self.level - local) * 50
        return torch.cat([torch.zeros_like(crack), crack], dim=1)


def predictor(model, window, **kw):
    return Predictor(model, window=window, mean=IMAGENET_MEAN, std=IMAGENET_STD, **kw)


@pytest.mark.parametrize("size", [(48, 48), (60, 80), (97, 61), (150, 33)])
@pytest.mark.parametrize("overlap", [*OVERLAPS, True, False])
def test_a_blank_photo_of_any_size_has_no_cracks(size, overlap):
    grey = np.full((*size, 3), 128, dtype=np.uint8)  # brighter than the level, darker than white
    probs = predictor(DarkDetector(), window=32, overlap=overlap).predict_probs(grey)
    assert probs.shape == size
    assert (probs < 0.5).all(), f"{(probs >= 0.5).sum()} crack pixels on a blank {size} image"


@pytest.mark.parametrize("overlap", OVERLAPS)
def test_tiled_equals_untiled_for_a_local_model_on_a_dark_line(overlap):
    """A crack drawn across the image is found where a single pass finds it, seams included."""
    image = np.full((90, 130, 3), 150, dtype=np.uint8)
    image[40:43, :] = 20  # horizontal dark crack
    image[:, 70:72] = 30  # vertical one, crossing window seams
    whole = predictor(DarkDetector(), window=256).predict_probs(image) >= 0.5
    tiled = predictor(DarkDetector(), window=32, overlap=overlap).predict_probs(image) >= 0.5
    assert whole.sum() > 0
    np.testing.assert_array_equal(tiled, whole)


def test_tiled_equals_untiled_for_a_pointwise_model_with_tta_and_odd_sizes():
    torch.manual_seed(0)
    pointwise = nn.Conv2d(3, 2, 1).eval()
    x = torch.randn(2, 3, 77, 41)
    for overlap in (*OVERLAPS, True, False):
        tiled = predictor(pointwise, window=16, overlap=overlap, tta=True).logits(x)
        torch.testing.assert_close(tiled, pointwise(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("length", [10, 32, 33, 63, 64, 65, 100, 417])
@pytest.mark.parametrize("overlap", OVERLAPS)
def test_windows_cover_the_side_and_stay_inside_it(length, overlap):
    window = min(32, length)
    starts = window_starts(length, window, overlap=overlap)
    covered = np.zeros(length, dtype=int)
    for s in starts:
        assert s >= 0 and s + window <= length
        covered[s : s + window] += 1
    assert covered.min() >= 1
    gaps = np.diff(starts)
    assert (gaps <= window - np.ceil(OVERLAPS[overlap] * window)).all()
    assert starts == sorted(set(starts))


def test_edge_weight_is_flat_at_the_image_border_and_ramps_over_shared_strips():
    w = edge_weight(8, ramp_start=0, ramp_end=4)
    assert w[0] == w[3] == 1.0 and w[-1] < 0.2
    both = edge_weight(8, ramp_start=2, ramp_end=2)
    assert both[0] == both[-1] < 0.3 and (both[2:6] == 1).all() and (both > 0).all()
    torch.testing.assert_close(edge_weight(8, ramp_start=0, ramp_end=0), torch.ones(8))


@pytest.mark.parametrize("length", [33, 64, 100, 417])
@pytest.mark.parametrize("overlap", OVERLAPS)
def test_neighbouring_windows_cross_fade_to_a_total_weight_of_one(length, overlap):
    """Exactly 1 where at most two windows share a pixel (none, quarter); with half overlap,
    evenly spread windows can share a little more, and the blend divides by the total."""
    starts = window_starts(length, 32, overlap=overlap)
    total = torch.zeros(length)
    for s, w in zip(starts, axis_weights(starts, 32), strict=True):
        total[s : s + 32] += w
    if overlap == "half":
        assert total.min() > 0.99 and total.max() < 1.1
    else:
        torch.testing.assert_close(total, torch.ones(length))


def test_quarter_overlap_needs_fewer_windows_than_half():
    counts = {name: len(window_starts(1109, 416, overlap=name)) for name in OVERLAPS}
    assert counts == {"none": 3, "quarter": 4, "half": 5}


class InputRecorder(nn.Module):
    """A pointwise model with K classes that records every input's dtype and shape."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)
        self.inputs = []

    def forward(self, images):  # (B, 3, H, W) -> (B, K, H, W)
        self.inputs.append((images.dtype, tuple(images.shape)))
        return self.conv(images)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_a_photo_goes_through_as_normalised_tiles_and_one_crack_map(num_classes):
    """The model only ever sees float tiles of the window size (the photo stays uint8), the
    blend keeps one crack map whatever K is, and the probabilities equal the K-logit path's."""
    torch.manual_seed(0)
    model = InputRecorder(num_classes).eval()
    image = np.random.default_rng(0).integers(0, 255, (70, 100, 3), dtype=np.uint8)
    tiler = predictor(model, window=32, tiles_per_batch=4)
    probs = tiler.predict_probs(image)
    assert {shape for _, shape in model.inputs} <= {(n, 3, 32, 32) for n in range(1, 5)}
    assert {dtype for dtype, _ in model.inputs} == {torch.float32}
    x = torch.from_numpy(image).permute(2, 0, 1)[None]  # (1, 3, 70, 100) uint8
    assert tiler._tiled(x, crack_logodds).shape == (1, 1, 70, 100)
    reference = probs_from_logits(
        tiler.logits(normalize(x.float() / 255, IMAGENET_MEAN, IMAGENET_STD))
    )
    np.testing.assert_allclose(probs, reference[0].numpy(), atol=1e-5)


def test_on_cpu_tiles_go_one_at_a_time_unless_asked():
    model = InputRecorder(2).eval()
    predictor(model, window=32).predict_probs(np.zeros((70, 100, 3), dtype=np.uint8))
    assert {shape[0] for _, shape in model.inputs} == {1}
    assert predictor(model, window=32, tiles_per_batch=3).tiles_per_batch == 3


@pytest.mark.parametrize("overlap", ["third", 0.6, -0.1])
def test_an_unknown_overlap_is_refused(overlap):
    with pytest.raises(ValueError, match="overlap"):
        predictor(nn.Conv2d(3, 2, 1), window=32, overlap=overlap)
