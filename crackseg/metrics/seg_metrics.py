"""`SegMetrics`: binary crack metrics accumulated over a whole split, never averaged per batch.

Like smp, two steps: `update` adds confusion counts (at the fixed threshold, per probability bin for
ODS/PR, per image for OIS, and for the tolerance match), `compute` turns the sums into scores. All
counts live in one float64 tensor, so `merge`, `state_tensor` and `all_reduce` are one sum each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from crackseg.conventions import DEFAULT_THRESHOLD, IGNORE_INDEX
from crackseg.metrics import functional as M

# Scalar counts at the head of the state tensor, then the (n+1, 2) probability histogram.
_SCALARS = ("tp", "fp", "fn", "tn", "tol_pred_hit", "tol_pred", "tol_gt_hit", "tol_gt")
_SCALARS += ("ois_sum", "ois_images", "images")


def probs_from_logits(logits: Tensor) -> Tensor:
    """Crack probability (B, H, W) from logits (B, K, H, W): p(crack), or 1 - p(bg) if K > 2."""
    probs = logits.float().softmax(dim=1)  # (B, K, H, W)
    return probs[:, 1] if logits.shape[1] == 2 else 1 - probs[:, 0]


class SegMetrics:
    """Crack IoU/F1/precision/recall, mIoU, pixel accuracy, ODS/OIS F1 and tolerance F1.

    Args:
        thresholds: number n of evenly spaced thresholds i/(n+1) for ODS/OIS/PR (99 -> 0.01..0.99),
            or an increasing sequence of thresholds in (0, 1].
        tolerance_px: radius (Euclidean, px) within which a prediction matches the ground truth
            for `tol_f1` (0 = exact match, then tol_f1 == crack_f1).
        threshold: a pixel is predicted crack when its probability is >= threshold.
        ignore_index: target value of pixels that count nowhere.

    No score from nothing: `compute` reports a metric as None ("undefined", printed so by
    `format_table`) when its denominator is 0, never as 1.0 or NaN. With zero labelled (non-ignore)
    pixels every score is None; crack IoU/F1 are None with no crack in the targets and none
    predicted; precision with nothing predicted; recall and ODS F1 with no crack in the targets;
    OIS F1 when no image had a labelled pixel. `compute` also returns `labelled_pixels`, the count
    the scores rest on, and `images`. Callers treat None as "not a score" (e.g. never a best epoch).

    OIS averages each image's best F1 over the thresholds; an image with labelled pixels but no
    ground-truth crack scores 1.0 if some threshold leaves it with no predicted crack (else 0.0),
    and an image whose pixels are all ignored is left out (counted in `images`, not `ois_images`).
    """

    def __init__(
        self,
        *,
        thresholds: int | Sequence[float] = 99,
        tolerance_px: int = 2,
        threshold: float = DEFAULT_THRESHOLD,
        ignore_index: int = IGNORE_INDEX,
    ):
        if isinstance(thresholds, int):
            if thresholds < 1:
                raise ValueError(f"thresholds={thresholds}: need at least 1 threshold")
            grid = torch.arange(1, thresholds + 1, dtype=torch.float64) / (thresholds + 1)
            self._uniform = True  # bins by arithmetic, see functional.probability_bins
        else:
            grid = torch.as_tensor([float(t) for t in thresholds], dtype=torch.float64)
            self._uniform = False
            if grid.numel() < 1 or bool((grid.diff() <= 0).any()) or grid[0] <= 0 or grid[-1] > 1:
                raise ValueError(
                    f"thresholds={list(thresholds)}: give an increasing list of values in (0, 1]"
                )
        if not 0 <= threshold <= 1:  # same range as conventions.resolve_threshold
            raise ValueError(f"threshold={threshold}: give a probability in [0, 1]")
        if int(tolerance_px) != tolerance_px or tolerance_px < 0:
            raise ValueError(f"tolerance_px={tolerance_px}: give a whole number of pixels >= 0")
        self.thresholds = grid  # (n,)
        self.tolerance_px = int(tolerance_px)
        self.threshold = float(threshold)
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        """Forget all counts (the state moves to the device of the next `update`)."""
        n = self.thresholds.numel()
        self._state = torch.zeros(len(_SCALARS) + 2 * (n + 1), dtype=torch.float64)

    def _hist(self) -> Tensor:
        return self._state[len(_SCALARS) :].view(-1, 2)  # (n+1, 2): (background, crack)

    @torch.no_grad()
    def update(self, probs: Tensor, targets: Tensor) -> None:
        """Add a batch: probs (B, H, W) crack probability, targets (B, H, W) in {0, 1, IGNORE_INDEX}."""
        if probs.ndim != 3 or probs.shape != targets.shape:
            raise ValueError(
                f"expected probs and targets of the same shape (B, H, W), got {tuple(probs.shape)} "
                f"and {tuple(targets.shape)}; from logits use probs_from_logits(logits)"
            )
        if not probs.is_floating_point():
            raise ValueError(f"probs must be floating point in [0, 1], got {probs.dtype}")
        if probs.device.type == "mps":  # no float64 there; the counts are cheap on CPU
            probs, targets = probs.cpu(), targets.cpu()
        if probs.dtype not in (torch.float32, torch.float64):
            probs = probs.float()  # half precision would blur the threshold bins
        if self._state.device != probs.device:
            self._state = self._state.to(probs.device)
        B, n = probs.shape[0], self.thresholds.numel()
        valid = targets != self.ignore_index  # (B, H, W)
        gt = targets == 1  # (B, H, W)

        # Per-image histogram over (probability bin, label) with one bincount; ignored -> last slot.
        # (On CUDA, bincount syncs once to size its output; fine for evaluation.)
        thresholds = self.thresholds.to(probs)
        bins = M.probability_bins(probs, thresholds, uniform=self._uniform)  # (B, H, W) in [0, n]
        offset = torch.arange(B, device=probs.device).view(B, 1, 1) * (n + 1)
        code = torch.where(valid, (bins + offset) * 2 + gt, 2 * B * (n + 1))  # (B, H, W)
        hist = torch.bincount(code.flatten(), minlength=2 * B * (n + 1) + 1)[:-1]
        hist = hist.view(B, n + 1, 2).double()  # (B, n+1, 2)
        best_f1 = M.f1_score(*M.counts_per_threshold(hist)).amax(dim=1)  # (B,)
        scored = hist.sum(dim=(1, 2)) > 0  # (B,): images with at least one valid pixel
        ois = torch.stack([(best_f1 * scored).sum(), scored.sum().double()])

        preds = (probs >= self.threshold) & valid  # (B, H, W)
        tol = M.tolerance_counts(preds, gt, self.tolerance_px)  # (pred_hit, preds, gt_hit, gt)
        tp = (preds & gt).sum().double()
        fp, fn = tol[1] - tp, tol[3] - tp
        tn = hist.sum() - tp - fp - fn
        head = torch.stack([tp, fp, fn, tn])
        images = torch.full((1,), float(B), dtype=torch.float64, device=probs.device)
        self._state += torch.cat([head, tol, ois, images, hist.sum(0).flatten()])

    def compute(self) -> dict[str, float | None]:
        """Scores over everything seen since `reset`; None where undefined (syncs the device once)."""
        s = {k: float(v) for k, v in zip(_SCALARS, self._state[: len(_SCALARS)].cpu())}
        out: dict[str, float | None] = M.scores_from_counts(s["tp"], s["fp"], s["fn"], s["tn"])

        hist = self._hist().cpu()
        out["ods_f1"] = out["ods_threshold"] = None  # undefined with no crack to find
        if float(hist[:, 1].sum()) > 0:
            ods = M.f1_score(*M.counts_per_threshold(hist))  # (n,)
            best = int(ods.argmax())  # first (lowest) threshold on ties
            out["ods_f1"], out["ods_threshold"] = float(ods[best]), float(self.thresholds[best])

        out["ois_f1"] = M.defined_ratio(s["ois_sum"], s["ois_images"])  # mean per-image best F1

        tol_p = M.defined_ratio(s["tol_pred_hit"], s["tol_pred"])
        tol_r = M.defined_ratio(s["tol_gt_hit"], s["tol_gt"])
        out["tol_precision"], out["tol_recall"] = tol_p, tol_r
        # F1 = 2PR / (P + R); with one side undefined the other has no hit (0), so F1 is 0.
        p, r = tol_p or 0.0, tol_r or 0.0
        both_empty = s["tol_pred"] + s["tol_gt"] == 0
        out["tol_f1"] = None if both_empty else (2 * p * r / (p + r) if p + r > 0 else 0.0)
        out["labelled_pixels"] = s["tp"] + s["fp"] + s["fn"] + s["tn"]
        out["images"], out["ois_images"] = s["images"], s["ois_images"]
        return out

    def pr_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dataset-level (precision, recall, thresholds), one entry per threshold, increasing t."""
        tp, fp, fn = M.counts_per_threshold(self._hist().cpu())
        precision = M.precision_score(tp, fp, fn).numpy()
        recall = M.recall_score(tp, fp, fn).numpy()
        return precision, recall, self.thresholds.numpy().copy()

    def save_pr_curve(self, path: str | Path, *, title: str = "Crack precision-recall") -> Path:
        """Write the PR curve with iso-F1 lines and the ODS point to a PNG; returns the path."""
        from crackseg.metrics.report import plot_pr_curve

        return plot_pr_curve(path, *self.pr_curve(), scores=self.compute(), title=title)

    # ----- combining counts: across loaders (merge) and across processes (all_reduce) -----

    def _check_compatible(self, other: SegMetrics) -> None:
        same = (
            torch.equal(self.thresholds, other.thresholds)
            and self.tolerance_px == other.tolerance_px
            and self.threshold == other.threshold
            and self.ignore_index == other.ignore_index
        )
        if not same:
            raise ValueError("cannot merge SegMetrics built with different settings")

    def merge(self, other: SegMetrics) -> SegMetrics:
        """Add another accumulator's counts into this one (same settings); returns self."""
        self._check_compatible(other)
        self._state = self._state + other._state.to(self._state.device)
        return self

    def state_tensor(self) -> Tensor:
        """All counts as one float64 tensor (a copy), summable across workers."""
        return self._state.clone()

    def load_state_tensor(self, state: Tensor) -> None:
        """Replace the counts with a tensor from `state_tensor` (e.g. after a sum)."""
        if state.shape != self._state.shape:
            raise ValueError(
                f"state has shape {tuple(state.shape)}, expected {tuple(self._state.shape)}"
            )
        self._state = state.detach().to(dtype=torch.float64).clone()

    def all_reduce(self, group=None) -> None:
        """Sum the counts over torch.distributed ranks (no-op when not distributed).

        Every rank must call it; after it, `compute` gives the same split-level scores everywhere.
        For NCCL a CPU state (a rank that saw no batch) is moved to this rank's GPU first.
        """
        if not (dist.is_available() and dist.is_initialized()):
            return
        state = self._state
        if dist.get_backend(group) == "nccl" and state.device.type != "cuda":
            state = state.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(state, op=dist.ReduceOp.SUM, group=group)
        self._state = state
