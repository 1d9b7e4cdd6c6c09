"""How much of a crack IoU is boundary width: the labels against themselves one pixel wider or
narrower, and where a model's errors lie relative to the label boundary.

    python benchmarks/label_boundary.py [--checkpoint CKPT] [--data crack-seg.yaml] [--split val]

Crack masks are a few pixels wide, so a one-pixel disagreement on the crack's edges costs a large
share of the IoU. The first rows say how much (the labels dilated or eroded by a disk of r px,
the distance tolerance F1 uses, scored against themselves); the last rows say which share of a model's wrong pixels (false positives +
false negatives, at its stored threshold) lie within r px of a label boundary, i.e. are width
errors rather than missed or invented cracks. Writes nothing; prints a table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import Tensor

from crackseg.data.dataset import build_dataset
from crackseg.engine.checkpoint import resolve_model_ref
from crackseg.engine.setup import resolve_amp
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor
from crackseg.metrics.functional import dilate

CRACK_SEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "crack-seg" / "crack-seg.yaml"
IGNORE = 255


def erode(mask: Tensor, r: int) -> Tensor:
    """(H, W) bool -> (H, W) bool shrunk by a disk of r px (the complement of `dilate`'s)."""
    return ~dilate(~mask[None], r)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the bundled model")
    parser.add_argument("--data", default=str(CRACK_SEG))
    parser.add_argument("--split", default="val")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--radii", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    predictor = Predictor.from_checkpoint(resolve_model_ref(args.checkpoint), device=cpu,
                                          amp_dtype=resolve_amp("auto", cpu))  # fmt: skip
    threshold = predictor.model.config.get("threshold") or 0.5
    dataset = build_dataset(args.data, args.split, resize="native", compact=True)  # uint8
    # (op, r): [intersection, union] of the labels and the labels dilated/eroded by r px
    shifted = {(op, r): [0, 0] for op in ("dilated", "eroded") for r in args.radii}
    near = dict.fromkeys(args.radii, 0)
    tp = fp = fn = 0
    for i in range(len(dataset)):
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
        tp += (pred & label).sum().item()
        fp += (pred & ~label).sum().item()
        fn += (~pred & label).sum().item()
        wrong = pred ^ label
        for r in args.radii:
            near[r] += (wrong & grown[r] & ~shrunk[r]).sum().item()  # within r px of the edge
    print(f"{args.data} {args.split}: {len(dataset)} images; model at threshold {threshold}")
    print("| compared | crack IoU |\n|---|---|")
    for (op, r), (inter, union) in shifted.items():
        print(f"| labels vs labels {op} by {r} px | {inter / union:.3f} |")
    print(f"| model vs labels | {tp / (tp + fp + fn):.3f} |")
    print("\n| model's wrong pixels within r px of a label boundary | share |\n|---|---|")
    for r, n in near.items():
        print(f"| r = {r} | {n / (fp + fn):.3f} |")


if __name__ == "__main__":
    try:
        main()
    except CrackSegError as err:  # a missing checkpoint or dataset: one line, no traceback
        sys.exit(str(err))
