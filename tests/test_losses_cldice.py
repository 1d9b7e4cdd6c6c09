"""clDice: the soft skeleton finds centre lines, and the loss prefers wide-but-connected cracks to
broken ones (Dice prefers the opposite), stays finite without cracks and ignores ignored pixels."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from crackseg.errors import CrackSegError
from crackseg.losses import ClDiceLoss, DiceLoss, build_loss, soft_skeleton
from crackseg.losses.cldice import soft_dilate, soft_erode


def _line(h=48, w=64, rows=(20, 27), cols=(8, 56)):
    """A 7-px-wide horizontal crack (1, H, W) long, centre row 23."""
    targets = torch.zeros(1, h, w, dtype=torch.long)
    targets[0, rows[0] : rows[1], cols[0] : cols[1]] = 1
    return targets


def _logits(crack: torch.Tensor, sure: float = 0.999) -> torch.Tensor:
    """Two-class float64 logits (B, 2, H, W): crack probability `sure` on `crack`, 1 - sure off it."""
    p = torch.where(crack, sure, 1 - sure).double()
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)


def test_soft_skeleton_of_a_7px_line_is_its_1px_centre_line():
    line = _line()[:, None].float()  # (1, 1, 48, 64)
    skeleton = soft_skeleton(line)[0, 0]
    on = skeleton > 0.5
    assert on.any(dim=1).nonzero().flatten().tolist() == [23]  # one row: the centre
    assert on[23].sum() >= 40  # most of the 48 px length
    assert skeleton.max() <= 1.0 and (skeleton[~line[0, 0].bool()] == 0).all()


def test_soft_skeleton_of_a_diagonal_band_lies_on_its_centre():
    yy, xx = np.mgrid[:64, :64]
    band = torch.from_numpy(np.abs(yy - xx) <= 3).float()[None, None]  # 7 px across, axis-wise
    on = soft_skeleton(band)[0, 0] > 0.5
    ys, xs = on.nonzero().T
    assert len(ys) >= 50 and (ys - xs).abs().max() <= 1


def test_perfect_is_near_zero_and_a_break_costs_more_than_a_wide_mask():
    targets = _line()
    perfect = targets.bool()
    broken = perfect.clone()
    broken[0, :, 29:35] = False  # a 6-px gap: two cracks instead of one
    wide = torch.zeros_like(perfect)
    wide[0, 19:28, 7:57] = True  # one pixel too wide on every side
    cldice, dice = ClDiceLoss(), DiceLoss()
    assert cldice(_logits(perfect), targets).item() < 1e-2
    assert cldice(_logits(broken), targets) > cldice(_logits(wide), targets) + 0.05
    # Dice, counting pixels, ranks them the other way round: what clDice adds.
    assert dice(_logits(broken), targets) < dice(_logits(wide), targets)


def test_no_crack_gives_zero_and_finite_gradients_and_predicted_crack_is_penalised():
    empty = torch.zeros(2, 16, 16, dtype=torch.long)
    logits = _logits(empty.bool()).requires_grad_()
    value = ClDiceLoss()(logits, empty)
    value.backward()
    assert value.item() == pytest.approx(0.0, abs=1e-3)
    assert torch.isfinite(logits.grad).all()
    false_crack = _line(h=16, w=16, rows=(6, 9), cols=(2, 14)).expand(2, -1, -1).bool()
    assert ClDiceLoss()(_logits(false_crack), empty).item() > 0.5


def test_gradients_are_finite_and_reach_the_logits_under_bf16():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 32, 32, generator=g).bfloat16().requires_grad_()
    targets = _line(h=32, w=32, rows=(10, 14), cols=(3, 29)).expand(2, -1, -1).clone()
    targets[1, :4] = 255
    value = build_loss("ce+dice+0.5*cldice")(logits, targets)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(logits.grad.float()).all() and logits.grad.float().abs().sum() > 0


def test_ignored_pixels_do_not_change_the_loss():
    targets = _line()
    targets[0, 10:30, 40:50] = 255  # across the crack and the background around it
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 2, 48, 64, generator=g, dtype=torch.float64).requires_grad_()
    value = ClDiceLoss()(logits, targets)
    value.backward()
    ignored = (targets == 255).unsqueeze(1).expand_as(logits)
    assert torch.all(logits.grad[ignored] == 0)
    changed = logits.detach() + 10.0 * ignored * torch.randn_like(logits)
    torch.testing.assert_close(ClDiceLoss()(changed, targets), value.detach())


def test_spec_options_and_errors():
    loss = build_loss({"ce": 1, "cldice": {"weight": 0.5, "iterations": 3, "smooth": 0.5}})
    assert loss.weights == {"ce": 1.0, "cldice": 0.5}
    assert (loss.terms["cldice"].iterations, loss.terms["cldice"].smooth) == (3, 0.5)
    assert build_loss("ce+dice+0.5*cldice").weights == {"ce": 1.0, "dice": 1.0, "cldice": 0.5}
    for options, fragment in [
        ({"iterations": -1}, "whole number >= 0"),
        ({"iterations": 2.5}, "whole number >= 0"),
        ({"smooth": 0}, "must be > 0"),
        ({"tolerance": 2}, "unknown options ['tolerance']"),
    ]:
        with pytest.raises(CrackSegError, match="cldice") as info:
            build_loss({"cldice": options})
        assert fragment in str(info.value)


def test_erosion_and_dilation_equal_the_papers_pooling_form():
    x = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    eroded = torch.minimum(
        -F.max_pool2d(-x, (3, 1), stride=1, padding=(1, 0)),
        -F.max_pool2d(-x, (1, 3), stride=1, padding=(0, 1)),
    )
    torch.testing.assert_close(soft_erode(x), eroded, rtol=0, atol=1e-12)
    torch.testing.assert_close(soft_dilate(x), F.max_pool2d(x, 3, stride=1, padding=1))
    x.requires_grad_()  # the autograd-friendly form gives the same values
    torch.testing.assert_close(soft_erode(x), eroded, rtol=0, atol=1e-12)
    torch.testing.assert_close(soft_dilate(x), F.max_pool2d(x, 3, stride=1, padding=1))
