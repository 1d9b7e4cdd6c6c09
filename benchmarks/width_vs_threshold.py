"""How much a measured crack width depends on the threshold, next to the widths the labels draw.

    python benchmarks/width_vs_threshold.py [--checkpoint CKPT] [--data crack-seg.yaml]
        [--split val] [--thresholds 0.18 0.4 0.6 0.83] [--every K]

`crackseg measure` and `predict --measure` read a crack's width off the mask (twice the distance
to the background along the skeleton), so the width is where the mask's edge is: the threshold
and the width convention of the labels the model learned. For each threshold this prints what
`measure_cracks` finds on the model's masks (cracks, total centreline length, length-weighted mean
width, and per image the predicted / labelled mean width) and the same for the labels. Writes
nothing; prints one table.
"""

from __future__ import annotations

import argparse
import sys

import label_boundary as boundary  # the sibling script (its default data path): run from benchmarks/
import numpy as np
import torch

from crackseg.conventions import IGNORE_INDEX
from crackseg.data.dataset import build_dataset
from crackseg.engine.checkpoint import resolve_model_ref
from crackseg.engine.setup import resolve_amp
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor
from crackseg.measure import measure_cracks


def widths(mask: np.ndarray) -> tuple[int, float, float]:
    """(H, W) bool -> (cracks, total length px, length-weighted mean width px; nan if none)."""
    cracks = measure_cracks(mask).cracks
    length = sum(c.length_px for c in cracks)
    width = sum(c.mean_width_px * c.length_px for c in cracks) / length if length else float("nan")
    return len(cracks), length, width


class Tally:
    """Cracks, length and length-weighted width summed over images, and per image the mean width
    against the labels' (images where both masks hold a measured crack)."""

    def __init__(self) -> None:
        self.cracks, self.length, self.width_length = 0, 0.0, 0.0
        self.ratios: list[float] = []

    def add(self, measured: tuple[int, float, float], label_width: float) -> None:
        n, length, width = measured
        self.cracks += n
        self.length += length
        if length:
            self.width_length += width * length
            if not np.isnan(label_width):
                self.ratios.append(width / label_width)

    def row(self, name: str) -> str:
        width = self.width_length / self.length if self.length else float("nan")
        ratio = (
            ""
            if not self.ratios
            else "{:.2f} / {:.2f} / {:.2f}".format(*np.quantile(self.ratios, [0.1, 0.5, 0.9]))
        )
        return f"| {name} | {self.cracks} | {self.length:.0f} | {width:.2f} | {ratio} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the bundled model")
    parser.add_argument("--data", default=str(boundary.CRACK_SEG))
    parser.add_argument("--split", default="val")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.18, 0.4, 0.6, 0.83])
    parser.add_argument("--every", type=int, default=1, help="measure every K-th image")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.every < 1 or not all(0 < t < 1 for t in args.thresholds):
        parser.error("--every takes a whole number >= 1 and --thresholds values in (0, 1)")
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    predictor = Predictor.from_checkpoint(resolve_model_ref(args.checkpoint), device=cpu,
                                          amp_dtype=resolve_amp("auto", cpu))  # fmt: skip
    dataset = build_dataset(args.data, args.split, resize="native", compact=True)  # uint8
    labels, at = Tally(), {t: Tally() for t in args.thresholds}
    images = range(0, len(dataset), args.every)
    for i in images:
        item = dataset[i]
        valid = (item["mask"] != IGNORE_INDEX).numpy()  # (H, W)
        label = (item["mask"] == 1).numpy() & valid
        measured = widths(label)
        labels.add(measured, float("nan"))  # no ratio of the labels to themselves
        probs = predictor.predict_probs(item["image"].permute(1, 2, 0).numpy())  # (H, W)
        for t, tally in at.items():
            tally.add(widths((probs >= t) & valid), measured[2])
    print(f"{args.data} {args.split}: {len(images)} of {len(dataset)} images")
    print("| mask | cracks | centreline length px | mean width px (length-weighted) | "
          "per image: width / label width, p10 / p50 / p90 |")  # fmt: skip
    print("|---|---|---|---|---|")
    print(labels.row("labels"))
    for t, tally in at.items():
        print(tally.row(f"model at threshold {t:g}"))


if __name__ == "__main__":
    try:
        main()
    except CrackSegError as err:  # a missing checkpoint or dataset: one line, no traceback
        sys.exit(str(err))
