"""Lovasz-softmax (Berman et al. 2018): a convex surrogate that optimises the crack IoU itself.

Dice and cross-entropy are proxies for the IoU we report. The Jaccard loss `1 - IoU` is a set
function of the predicted crack pixels; its Lovasz extension is exact on hard 0/1 predictions,
piecewise linear in between, and has a gradient: sort the pixel errors |label - p| from large to
small and weight each by how much it adds to `1 - IoU`. Computed over the whole batch (like
Dice), so images without cracks do not produce 0/0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.conventions import IGNORE_INDEX
from crackseg.losses.terms import _check_inputs, _upcast


def lovasz_grad(fg_sorted: Tensor) -> Tensor:
    """Gradient of the Lovasz extension of `1 - IoU` for labels sorted by decreasing error.  # (P,)

    Entry i is the change in `1 - IoU` when pixel i joins the prediction after pixels 0..i-1.
    """
    total = fg_sorted.sum()
    intersection = total - fg_sorted.cumsum(0)
    union = total + (1 - fg_sorted).cumsum(0)
    jaccard = 1 - intersection / union  # union >= 1 from the first pixel on
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


class LovaszLoss(nn.Module):
    """Lovasz-softmax loss on each non-background class (the crack class for K = 2), averaged.

    Pixels labelled `ignore_index` are left out. Sorting every pixel of the batch costs about as
    much as one cross-entropy; it is meant for fine-tuning next to ce or dice ("ce+lovasz").
    """

    def __init__(self, *, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        _check_inputs(logits, targets)
        probs = F.softmax(_upcast(logits), dim=1)  # (B, K, H, W)
        valid = targets != self.ignore_index  # (B, H, W)
        if not bool(valid.any()):
            return probs.sum() * 0.0
        labels = targets[valid]  # (P,)
        losses = []
        for k in range(1, logits.shape[1]):
            fg = (labels == k).to(probs.dtype)  # (P,)
            errors = (fg - probs[:, k][valid]).abs()  # (P,)
            errors_sorted, order = torch.sort(errors, descending=True)
            losses.append(torch.dot(errors_sorted, lovasz_grad(fg[order])))
        return torch.stack(losses).mean()
