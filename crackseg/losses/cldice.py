"""clDice (Shit et al. 2021): a topology-aware loss from soft skeletons of prediction and label.

Dice counts pixels, so a crack broken in two costs less than one painted a pixel too wide. clDice
compares skeletons with the other side's mask instead:
    Tprec = |S_P * V_L| / |S_P|   (how much of the predicted centre line lies on the label)
    Tsens = |S_L * V_P| / |S_L|   (how much of the label's centre line the prediction covers)
    clDice = 2 Tprec Tsens / (Tprec + Tsens),   loss = 1 - clDice
A gap cuts the label's skeleton out of V_P (Tsens drops); a slightly wide mask still covers it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.conventions import IGNORE_INDEX
from crackseg.losses.terms import _check_inputs, _upcast

# crack-seg train masks at 416 px (skeleton points, distance to the background, 266 images):
# median 3.2 px, 90th percentile 7, 99th 12. One iteration peels about one pixel off each side,
# so 10 iterations reach the centre line of ~98 % of the crack length (radius <= 10); wider parts
# are simply not skeletonised (no wrong signal), and each iteration costs time.
DEFAULT_ITERATIONS = 10


def _needs_grad(a: Tensor, b: Tensor) -> bool:
    return torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)


def _min(a: Tensor, b: Tensor) -> Tensor:
    """torch.minimum; under autograd as `a - relu(a - b)`, same values but a 2-op backward where
    minimum's takes ~5 full-size ops on CPU (it splits ties). The skeleton calls it ~50 times."""
    return a - F.relu(a - b) if _needs_grad(a, b) else torch.minimum(a, b)


def _max(a: Tensor, b: Tensor) -> Tensor:
    """torch.maximum, as `a + relu(b - a)` under autograd (see _min)."""
    return a + F.relu(b - a) if _needs_grad(a, b) else torch.maximum(a, b)


def soft_erode(x: Tensor) -> Tensor:
    """Grey-level erosion of maps in [0, 1] with a 3x3 cross (min over the 4-neighbourhood).

    Equals the paper's `-max_pool2d(-x)` with (3, 1) and (1, 3) windows, borders not eroding;
    built from shifted views because stride-1 pooling of one channel is slow on CPU. Padding
    with 1 (>= every value) leaves each border minimum unchanged.
    """
    p = F.pad(x, (1, 1, 1, 1), value=1.0)  # (B, C, H + 2, W + 2)
    vertical = _min(p[..., :-2, 1:-1], p[..., 2:, 1:-1])
    horizontal = _min(p[..., 1:-1, :-2], p[..., 1:-1, 2:])
    return _min(_min(x, vertical), horizontal)


def soft_dilate(x: Tensor) -> Tensor:
    """Grey-level dilation of maps in [0, 1] with a 3x3 square, as `max_pool2d(x, 3, 1, 1)`:
    a row maximum then a column maximum (the square is separable), padded with 0."""
    p = F.pad(x, (1, 1, 0, 0), value=0.0)  # (B, C, H, W + 2)
    rows = _max(_max(p[..., :-2], p[..., 2:]), x)
    p = F.pad(rows, (0, 0, 1, 1), value=0.0)  # (B, C, H + 2, W)
    return _max(_max(p[..., :-2, :], p[..., 2:, :]), rows)


def soft_skeleton(x: Tensor, iterations: int = DEFAULT_ITERATIONS) -> Tensor:
    """Soft skeleton of maps in [0, 1] (the paper's Algorithm 1): at each erosion step, what an
    opening cannot restore, accumulated without double counting. Differentiable.

    The opening of step k erodes x_k into x_(k+1), which step k+1 needs anyway: each erosion is
    computed once (the paper's code computes it twice).

    Shapes: x (B, C, H, W) -> (B, C, H, W).
    """
    if x.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) maps, got shape {tuple(x.shape)}")
    eroded = soft_erode(x)
    skeleton = F.relu(x - soft_dilate(eroded))
    for _ in range(iterations):
        x, eroded = eroded, soft_erode(eroded)
        delta = F.relu(x - soft_dilate(eroded))  # what opening x loses
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


class ClDiceLoss(nn.Module):
    """1 - clDice on the crack probability (1 - p_background, so every non-background class).

    Sums run over the whole batch, like Dice, and `smooth` (s) enters each ratio as
    (sum + s) / (sum + s): a batch with no crack and none predicted gives 0, never NaN; an
    image without crack still penalises predicted crack through Tprec. Ignored pixels are
    background in both the probability and the label, so their logits change nothing.
    """

    def __init__(
        self,
        *,
        iterations: int = DEFAULT_ITERATIONS,
        smooth: float = 1.0,
        ignore_index: int = IGNORE_INDEX,
    ):
        super().__init__()
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(f"iterations must be a whole number >= 0, got {iterations!r}")
        if not smooth > 0:  # with 0, a batch without crack would give 0/0
            raise ValueError(f"smooth must be > 0, got {smooth}")
        self.iterations, self.smooth = iterations, float(smooth)
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Shapes: logits (B, K, H, W), targets (B, H, W) long -> scalar."""
        _check_inputs(logits, targets)
        valid = (targets != self.ignore_index).unsqueeze(1)  # (B, 1, H, W)
        background = F.softmax(_upcast(logits), dim=1)[:, :1]  # (B, 1, H, W)
        probs = (1 - background) * valid  # crack probability, 0 on ignored pixels
        labels = ((targets.unsqueeze(1) > 0) & valid).to(probs.dtype)  # (B, 1, H, W)
        pred_skeleton = soft_skeleton(probs, self.iterations)
        with torch.no_grad():
            label_skeleton = soft_skeleton(labels, self.iterations)
        s = self.smooth
        t_prec = ((pred_skeleton * labels).sum() + s) / (pred_skeleton.sum() + s)
        t_sens = ((label_skeleton * probs).sum() + s) / (label_skeleton.sum() + s)
        return 1 - 2 * t_prec * t_sens / (t_prec + t_sens).clamp_min(1e-12)

    def extra_repr(self) -> str:
        return f"iterations={self.iterations}, smooth={self.smooth:g}"
