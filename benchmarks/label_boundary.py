"""How much of a crack IoU is boundary width: the labels against themselves one pixel wider or
narrower, where a model's errors lie relative to the label boundary, and how much each image's
own width convention costs.

    python benchmarks/label_boundary.py [--checkpoint CKPT] [--data crack-seg.yaml] [--split val]
        [--every K] [--groups G]

Crack masks are a few pixels wide, so a one-pixel disagreement on the crack's edges costs a large
share of the IoU. The first rows say how much (the labels dilated or eroded by a disk of r px, the
distance tolerance F1 uses, scored against themselves). The next say which share of a model's
wrong pixels (false positives + false negatives, at its stored threshold) lie within r px of a
label boundary, i.e. are width errors, and which lie in whole cracks invented or missed
(8-connected pieces of one mask that the other never touches). Then two views of the width the
labels draw: the IoU if each image had its own best threshold (the model's maps unchanged; an
oracle that sees the labels: not a score), and, with the images in file-name order split into G
runs (Roboflow numbers uploads in batches), the IoU if each run had its own (an oracle that knows
the batch) and each run's IoU and predicted/label crack area at the stored threshold. Writes
nothing; prints tables.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from crackseg.data.dataset import build_dataset
from crackseg.engine.checkpoint import resolve_model_ref
from crackseg.engine.setup import resolve_amp
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor
from crackseg.metrics.functional import (
    counts_per_threshold,
    defined_ratio,
    dilate,
    probability_bins,
)

CRACK_SEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "crack-seg" / "crack-seg.yaml"
IGNORE = 255
ROBOFLOW_HASH = re.compile(r"\.rf\.[0-9a-f]{32}")  # '1604.rf.<hash>.jpg' prints as '1604.jpg'
GRID = torch.arange(1, 100, dtype=torch.float64) / 100  # (n,) thresholds 0.01..0.99


def erode(mask: Tensor, r: int) -> Tensor:
    """(H, W) bool -> (H, W) bool shrunk by a disk of r px (the complement of `dilate`'s)."""
    return ~dilate(~mask[None], r)[0]


def untouched(mask: Tensor, other: Tensor) -> Tensor:
    """(H, W) bool, (H, W) bool -> the pixels of mask's 8-connected pieces that share no pixel
    with other: a whole crack invented (mask = prediction) or missed (mask = label)."""
    pieces, n = ndimage.label(mask.numpy(), structure=np.ones((3, 3)))
    touched = np.zeros(n + 1, dtype=bool)
    touched[np.unique(pieces[other.numpy()])] = True
    return torch.from_numpy((pieces > 0) & ~touched[pieces])  # piece 0 is the background


def grid_counts(probs: Tensor, label: Tensor, valid: Tensor) -> Tensor:
    """(H, W) probs, label, valid -> (n, 3) TP, FP, FN at each threshold of GRID."""
    bins = probability_bins(probs.double(), GRID, uniform=True)  # (H, W) in [0, n]
    code = bins[valid] * 2 + label[valid].long()  # (P,) (bin, crack) of each labelled pixel
    hist = torch.bincount(code, minlength=2 * (len(GRID) + 1)).view(-1, 2).double()  # (n+1, 2)
    return torch.stack(counts_per_threshold(hist), dim=-1)


def iou(tp: float, fp: float, fn: float) -> float | None:
    """Crack IoU from counts; None when no crack is labelled or predicted (not a score)."""
    return defined_ratio(tp, tp + fp + fn)


def own_threshold_iou(counts: Tensor) -> tuple[float | None, Tensor]:
    """(I, n, 3) per-image counts -> (crack IoU, (I,) thresholds) with each image at its best.

    An image's best threshold maximises its own IoU; among equals (e.g. an image with no crack,
    where every IoU is 0) it takes the one with the fewest false positives.
    """
    tp, fp, fn = counts.unbind(-1)  # (I, n) each
    own = tp / (tp + fp + fn).clamp(min=1)  # (I, n)
    tied = own == own.amax(dim=1, keepdim=True)
    best = torch.where(tied, fp, torch.inf).argmin(dim=1)  # (I,)
    chosen = counts[torch.arange(len(counts)), best]  # (I, 3)
    return iou(*chosen.sum(0).tolist()), GRID[best]


def run_threshold_iou(counts: Tensor, groups: int) -> tuple[float | None, list[float]]:
    """(I, n, 3) per-image counts in file-name order -> (crack IoU, the G thresholds) with each
    run of consecutive images (`print_runs`' runs) at the threshold best for the run as a whole:
    an oracle that knows a photo's upload batch, not the photo's own width."""
    chosen, thresholds = [], []
    for run in torch.tensor_split(torch.arange(len(counts)), groups):
        if len(run) == 0:
            continue
        pooled = counts[run].sum(0)  # (n, 3)
        tp, fp, fn = pooled.unbind(-1)
        best = int((tp / (tp + fp + fn).clamp(min=1)).argmax())
        chosen.append(pooled[best])
        thresholds.append(GRID[best].item())
    return iou(*torch.stack(chosen).sum(0).tolist()), thresholds


def show(value: float | None) -> str:
    """A table cell for a score that may be undefined."""
    return "undefined (no crack labelled or predicted)" if value is None else f"{value:.3f}"


def natural_key(name: str) -> list:
    """'1604.rf.x.jpg' sorts before '10000.rf.y.jpg': digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def print_runs(names: list[str], per_image: Tensor, groups: int) -> None:
    """Each run of consecutive images (names in file-name order, per_image (I, 3) TP, FP, FN):
    its crack IoU and how much crack area the model predicts per labelled crack pixel."""
    print("\n| images in file-name order | crack IoU | predicted / label crack area |")
    print("|---|---|---|")
    for run in torch.tensor_split(torch.arange(len(names)), groups):
        if len(run) == 0:
            continue
        tp, fp, fn = per_image[run].sum(0).tolist()
        first, last = (ROBOFLOW_HASH.sub("", names[j]) for j in (run[0], run[-1]))
        area = defined_ratio(tp + fp, tp + fn)
        area = "no crack labelled" if area is None else f"{area:.2f}"
        print(f"| {first} .. {last} ({len(run)}) | {show(iou(tp, fp, fn))} | {area} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the bundled model")
    parser.add_argument("--data", default=str(CRACK_SEG))
    parser.add_argument("--split", default="val")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--radii", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--every", type=int, default=1, help="score every K-th image (train: 4)")
    parser.add_argument("--groups", type=int, default=8, help="runs of images in file-name order")
    args = parser.parse_args()
    if args.every < 1 or args.groups < 1:
        parser.error(f"--every {args.every} --groups {args.groups}: give whole numbers >= 1")
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    predictor = Predictor.from_checkpoint(resolve_model_ref(args.checkpoint), device=cpu,
                                          amp_dtype=resolve_amp("auto", cpu))  # fmt: skip
    threshold = predictor.model.config.get("threshold") or 0.5
    dataset = build_dataset(args.data, args.split, resize="native", compact=True)  # uint8
    names = [item.image.name for item in dataset.items]
    order = sorted(range(len(dataset)), key=lambda i: natural_key(names[i]))[:: args.every]
    # (op, r): [intersection, union] of the labels and the labels dilated/eroded by r px
    shifted = {(op, r): [0, 0] for op in ("dilated", "eroded") for r in args.radii}
    near = dict.fromkeys(args.radii, 0)
    whole = {"invented": 0, "missed": 0}  # wrong pixels in cracks the other mask never touches
    at_threshold, on_grid = [], []  # per image: (tp, fp, fn); (n, 3) over GRID
    for i in order:
        item = dataset[i]
        valid = item["mask"] != IGNORE  # (H, W)
        label = (item["mask"] == 1) & valid
        grown = {r: dilate(label[None], r)[0] for r in args.radii}
        shrunk = {r: erode(label, r) for r in args.radii}
        for (op, r), counts in shifted.items():
            other = (grown[r] if op == "dilated" else shrunk[r]) & valid
            counts[0] += (other & label).sum().item()
            counts[1] += (other | label).sum().item()
        image = item["image"].permute(1, 2, 0).numpy()  # (H, W, 3) uint8, as predict reads it
        probs = torch.from_numpy(predictor.predict_probs(image))  # (H, W)
        pred = (probs >= threshold) & valid
        at_threshold.append([(pred & label).sum(), (pred & ~label).sum(), (~pred & label).sum()])
        on_grid.append(grid_counts(probs, label, valid))
        wrong = pred ^ label
        whole["invented"] += untouched(pred, label).sum().item()
        whole["missed"] += untouched(label, pred).sum().item()
        for r in args.radii:
            near[r] += (wrong & grown[r] & ~shrunk[r]).sum().item()  # within r px of the edge
    per_image = torch.tensor(at_threshold, dtype=torch.float64)  # (I, 3)
    tp, fp, fn = per_image.sum(0).tolist()
    print(f"{args.data} {args.split}: {len(order)} of {len(dataset)} images; "
          f"model at threshold {threshold}")  # fmt: skip
    print("| compared | crack IoU |\n|---|---|")
    for (op, r), (inter, union) in shifted.items():
        print(f"| labels vs labels {op} by {r} px | {show(defined_ratio(inter, union))} |")
    print(f"| model vs labels | {show(iou(tp, fp, fn))} |")
    own_iou, own = own_threshold_iou(torch.stack(on_grid))
    q = torch.quantile(own, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)).tolist()
    print(f"| model vs labels, each image at its own best threshold (oracle; thresholds "
          f"p10/p50/p90 {q[0]:.2f}/{q[1]:.2f}/{q[2]:.2f}) | {show(own_iou)} |")  # fmt: skip
    run_iou, run_thresholds = run_threshold_iou(torch.stack(on_grid), args.groups)
    print(f"| model vs labels, each of the {len(run_thresholds)} runs below at its own best "
          f"threshold (oracle per upload batch; thresholds "
          f"{'/'.join(f'{t:.2f}' for t in run_thresholds)}) | {show(run_iou)} |")  # fmt: skip
    print("\n| model's wrong pixels within r px of a label boundary | share |\n|---|---|")
    for r, n in near.items():
        share = defined_ratio(n, fp + fn)
        print(f"| r = {r} | {'no wrong pixel' if share is None else f'{share:.3f}'} |")
    for kind, what in (("invented", "predicted cracks that touch no labelled crack"),
                       ("missed", "labelled cracks that no prediction touches")):  # fmt: skip
        share = defined_ratio(whole[kind], fp + fn)
        print(f"| in {what} ({kind}) | {'no wrong pixel' if share is None else f'{share:.3f}'} |")
    print_runs([names[i] for i in order], per_image, args.groups)


if __name__ == "__main__":
    try:
        main()
    except CrackSegError as err:  # a missing checkpoint or dataset: one line, no traceback
        sys.exit(str(err))
