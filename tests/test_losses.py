"""Losses: known values on tiny tensors, ignore_index behaviour, spec parsing and errors."""

import math

import pytest
import torch
import torch.nn.functional as F

from crackseg.errors import CrackSegError
from crackseg.losses import (
    CrossEntropyLoss,
    DiceLoss,
    FocalLoss,
    TverskyLoss,
    build_loss,
)


def _batch(seed=0, B=2, K=2, H=6, W=5, ignore_frac=0.2):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, K, H, W, generator=g)
    targets = torch.randint(0, K, (B, H, W), generator=g)
    targets[torch.rand(B, H, W, generator=g) < ignore_frac] = 255
    return logits, targets


def _logits_from_p(p):
    """Two-class logits (B, 2, H, W) whose softmax crack probability is p (B, H, W)."""
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)


@pytest.mark.parametrize("weights", [None, [0.2, 3.0]])
def test_ce_equals_torch_cross_entropy(weights):
    logits, targets = _batch()
    w = None if weights is None else torch.tensor(weights)
    ours = CrossEntropyLoss(class_weights=w)(logits, targets)
    ref = F.cross_entropy(logits, targets, weight=w, ignore_index=255)
    torch.testing.assert_close(ours, ref)


def test_all_ignored_batch_gives_zero_not_nan():
    logits = torch.randn(1, 2, 3, 3, requires_grad=True)
    targets = torch.full((1, 3, 3), 255)
    loss = build_loss({"ce": 1, "dice": 1, "focal": 1, "tversky": 1, "cldice": 1})
    value = loss(logits, targets)
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits))


@pytest.mark.parametrize("name", ["ce", "dice", "focal", "tversky", "cldice"])
def test_ignored_pixels_have_no_effect(name):
    logits, targets = _batch(seed=1)
    loss = build_loss(name)
    logits = logits.requires_grad_()
    value = loss(logits, targets)
    value.backward()
    ignored = (targets == 255).unsqueeze(1).expand_as(logits)
    assert ignored.any()
    assert torch.all(logits.grad[ignored] == 0)
    # Changing the logits under ignored pixels leaves the value unchanged.
    changed = logits.detach() + 5.0 * ignored * torch.randn_like(logits)
    torch.testing.assert_close(loss(changed, targets), value.detach())


def test_dice_perfect_prediction_is_near_zero_and_wrong_is_near_one():
    targets = torch.zeros(2, 8, 8, dtype=torch.long)
    targets[:, 3, :] = 1
    sure = torch.where(targets == 1, 0.99999, 0.00001).double()
    assert DiceLoss()(_logits_from_p(sure), targets).item() < 1e-3
    wrong = 1 - sure
    assert DiceLoss()(_logits_from_p(wrong), targets).item() > 0.99


def test_dice_known_value_over_whole_batch():
    # Image 1: crack pixel p=0.75, background p=0.25. Image 2 (no crack): two pixels p=0.5.
    p = torch.tensor([[[0.75, 0.25]], [[0.5, 0.5]]], dtype=torch.float64)  # (2, 1, 2)
    targets = torch.tensor([[[1, 0]], [[0, 0]]])
    tp, sum_p, sum_g = 0.75, 0.75 + 0.25 + 1.0, 1.0
    for smooth in (0.0, 1.0):
        expected = 1 - (2 * tp + smooth) / (sum_p + sum_g + smooth)
        value = DiceLoss(smooth=smooth)(_logits_from_p(p), targets)
        assert value.item() == pytest.approx(expected, rel=1e-6)


def test_dice_is_batch_level_not_per_image_mean():
    logits, targets = _batch(seed=2, B=3, ignore_frac=0.0)
    whole = DiceLoss()(logits, targets)
    tiled = DiceLoss()(
        torch.cat(list(logits), dim=-1)[None], torch.cat(list(targets), dim=-1)[None]
    )
    torch.testing.assert_close(whole, tiled)
    per_image = torch.stack([DiceLoss()(logits[i : i + 1], targets[i : i + 1]) for i in range(3)])
    assert not torch.isclose(whole, per_image.mean())


def test_tversky_known_value_and_dice_special_case():
    p = torch.tensor([[[0.75, 0.25, 0.5]]], dtype=torch.float64)  # (1, 1, 3)
    targets = torch.tensor([[[1, 0, 1]]])
    tp, fp, fn = 0.75 + 0.5, 0.25, 0.25 + 0.5
    expected = 1 - (tp + 1) / (tp + 0.3 * fp + 0.7 * fn + 1)
    value = TverskyLoss(alpha=0.3, beta=0.7)(_logits_from_p(p), targets)
    assert value.item() == pytest.approx(expected, rel=1e-6)
    logits, targets = _batch(seed=3)
    torch.testing.assert_close(
        TverskyLoss(alpha=0.5, beta=0.5, smooth=0.5)(logits, targets), DiceLoss()(logits, targets)
    )


