"""Metrics: hand-computed examples for every score, conventions for empty cases, merging."""

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from crackseg.metrics import SegMetrics, format_table, probs_from_logits
from crackseg.metrics import functional as M

KEYS = {"crack_iou", "crack_f1", "precision", "recall", "miou", "pixel_acc"}
KEYS |= {"ods_f1", "ods_threshold", "ois_f1", "tol_f1"}


def _score(probs, targets, **kwargs):
    metrics = SegMetrics(**kwargs)
    metrics.update(torch.as_tensor(probs, dtype=torch.float32), torch.as_tensor(targets))
    return metrics.compute()


def _random_split(seed=0, B=6, H=24, W=20):
    g = torch.Generator().manual_seed(seed)
    targets = (torch.rand(B, H, W, generator=g) < 0.1).long()
    targets[torch.rand(B, H, W, generator=g) < 0.05] = 255
    targets[1] = 0  # an image with no crack
    probs = (0.5 * targets.clamp(max=1) + 0.6 * torch.rand(B, H, W, generator=g)).clamp(0, 1)
    return probs, targets


def test_hand_computed_confusion_scores_with_an_ignored_pixel():
    targets = [[[1, 1, 0], [0, 0, 255], [1, 0, 0]]]
    probs = [[[0.9, 0.35, 0.7], [0.1, 0.1, 0.9], [0.6, 0.3, 0.4]]]
    # At 0.5: TP = 2, FP = 1, FN = 1, TN = 4; the ignored 0.9 would otherwise be a false positive.
    out = _score(probs, targets, tolerance_px=0)
    assert set(out) >= KEYS
    assert out["crack_iou"] == pytest.approx(2 / 4)
    assert out["crack_f1"] == pytest.approx(4 / 6)
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["recall"] == pytest.approx(2 / 3)
    assert out["miou"] == pytest.approx((2 / 4 + 4 / 6) / 2)
    assert out["pixel_acc"] == pytest.approx(6 / 8)
    assert out["tol_f1"] == pytest.approx(out["crack_f1"])
    # The best single threshold, t in (0.3, 0.35], finds all 3 cracks with 2 false alarms (0.7,
    # 0.4): F1 = 6 / 8. Lower thresholds add 0.3 (6 / 9), higher ones lose 0.35 (at most 4 / 6).
    assert out["ods_f1"] == pytest.approx(6 / 8)
    assert out["ods_threshold"] == pytest.approx(0.31)
    assert out["ois_f1"] == pytest.approx(out["ods_f1"])  # one image: OIS == ODS
    assert out["images"] == 1 and out["ois_images"] == 1


def test_split_without_crack_reports_crack_scores_as_undefined():
    empty = torch.zeros(1, 4, 4, dtype=torch.long)
    quiet = _score(torch.full((1, 4, 4), 0.1), empty)
    # No crack to find and none predicted: crack IoU/F1/precision/recall have nothing to rest on.
    for key in ("crack_iou", "crack_f1", "precision", "recall", "tol_f1", "ods_f1"):
        assert quiet[key] is None, key
    assert quiet["pixel_acc"] == 1.0 and quiet["background_iou"] == 1.0
    assert quiet["miou"] == 1.0  # the mean over the classes whose IoU is defined
    assert quiet["ois_f1"] == 1.0  # per image: a threshold leaves it correctly empty
    assert quiet["labelled_pixels"] == 16

    probs = torch.full((1, 4, 4), 0.1)
    probs[0, 0, 0] = 0.7  # one false alarm
    noisy = _score(probs, empty)
    for key in ("crack_iou", "crack_f1", "precision", "tol_f1"):
        assert noisy[key] == 0.0, key
    assert noisy["recall"] is None  # no crack to find
    assert noisy["pixel_acc"] == pytest.approx(15 / 16)
    assert noisy["miou"] == pytest.approx((0 + 15 / 16) / 2)
    assert noisy["ois_f1"] == 1.0  # thresholds above 0.7 leave the image empty
    probs[0, 0, 0] = 1.0  # a false alarm no threshold removes
    assert _score(probs, empty)["ois_f1"] == 0.0


def test_cracks_but_no_prediction_scores_zero():
    targets = torch.zeros(1, 3, 3, dtype=torch.long)
    targets[0, 1, 1] = 1
    out = _score(torch.zeros(1, 3, 3), targets)
    for key in ("crack_iou", "crack_f1", "recall", "tol_f1", "ods_f1", "ois_f1"):
        assert out[key] == 0.0, key
    assert out["precision"] is None  # nothing predicted: no precision to report


