"""Pixel and region loss terms: cross-entropy, focal, Tversky and Dice.

Each maps `(logits (B, K, H, W), targets (B, H, W) long) -> scalar` and gives pixels labelled
`ignore_index` (IGNORE_INDEX, 255) neither loss nor gradient; a shape mismatch is a programmer
error (ValueError).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.conventions import IGNORE_INDEX


def _check_inputs(logits: Tensor, targets: Tensor) -> None:
    if logits.ndim != 4 or targets.ndim != 3 or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"expected logits (B, K, H, W) and targets (B, H, W), got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}; drop a channel axis from targets with targets[:, 0]"
        )
    if logits.shape[2:] != targets.shape[1:]:
        raise ValueError(
            f"logits are {tuple(logits.shape[2:])} but targets are {tuple(targets.shape[1:])}; "
            "upsample the logits to the target size before the loss"
        )
    if logits.shape[1] < 2:
        raise ValueError(f"need K >= 2 classes (background, crack), got K={logits.shape[1]}")


def _upcast(logits: Tensor) -> Tensor:
    """Half-precision logits (autocast) to float32 for a stable softmax; float64 stays."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def _pixel_weights(
    targets: Tensor, valid: Tensor, class_weights: Tensor | None, num_classes: int
) -> Tensor:
    """Per-pixel weight (B, H, W): the class weight of its label, 0 on ignored pixels."""
    if class_weights is None:
        return valid.float()
    if class_weights.numel() != num_classes:  # build_loss(num_classes=...) checks user input
        raise ValueError(
            f"class_weights has {class_weights.numel()} values but the logits have "
            f"{num_classes} classes; give one weight per class"
        )
    safe = targets.masked_fill(~valid, 0)
    return class_weights.to(targets.device)[safe] * valid


class CrossEntropyLoss(nn.Module):
    """Pixel-wise cross-entropy, mean over non-ignored pixels (weighted mean with class weights).

    Equals `F.cross_entropy(logits, targets, weight, ignore_index=...)`, except that a batch whose
    pixels are all ignored gives 0 instead of NaN.
    """

    def __init__(self, *, class_weights: Tensor | None = None, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        _check_inputs(logits, targets)
        valid = targets != self.ignore_index  # (B, H, W)
        w = _pixel_weights(targets, valid, self.class_weights, logits.shape[1])
        logits = _upcast(logits)
        weight = None if self.class_weights is None else self.class_weights.to(logits.dtype)
        total = F.cross_entropy(
            logits, targets, weight=weight, ignore_index=self.ignore_index, reduction="sum"
        )
        return total / w.sum().clamp_min(1e-12)


class FocalLoss(nn.Module):
    """Focal loss `-w_y (1 - p_y)^gamma log p_y` (Lin et al. 2017), averaged like cross-entropy.

    Down-weights easy background pixels; gamma=0 gives exactly `CrossEntropyLoss`.
    """

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        class_weights: Tensor | None = None,
        ignore_index: int = IGNORE_INDEX,
    ):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        _check_inputs(logits, targets)
        valid = targets != self.ignore_index  # (B, H, W)
        safe = targets.masked_fill(~valid, 0).unsqueeze(1)  # (B, 1, H, W)
        log_p = F.log_softmax(_upcast(logits), dim=1).gather(1, safe).squeeze(1)  # (B, H, W)
        # Clamp so a saturated p_y = 1 with gamma < 1 gives 0, not an infinite gradient.
        focal = -((1 - log_p.exp()).clamp_min(1e-12) ** self.gamma) * log_p
        w = _pixel_weights(targets, valid, self.class_weights, logits.shape[1])
        return (focal * w).sum() / w.sum().clamp_min(1e-12)


def _region_sums(logits: Tensor, targets: Tensor, ignore_index: int) -> tuple[Tensor, ...]:
    """Soft TP, FP, FN over the whole batch for each non-background class.  # 3 x (K-1,)

    Summing over the batch (not per image) keeps images without cracks from producing 0/0.
    """
    _check_inputs(logits, targets)
    valid = (targets != ignore_index).unsqueeze(1)  # (B, 1, H, W)
    probs = F.softmax(_upcast(logits), dim=1)[:, 1:] * valid  # (B, K-1, H, W)
    classes = torch.arange(1, logits.shape[1], device=targets.device).view(1, -1, 1, 1)
    onehot = (targets.unsqueeze(1) == classes).float()  # (B, K-1, H, W), 0 on ignored pixels
    tp = (probs * onehot).sum(dim=(0, 2, 3))
    fp = (probs * (1 - onehot)).sum(dim=(0, 2, 3))
    fn = ((1 - probs) * onehot).sum(dim=(0, 2, 3))
    return tp, fp, fn


class TverskyLoss(nn.Module):
    """Soft Tversky loss `1 - (TP + s) / (TP + alpha FP + beta FN + s)` (Salehi et al. 2017).

    beta > alpha trades precision for recall, useful when thin cracks get missed. Computed over the
    whole batch on the crack probability (every non-background class for K > 2, then averaged).
    The smooth term `s` keeps the loss defined (0) for a batch with no crack and no predicted crack;
    it is negligible next to the thousands of crack pixels of a typical batch.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        beta: float = 0.7,
        smooth: float = 1.0,
        ignore_index: int = IGNORE_INDEX,
    ):
        super().__init__()
        if min(alpha, beta, smooth) < 0:
            raise ValueError(f"alpha, beta, smooth must be >= 0, got {alpha}, {beta}, {smooth}")
        self.alpha, self.beta, self.smooth = float(alpha), float(beta), float(smooth)
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        tp, fp, fn = _region_sums(logits, targets, self.ignore_index)
        index = (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)
        return 1 - index.mean()


class DiceLoss(TverskyLoss):
    """Soft Dice loss `1 - (2 TP + s) / (2 TP + FP + FN + s)` on the crack class, over the batch.

    Equal to the Tversky loss with alpha = beta = 0.5 and smooth s/2; see it for the smooth term.
    """

    def __init__(self, *, smooth: float = 1.0, ignore_index: int = IGNORE_INDEX):
        super().__init__(alpha=0.5, beta=0.5, smooth=smooth / 2, ignore_index=ignore_index)