def test_focal_known_value_and_gamma_zero_is_ce():
    p = torch.tensor([[[0.75]]], dtype=torch.float64)
    value = FocalLoss(gamma=2.0)(_logits_from_p(p), torch.tensor([[[1]]]))
    assert value.item() == pytest.approx(-(0.25**2) * math.log(0.75), rel=1e-6)
    logits, targets = _batch(seed=4)
    w = torch.tensor([0.3, 2.0])
    torch.testing.assert_close(
        FocalLoss(gamma=0.0, class_weights=w)(logits, targets),
        F.cross_entropy(logits, targets, weight=w, ignore_index=255),
    )


def test_multiclass_dice_uses_every_non_background_class():
    logits, targets = _batch(seed=5, K=3)
    value = DiceLoss(smooth=0.0)(logits, targets)
    probs = logits.softmax(1)
    valid = targets != 255
    per_class = []
    for c in (1, 2):
        pc, gc = probs[:, c] * valid, (targets == c).double()
        per_class.append(2 * (pc * gc).sum() / (pc.sum() + gc.sum()))
    assert value.item() == pytest.approx(1 - sum(per_class).item() / 2, rel=1e-5)


def test_spec_parsing_weights_and_last_terms():
    logits, targets = _batch(seed=6)
    loss = build_loss("0.5*ce + 1.0*dice")
    assert loss.weights == {"ce": 0.5, "dice": 1.0}
    total = loss(logits, targets)
    ce = F.cross_entropy(logits, targets, ignore_index=255)
    dice = DiceLoss()(logits, targets)
    torch.testing.assert_close(total, 0.5 * ce + dice)
    assert set(loss.last_terms) == {"ce", "dice"}
    assert loss.last_terms["ce"] == pytest.approx(ce.item(), rel=1e-6)
    assert build_loss("CE").weights == {"ce": 1.0}
    assert build_loss().weights == {"ce": 1.0, "dice": 1.0}


def test_dict_spec_with_options():
    spec = {"ce": 1.0, "focal": {"weight": 2, "gamma": 1.5}, "tversky": {"alpha": 0.2, "beta": 0.8}}
    loss = build_loss(spec, class_weights=[1.0, 4.0])
    assert loss.weights == {"ce": 1.0, "focal": 2.0, "tversky": 1.0}
    assert loss.terms["focal"].gamma == 1.5
    assert (loss.terms["tversky"].alpha, loss.terms["tversky"].beta) == (0.2, 0.8)
    assert torch.equal(loss.terms["ce"].class_weights, torch.tensor([1.0, 4.0]))
    logits, targets = _batch(seed=7)
    value = loss(logits.requires_grad_(), targets)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("ce+hinge", "valid names are ['ce', 'cldice', 'dice', 'focal', 'lovasz', 'tversky']"),
        ({"bce": 1.0}, "unknown loss 'bce'"),
        ("ce+", "cannot read term"),
        ("ce+ce", "appears twice"),
        ("2*", "cannot read term"),
        ({"focal": {"gamma": 2, "alpha": 0.25}}, "unknown options ['alpha']"),
        ({"ce": -1.0}, "weight must be a number >= 0"),
        ({"ce": "big"}, "expected a weight"),
        ({"focal": {"gamma": "two"}}, "bad option value"),
        ({"tversky": {"alpha": -0.1}}, "must be >= 0"),
        ({}, "has no terms"),
        (3, "must be a string"),
    ],
)
def test_bad_specs_raise_crackseg_error(spec, fragment):
    with pytest.raises(CrackSegError) as info:
        build_loss(spec)
    assert fragment in str(info.value)


def test_class_weights_must_match_num_classes():
    """The user's weights are checked once in build_loss (CrackSegError); a mismatch that still
    reaches forward is a programmer error (ValueError), never a user error from inside training."""
    with pytest.raises(CrackSegError, match="3 values, but the model predicts 2 classes"):
        build_loss("ce", class_weights=[1.0, 2.0, 3.0], num_classes=2)
    loss = build_loss("ce", class_weights=[1.0, 2.0, 3.0])
    logits, targets = _batch()
    with pytest.raises(ValueError, match="3 values but the logits have 2 classes"):
        loss(logits, targets)
    with pytest.raises(CrackSegError, match="class_weights"):
        build_loss("ce", class_weights=[-1.0, 1.0])


def test_shape_errors_say_how_to_fix():
    logits, targets = _batch()
    with pytest.raises(ValueError, match="upsample the logits"):
        build_loss("ce")(logits[..., :-1], targets)
    with pytest.raises(ValueError, match="targets\\[:, 0\\]"):
        build_loss("dice")(logits, targets[:, None])


def test_half_precision_logits_are_upcast():
    logits, targets = _batch(seed=8)
    loss = build_loss("ce+dice+focal+tversky+cldice")
    full = loss(logits, targets)
    half = loss(logits.half(), targets)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, atol=1e-2, rtol=1e-2)
