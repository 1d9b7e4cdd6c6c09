"""Does averaging different models beat the best one? Each model's crack probability and their mean,
scored on one dataset in one pass (the same images, tiles and threshold rule for every row).

    python benchmarks/ensemble.py --models crackseg-unetvit-v3 runs/search/X/last.ckpt \
        [--data crack-seg.yaml --split val] [--thresholds 0.5 0.6]

A weight average ("soup", `model_search.py soup`) only works for fine-tunes of one start; models
of different architectures or starts can only be combined by their outputs, at the price of one
forward pass each. Rows: every model alone and the mean of their probabilities, pooled crack IoU
over the split at each threshold given (default: 0.5 and each model's stored threshold). A
threshold picked here from val is tuned to val; say so wherever such a row is quoted. Writes
nothing; prints a table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from crackseg.data.dataset import build_dataset
from crackseg.engine.checkpoint import resolve_model_ref
from crackseg.engine.setup import resolve_amp
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor
from crackseg.metrics import SegMetrics

CRACK_SEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "crack-seg" / "crack-seg.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="checkpoints or bundled names")
    parser.add_argument("--data", default=str(CRACK_SEG))
    parser.add_argument("--split", default="val")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--thresholds", type=float, nargs="+", default=None)
    args = parser.parse_args()
    if len(args.models) < 2:
        parser.error("--models needs at least two models to average")
    if args.thresholds and not all(0 < t <= 1 for t in args.thresholds):
        parser.error(f"--thresholds: give probabilities in (0, 1], got {args.thresholds}")
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    amp = resolve_amp("auto", cpu)
    predictors = [Predictor.from_checkpoint(resolve_model_ref(m), device=cpu, amp_dtype=amp)
                  for m in args.models]  # fmt: skip
    stored = [p.model.config.get("threshold") or 0.5 for p in predictors]
    thresholds = sorted(set(args.thresholds or [0.5, *stored]))
    rows = [*args.models, "mean of all"]
    # one pooled count per (row, threshold); exact matching only (no tolerance dilation needed)
    metrics = {(row, t): SegMetrics(thresholds=[t], threshold=t, tolerance_px=0)
               for row in rows for t in thresholds}  # fmt: skip
    dataset = build_dataset(args.data, args.split, resize="native", compact=True)  # uint8
    for i in range(len(dataset)):
        item = dataset[i]
        image = item["image"].permute(1, 2, 0).numpy()  # (H, W, 3) uint8, as predict reads it
        probs = [torch.from_numpy(p.predict_probs(image)) for p in predictors]  # M x (H, W)
        probs.append(torch.stack(probs).mean(0))
        for row, prob in zip(rows, probs):
            for t in thresholds:
                metrics[row, t].update(prob[None], item["mask"][None].long())  # (1, H, W)
    print(f"{args.data} {args.split}: {len(dataset)} images, pooled crack IoU")
    print("| model | " + " | ".join(f"thr {t:g}" for t in thresholds) + " |")
    print("|---|" + "---|" * len(thresholds))
    for row in rows:
        ious = (metrics[row, t].compute()["crack_iou"] for t in thresholds)
        cells = ["n/a (no crack pixels)" if iou is None else f"{iou:.3f}" for iou in ious]
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    try:
        main()
    except CrackSegError as err:  # a missing checkpoint or dataset: one line, no traceback
        sys.exit(str(err))