def test_no_labelled_pixel_gives_no_score_at_all():
    """names: [] in a data.yaml makes every pixel ignore: no metric may then read 1.0 (issue 11)."""
    scores = ("crack_iou", "crack_f1", "precision", "recall", "miou", "background_iou",
              "pixel_acc", "ods_f1", "ods_threshold", "ois_f1", "tol_f1", "tol_precision",
              "tol_recall")  # fmt: skip
    nothing = SegMetrics().compute()  # nothing seen
    assert all(nothing[key] is None for key in scores)
    assert nothing["images"] == 0 and nothing["labelled_pixels"] == 0
    ignored = _score(torch.rand(2, 5, 5), torch.full((2, 5, 5), 255))
    assert all(ignored[key] is None for key in scores), ignored
    assert ignored["images"] == 2 and ignored["ois_images"] == 0 and ignored["labelled_pixels"] == 0
    table = format_table(ignored)
    assert "1.0000" not in table and table.count("undefined") == len(scores)


def test_fully_ignored_images_are_left_out_of_ois():
    targets = torch.full((2, 1, 2), 255)
    targets[0] = torch.tensor([[1, 0]])
    out = _score(torch.tensor([[[0.2, 0.9]], [[0.0, 0.0]]]), targets)
    assert out["ois_images"] == 1 and out["ois_f1"] == pytest.approx(2 / 3)  # not (2/3 + 1) / 2
    assert out["labelled_pixels"] == 2


def test_ods_and_ois_differ_on_two_images():
    # Image A: crack 0.3, background 0.1. Image B: crack 0.8, background 0.6.
    # Each image alone is separated perfectly (OIS = 1); one threshold for both cannot be:
    # t = 0.2 -> TP 2, FP 1, FN 0 -> F1 0.8; t = 0.5 -> 0.5; t = 0.7 -> 2/3.
    probs = torch.tensor([[[0.3, 0.1]], [[0.8, 0.6]]])
    targets = torch.tensor([[[1, 0]], [[1, 0]]])
    out = _score(probs, targets, thresholds=[0.2, 0.5, 0.7])
    assert out["ois_f1"] == pytest.approx(1.0)
    assert out["ods_f1"] == pytest.approx(0.8)
    assert out["ods_threshold"] == pytest.approx(0.2)


def test_tolerance_f1_accepts_one_pixel_shift():
    targets = torch.zeros(1, 12, 12, dtype=torch.long)
    targets[0, :, 5] = 1
    probs = torch.zeros(1, 12, 12)
    probs[0, :, 6] = 1.0  # the crack predicted one pixel to the right
    assert _score(probs, targets, tolerance_px=2)["tol_f1"] == 1.0
    assert _score(probs, targets, tolerance_px=1)["tol_f1"] == 1.0
    exact = _score(probs, targets, tolerance_px=0)
    assert exact["tol_f1"] == 0.0 == exact["crack_f1"]
    far = torch.zeros(1, 12, 12)
    far[0, :, 8] = 1.0  # three pixels away
    assert _score(far, targets, tolerance_px=2)["tol_f1"] == 0.0


def test_tolerance_precision_and_recall_by_hand():
    targets = torch.zeros(1, 12, 12, dtype=torch.long)
    targets[0, :10, 5] = 1  # 10 crack pixels in column 5
    probs = torch.zeros(1, 12, 12)
    probs[0, :5, 6] = 1.0  # 5 predicted next to rows 0..4
    probs[0, 11, 0] = 1.0  # a stray false alarm
    targets[0, 11, 11] = 255
    probs[0, 11, 11] = 1.0  # a prediction on an ignored pixel counts nowhere
    out = _score(probs, targets, tolerance_px=2)
    # Precision 5/6. Recall: ground-truth rows 0..5 lie within 2 px of a prediction
    # (row 5 -> (4, 6) is sqrt(2) away, row 6 -> sqrt(5) > 2): 6/10.
    assert out["tol_precision"] == pytest.approx(5 / 6)
    assert out["tol_recall"] == pytest.approx(6 / 10)
    assert out["tol_f1"] == pytest.approx(2 * (5 / 6) * 0.6 / (5 / 6 + 0.6))


def test_tolerance_zero_equals_plain_f1_on_random_data():
    probs, targets = _random_split(seed=3)
    out = _score(probs, targets, tolerance_px=0)
    assert out["tol_f1"] == pytest.approx(out["crack_f1"])
    assert out["tol_precision"] == pytest.approx(out["precision"])


@pytest.mark.parametrize("radius", [1, 2, 3, 5])
def test_torch_dilation_matches_scipy(radius):
    masks = torch.rand(3, 30, 33, generator=torch.Generator().manual_seed(radius)) < 0.03
    assert torch.equal(M.dilate(masks, radius), M.dilate_torch(masks, radius))
    one = torch.zeros(1, 11, 11, dtype=torch.bool)
    one[0, 5, 5] = True
    assert int(M.dilate(one, radius).sum()) == int(M.disk(radius).sum())


