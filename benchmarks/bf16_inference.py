"""fp32 vs bf16 autocast inference with the bundled model: speed and crack IoU on crack-seg val.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bf16_inference.py [--limit 0] [--repeats 5]

Speed: median ms per 416x416 image of the model's forward pass, batch 1 and 8, the two precisions
interleaved `--repeats` times (so a load swing hits both), plus the wall time of predicting every
val image through `Predictor.predict_probs`. Quality: crack IoU/F1 of each precision over the val
images at the model's calibrated threshold, as `crackseg evaluate` counts it (SegMetrics).
Target (issue 9): bf16 predicts the val images >= 1.5x faster at a crack IoU within 0.005 of
fp32; `--precision auto` picks bf16 on CPUs with native bf16 (AVX512-BF16 or AMX), the kind this
was measured on.
Writes benchmarks/results/bf16_inference.md and .json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from crackseg.data import build_dataset
from crackseg.engine.checkpoint import resolve_model_ref
from crackseg.engine.setup import cpu_has_fast_bf16
from crackseg.inference import Predictor
from crackseg.metrics import SegMetrics
from crackseg.weights import resolve_checkpoint

DATA = Path(__file__).resolve().parents[2] / "shared/data/crack-seg/crack-seg.yaml"
RESULTS = Path(__file__).resolve().parent / "results"
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def forward_ms(predictors: dict, batch: int, repeats: int) -> dict[str, float]:
    """Median ms per image of one forward pass per precision, interleaved."""
    x = torch.randn(batch, 3, 416, 416)
    times = {name: [] for name in predictors}
    with torch.inference_mode():
        for p in predictors.values():
            p._forward(x)  # warm-up (oneDNN primitive creation)
        for _ in range(repeats):
            for name, p in predictors.items():
                start = time.perf_counter()
                p._forward(x)
                times[name].append((time.perf_counter() - start) * 1000 / batch)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--limit", type=int, default=0, help="first N val images (0 = all)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--out", default=str(RESULTS / "bf16_inference"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = resolve_model_ref(resolve_checkpoint(None)[0])
    predictors = {name: Predictor.from_checkpoint(checkpoint, amp_dtype=dtype)
                  for name, dtype in PRECISIONS.items()}  # fmt: skip
    threshold = predictors["fp32"].model.config["threshold"]
    speed = {f"b{b}": forward_ms(predictors, b, args.repeats) for b in (1, 8)}
    dataset = build_dataset(args.data, "val", resize="native", compact=True)
    n = len(dataset) if args.limit <= 0 else min(args.limit, len(dataset))
    metrics = {name: SegMetrics(threshold=threshold) for name in predictors}
    wall = dict.fromkeys(predictors, 0.0)
    for k in range(n):
        sample = dataset[k]
        image = sample["image"].permute(1, 2, 0).numpy()  # (H, W, 3) uint8
        for name, predictor in predictors.items():
            start = time.perf_counter()
            probs = predictor.predict_probs(image)  # (H, W)
            wall[name] += time.perf_counter() - start
            metrics[name].update(torch.from_numpy(probs)[None], sample["mask"][None].long())
        print(f"{k + 1}/{n}", end="\r", flush=True)
    scores = {name: m.compute() for name, m in metrics.items()}
    iou = {name: s["crack_iou"] for name, s in scores.items()}
    speedup = {key: v["fp32"] / v["bf16"] for key, v in speed.items()}
    speedup["val_wall"] = wall["fp32"] / wall["bf16"]
    result = {
        "images": n, "threshold": threshold, "threads": args.threads, "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": cpu_has_fast_bf16(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "forward_ms_per_image": speed, "val_wall_s": wall, "speedup_bf16": speedup,
        "crack_iou": iou, "crack_f1": {name: s["crack_f1"] for name, s in scores.items()},
        "bf16_meets_target": speedup["val_wall"] >= 1.5 and abs(iou["bf16"] - iou["fp32"]) <= 0.005,
    }  # fmt: skip
    write(result, Path(args.out))


def write(r: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(r, indent=2))
    lines = [f"# fp32 vs bf16 autocast inference, bundled model ({r['images']} crack-seg val "
             f"images, {r['threads']} threads, torch {r['torch']}, CPU {r['cpu_capability']}, "
             f"native bf16: {r['native_bf16']}, {r['date']})", "",
             "| | fp32 | bf16 | bf16 speed-up |", "|---|---|---|---|"]  # fmt: skip
    for key, v in r["forward_ms_per_image"].items():
        lines.append(f"| forward ms/image, batch {key[1:]} | {v['fp32']:.1f} | {v['bf16']:.1f} | "
                     f"{r['speedup_bf16'][key]:.2f}x |")  # fmt: skip
    w = r["val_wall_s"]
    lines += [f"| predict_probs, all val images (s) | {w['fp32']:.1f} | {w['bf16']:.1f} | "
              f"{r['speedup_bf16']['val_wall']:.2f}x |",
              f"| crack IoU @ {r['threshold']} | {r['crack_iou']['fp32']:.4f} | "
              f"{r['crack_iou']['bf16']:.4f} | diff {r['crack_iou']['bf16'] - r['crack_iou']['fp32']:+.4f} |",
              f"| crack F1 | {r['crack_f1']['fp32']:.4f} | {r['crack_f1']['bf16']:.4f} | |", "",
              f"Target (predicting the val images >= 1.5x faster, IoU within 0.005): "
              f"{'met' if r['bf16_meets_target'] else 'NOT met'}."]  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
