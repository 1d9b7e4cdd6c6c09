"""What tile overlap buys at seams: crack IoU overall and near window edges, per overlap mode.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/tiling_overlap.py [--windows 208 160] [--limit 0]

The crack-seg val images (416 px) are predicted by the bundled model with windows smaller than
the image, so that seams fall inside it, for each overlap mode (none, quarter, half; see
`crackseg.inference.window_starts`), and once untiled (window 416) as the seam-free reference.
Reported per mode: windows per image, seconds per image, crack IoU against the labels overall and
in a band of +-`--band` px around the window edges inside the image (of all modes), and how many
pixels (overall / in the band) disagree with the untiled prediction at the model's threshold.
Writes benchmarks/results/tiling_overlap.md and .json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from crackseg.conventions import IGNORE_INDEX
from crackseg.data import build_dataset
from crackseg.engine.checkpoint import resolve_model_ref
from crackseg.inference import OVERLAPS, Predictor, window_starts
from crackseg.weights import resolve_checkpoint

DATA = Path(__file__).resolve().parents[2] / "shared/data/crack-seg/crack-seg.yaml"
RESULTS = Path(__file__).resolve().parent / "results"


def seam_band(size: int, window: int, band: int) -> np.ndarray:
    """(size, size) bool: pixels within `band` px of an edge inside a square image of a window
    of any overlap mode (one pixel set for all modes, so that their scores compare)."""
    edges = set()
    for mode in OVERLAPS:
        for s in window_starts(size, window, overlap=mode):
            edges |= {e for e in (s, s + window) if 0 < e < size}
    near = np.zeros(size, dtype=bool)
    for e in edges:
        near[max(0, e - band) : e + band] = True
    return near[:, None] | near[None, :]


class Counts:
    """Crack TP/FP/FN against labels (ignore pixels skipped) and disagreements with a reference."""

    def __init__(self):
        self.tp = self.fp = self.fn = self.differ = self.pixels = 0

    def add(self, preds, target, reference, where):
        labelled = where & (target != IGNORE_INDEX)
        p, t = preds[labelled], target[labelled] == 1
        self.tp += int((p & t).sum())
        self.fp += int((p & ~t).sum())
        self.fn += int((~p & t).sum())
        self.differ += int((preds != reference)[where].sum())
        self.pixels += int(where.sum())

    def scores(self) -> dict:
        union = self.tp + self.fp + self.fn
        return {"crack_iou": self.tp / union if union else None,
                "differ_from_untiled": self.differ / max(1, self.pixels)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--windows", type=int, nargs="+", default=[208, 160])
    p.add_argument("--band", type=int, default=4, help="half-width of the seam band in px")
    p.add_argument("--limit", type=int, default=0, help="first N val images (0 = all)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--out", default=str(RESULTS / "tiling_overlap"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = resolve_model_ref(resolve_checkpoint(None)[0])
    amp = torch.bfloat16 if args.precision == "bf16" else None
    base = Predictor.from_checkpoint(checkpoint, amp_dtype=amp)
    threshold = base.model.config["threshold"]
    dataset = build_dataset(args.data, "val", resize="native", compact=True)
    n = len(dataset) if args.limit <= 0 else min(args.limit, len(dataset))
    setups = [(w, mode) for w in args.windows for mode in OVERLAPS]
    counts = {s: (Counts(), Counts()) for s in setups}
    seconds = dict.fromkeys(setups, 0.0)
    untiled = Counts()
    for k in range(n):
        sample = dataset[k]
        image = sample["image"].permute(1, 2, 0).numpy()  # (H, W, 3) uint8
        target = sample["mask"].numpy()
        reference = base.predict_probs(image) >= threshold
        everywhere = np.ones_like(reference)
        untiled.add(reference, target, reference, everywhere)
        for window, mode in setups:
            tiler = Predictor(base.model, window=window, mean=base.mean, std=base.std,
                              overlap=mode, amp_dtype=amp, channels_last=base.channels_last)  # fmt: skip
            start = time.perf_counter()
            preds = tiler.predict_probs(image) >= threshold
            seconds[(window, mode)] += time.perf_counter() - start
            band = seam_band(image.shape[0], window, args.band)
            overall, near = counts[(window, mode)]
            overall.add(preds, target, reference, everywhere)
            near.add(preds, target, reference, band)
        print(f"{k + 1}/{n}", end="\r", flush=True)
    size = dataset[0]["image"].shape[-1]
    rows = [{"window": w, "overlap": mode, "windows_per_image": len(window_starts(size, w, overlap=mode)) ** 2,
             "s_per_image": seconds[(w, mode)] / n, **{f"{key}_all": v for key, v in counts[(w, mode)][0].scores().items()},
             **{f"{key}_seam": v for key, v in counts[(w, mode)][1].scores().items()}}
            for w, mode in setups]  # fmt: skip
    result = {"images": n, "image_size": size, "band_px": args.band, "threshold": threshold,
              "precision": args.precision, "threads": args.threads, "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "untiled_crack_iou": untiled.scores()["crack_iou"], "rows": rows}  # fmt: skip
    write(result, Path(args.out))


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [f"# Tile overlap at seams ({result['images']} crack-seg val images, "
             f"{result['image_size']} px, {result['precision']}, {result['threads']} threads, "
             f"torch {result['torch']}, {result['date']})", "",
             f"Untiled (one 416 window) crack IoU: {result['untiled_crack_iou']:.4f}. Seam band: "
             f"+-{result['band_px']} px around the window edges inside the image, of all three modes.", "",
             "| window | overlap | windows/image | s/image | crack IoU | IoU at seams "
             "| differs from untiled | differs at seams |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in result["rows"]:
        lines.append(f"| {r['window']} | {r['overlap']} | {r['windows_per_image']} | "
                     f"{r['s_per_image']:.3f} | {r['crack_iou_all']:.4f} | {r['crack_iou_seam']:.4f} | "
                     f"{r['differ_from_untiled_all']:.4%} | {r['differ_from_untiled_seam']:.4%} |")  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