def test_fast_bins_match_bucketize_at_exact_thresholds():
    n = 99
    grid = (torch.arange(1, n + 1, dtype=torch.float64) / (n + 1)).float()
    below = torch.nextafter(grid, torch.zeros_like(grid))
    above = torch.nextafter(grid, torch.ones_like(grid))
    extremes = torch.tensor([0.0, 1.0, -0.5, 1.5])
    probs = torch.cat([grid, below, above, extremes, torch.rand(1000)])
    expected = torch.bucketize(probs, grid, right=True)
    assert torch.equal(M.probability_bins(probs, grid, uniform=True), expected)
    assert torch.equal(M.probability_bins(probs, grid), expected)


def test_merge_and_state_sum_equal_single_accumulation():
    probs, targets = _random_split(seed=1)
    whole = SegMetrics()
    whole.update(probs, targets)
    a, b = SegMetrics(), SegMetrics()
    a.update(probs[:2], targets[:2])
    b.update(probs[2:3], targets[2:3])
    b.update(probs[3:], targets[3:])
    merged = SegMetrics().merge(a).merge(b)
    summed = SegMetrics()
    summed.load_state_tensor(a.state_tensor() + b.state_tensor())
    for other in (merged, summed):
        assert other.compute() == pytest.approx(whole.compute(), rel=1e-12)
    with pytest.raises(ValueError, match="different settings"):
        a.merge(SegMetrics(tolerance_px=3))


def test_scores_are_split_level_not_batch_means():
    probs, targets = _random_split(seed=2)
    metrics = SegMetrics()
    for i in range(len(probs)):
        metrics.update(probs[i : i + 1], targets[i : i + 1])
    preds = (probs >= 0.5) & (targets != 255)
    gt = targets == 1
    tp, fp, fn = (preds & gt).sum(), (preds & ~gt).sum(), (~preds & gt).sum()
    assert metrics.compute()["crack_iou"] == pytest.approx(float(tp / (tp + fp + fn)))


def test_pr_curve_values_and_png(tmp_path):
    probs = torch.tensor([[[0.3, 0.1]], [[0.8, 0.6]]])
    targets = torch.tensor([[[1, 0]], [[1, 0]]])
    metrics = SegMetrics(thresholds=[0.2, 0.5, 0.7, 0.9])
    metrics.update(probs, targets)
    precision, recall, thresholds = metrics.pr_curve()
    np.testing.assert_allclose(thresholds, [0.2, 0.5, 0.7, 0.9])
    np.testing.assert_allclose(precision, [2 / 3, 1 / 2, 1.0, 0.0])  # 0.9: nothing predicted
    np.testing.assert_allclose(recall, [1.0, 1 / 2, 1 / 2, 0.0])
    path = metrics.save_pr_curve(tmp_path / "plots" / "pr.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100


def test_format_table_lists_every_metric():
    probs, targets = _random_split(seed=4)
    out = _score(probs, targets)
    table = format_table({**out, "epoch": 3})
    assert "crack IoU" in table and "OIS F1" in table and "tolerance F1" in table
    assert f"{out['crack_iou']:.4f}" in table
    assert "epoch" in table.splitlines()[-1] and table.splitlines()[-1].endswith("3")
    assert len(table.splitlines()) == len(out) + 3  # header, rule, one row per metric


def test_probs_from_logits_and_bad_inputs():
    logits = torch.randn(2, 2, 4, 4)
    torch.testing.assert_close(probs_from_logits(logits), logits.softmax(1)[:, 1])
    three = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(probs_from_logits(three), three.softmax(1)[:, 1:].sum(1))
    metrics = SegMetrics()
    with pytest.raises(ValueError, match="probs_from_logits"):
        metrics.update(torch.rand(2, 1, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))
    # Settings come from code (the CLI validates the user's flags): programmer errors.
    for kwargs in ({"thresholds": 0}, {"thresholds": [0.5, 0.2]}, {"threshold": 1.5}):
        with pytest.raises(ValueError):
            SegMetrics(**kwargs)
    with pytest.raises(ValueError, match="tolerance_px"):
        SegMetrics(tolerance_px=-1)


def _all_reduce_worker(rank, init_file, probs, targets, queue):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    metrics = SegMetrics()
    metrics.update(probs[rank::2], targets[rank::2])
    metrics.all_reduce()
    queue.put(metrics.compute())
    dist.destroy_process_group()


def test_all_reduce_across_two_processes(tmp_path):
    probs, targets = _random_split(seed=5)
    single = SegMetrics()
    single.update(probs, targets)
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    args = (str(tmp_path / "init"), probs, targets, queue)
    mp.start_processes(_all_reduce_worker, args=args, nprocs=2, start_method="spawn")
    results = [queue.get() for _ in range(2)]
    for result in results:
        assert result == pytest.approx(single.compute(), rel=1e-12)
