"""Crack measurement accuracy against synthetic cracks of known centreline length and width.

    .venv/bin/python benchmarks/measure_accuracy.py [--seeds 20]

For each kind (straight, curved, branching) and width 1..8 px, renders cracks with
`crackseg.data.synthetic.render_crack` and prints the error of `measure_cracks` (targets: length
within 5 %, width within 1 px).
"""

from __future__ import annotations

import argparse

import numpy as np

from crackseg.data.synthetic import render_crack
from crackseg.measure import measure_cracks


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args()
    print("| kind | width px | length err % mean (min..max) | mean-width err px mean (min..max) "
          "| max-width err px (min..max) |")  # fmt: skip
    print("|---|---|---|---|---|")
    worst = np.zeros(3)
    for kind in ("straight", "curved", "branching"):
        for width in range(1, 9):
            errors = []
            for seed in range(args.seeds):
                mask, length, true_width = render_crack(
                    kind, width=width, size=args.size, seed=seed
                )
                report = measure_cracks(mask)
                errors.append((100 * (report.total_length_px - length) / length,
                               report.cracks[0].mean_width_px - true_width,
                               report.max_width_px - true_width))  # fmt: skip
            e = np.array(errors)  # (seeds, 3)
            worst = np.maximum(worst, np.abs(e).max(0))
            print(f"| {kind} | {width} | {e[:, 0].mean():+.2f} ({e[:, 0].min():+.2f}..{e[:, 0].max():+.2f})"
                  f" | {e[:, 1].mean():+.2f} ({e[:, 1].min():+.2f}..{e[:, 1].max():+.2f})"
                  f" | {e[:, 2].min():+.2f}..{e[:, 2].max():+.2f} |")  # fmt: skip
    print(
        f"worst: length {worst[0]:.2f} %, mean width {worst[1]:.2f} px, max width {worst[2]:.2f} px"
    )


if __name__ == "__main__":
    main()
