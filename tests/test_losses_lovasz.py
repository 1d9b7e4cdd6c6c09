"""Lovasz-softmax: exact 1 - IoU on hard predictions, ignore_index, empty batches, the spec."""

import torch

from crackseg.losses import LovaszLoss, build_loss
from crackseg.losses.lovasz import lovasz_grad


def _hard_logits(pred):
    """Logits (B, 2, H, W) whose softmax is (numerically) the 0/1 crack mask `pred` (B, H, W)."""
    crack = torch.where(pred.bool(), 40.0, -40.0)
    return torch.stack([torch.zeros_like(crack), crack], dim=1)


def _iou(pred, target):
    inter = (pred.bool() & target.bool()).sum()
    union = (pred.bool() | target.bool()).sum()
    return float(inter) / float(union)


def test_hard_prediction_gives_one_minus_iou_over_the_batch():
    g = torch.Generator().manual_seed(0)
    target = (torch.rand(3, 8, 9, generator=g) < 0.3).long()
    pred = (torch.rand(3, 8, 9, generator=g) < 0.4).long()
    value = LovaszLoss()(_hard_logits(pred), target)
    assert abs(value.item() - (1 - _iou(pred, target))) < 1e-6
    assert LovaszLoss()(_hard_logits(target), target).item() < 1e-6


def test_grad_entries_add_up_to_the_jaccard_loss_of_each_error_prefix():
    fg = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])  # labels sorted by decreasing error
    grad = lovasz_grad(fg)
    assert torch.all(grad >= 0)
    # With the first i pixels wrong and the rest right, the prediction is the label with those
    # pixels flipped: e.g. the first two wrong gives IoU 1 / 3 (one crack pixel hit, three in the
    # union), so 1 - IoU = 2/3. All five wrong gives IoU 0.
    torch.testing.assert_close(grad.cumsum(0)[1], torch.tensor(2 / 3))
    torch.testing.assert_close(grad.sum(), torch.tensor(1.0))


def test_ignored_pixels_have_no_effect_and_get_no_gradient():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 2, 6, 5, generator=g).requires_grad_()
    targets = torch.randint(0, 2, (2, 6, 5), generator=g)
    targets[torch.rand(2, 6, 5, generator=g) < 0.2] = 255
    loss = LovaszLoss()
    value = loss(logits, targets)
    value.backward()
    ignored = (targets == 255).unsqueeze(1).expand_as(logits)
    assert ignored.any() and torch.all(logits.grad[ignored] == 0)
    assert logits.grad.abs().sum() > 0
    changed = logits.detach() + 5.0 * ignored * torch.randn_like(logits)
    torch.testing.assert_close(loss(changed, targets), value.detach())


def test_empty_batches_are_defined():
    logits = torch.randn(1, 2, 3, 3, requires_grad=True)
    value = LovaszLoss()(logits, torch.full((1, 3, 3), 255))
    value.backward()
    assert value.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))
    # No crack anywhere: the loss is the largest predicted crack probability, not NaN.
    no_crack = LovaszLoss()(logits.detach(), torch.zeros(1, 3, 3, dtype=torch.long))
    assert abs(no_crack.item() - logits.detach().softmax(1)[:, 1].max().item()) < 1e-6


def test_spec_builds_ce_plus_lovasz_and_half_precision_is_upcast():
    loss = build_loss("ce+0.5*lovasz")
    logits = torch.randn(2, 2, 4, 4).bfloat16()
    targets = torch.randint(0, 2, (2, 4, 4))
    value = loss(logits, targets)
    assert value.dtype == torch.float32
    assert set(loss.last_terms) == {"ce", "lovasz"}
