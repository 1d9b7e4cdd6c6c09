"""Is `--scale auto` right for large photos? Crack IoU at auto vs full scale on two kinds of
large image built from crack-seg val (labels known):

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/auto_scale_check.py [--groups 22] [--factor 3]

- mosaic: 3x3 val images side by side (1248 px), cracks as thin as in training: a large photo
  of thin cracks. auto shrinks it to 832 px (cracks 2/3 as wide); scale 1 keeps them.
- zoomed: one val image upscaled `--factor` times (1248 px), cracks that many times wider: a
  phone photo taken closer than the training images. auto shows them 2x wide; scale 1, 3x.
Writes benchmarks/results/auto_scale_check.md and .json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from crackseg.data import build_dataset
from crackseg.engine.checkpoint import resolve_model_ref
from crackseg.inference import Predictor
from crackseg.metrics import SegMetrics
from crackseg.weights import resolve_checkpoint

DATA = Path(__file__).resolve().parents[2] / "shared/data/crack-seg/crack-seg.yaml"
RESULTS = Path(__file__).resolve().parent / "results"


def zoom(image: np.ndarray, mask: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    big = np.asarray(Image.fromarray(image).resize((w * factor, h * factor), Image.BILINEAR))
    return big, np.kron(mask, np.ones((factor, factor), dtype=mask.dtype))  # nearest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--groups", type=int, default=22, help="mosaics (9 val images each)")
    p.add_argument("--factor", type=int, default=3)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--out", default=str(RESULTS / "auto_scale_check"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = resolve_model_ref(resolve_checkpoint(None)[0])
    amp = torch.bfloat16 if args.precision == "bf16" else None
    predictor = Predictor.from_checkpoint(checkpoint, amp_dtype=amp, auto=True)
    threshold = predictor.model.config["threshold"]
    dataset = build_dataset(args.data, "val", resize="native", compact=True)
    groups = min(args.groups, len(dataset) // 9)
    cases = {("mosaic", "auto"), ("mosaic", "1"), ("zoomed", "auto"), ("zoomed", "1"),
             ("zoomed", "native")}  # fmt: skip
    metrics = {case: SegMetrics(threshold=threshold) for case in cases}
    for g in range(groups):
        samples = [dataset[9 * g + i] for i in range(9)]
        images = [s["image"].permute(1, 2, 0).numpy() for s in samples]  # (H, W, 3) uint8
        masks = [s["mask"].numpy() for s in samples]
        rows = [np.concatenate(images[r * 3 : r * 3 + 3], 1) for r in range(3)]
        photos = {"mosaic": (np.concatenate(rows, 0),
                             np.block([masks[r * 3 : r * 3 + 3] for r in range(3)])),
                  "zoomed": zoom(images[0], masks[0], args.factor)}  # fmt: skip
        for kind, scale in cases:
            image, mask = photos[kind]
            value = {"auto": None, "1": 1.0, "native": 1 / args.factor}[scale]
            probs = predictor.predict_probs(image, scale=value)  # (H, W)
            metrics[(kind, scale)].update(torch.from_numpy(probs)[None],
                                          torch.from_numpy(mask)[None].long())  # fmt: skip
        print(f"{g + 1}/{groups}", end="\r", flush=True)
    scores = {f"{k}/{s}": metrics[(k, s)].compute()["crack_iou"] for k, s in sorted(cases)}
    result = {"groups": groups, "factor": args.factor, "precision": args.precision,
              "threshold": threshold, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "crack_iou": scores}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [f"# --scale auto on large images ({groups} mosaics of 3x3 val images; the first "
             f"image of each upscaled x{args.factor}; {args.precision}; {result['date']})", "",
             "| image | scale | crack IoU |", "|---|---|---|"]  # fmt: skip
    lines += [
        f"| {key.split('/')[0]} | {key.split('/')[1]} | {v:.4f} |" for key, v in scores.items()
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
