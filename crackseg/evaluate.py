"""`crackseg evaluate`: metrics of a checkpoint on a dataset split, at the labels' native size."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from crackseg.data import build_dataset
from crackseg.engine.loop import evaluate
from crackseg.engine.setup import eval_loader, resolve_amp, resolve_device
from crackseg.inference import Predictor
from crackseg.metrics import SegMetrics


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    *,
    split: str = "test",
    device: str = "auto",
    batch_size: int = 4,
    workers: int = 1,
    tta: bool = False,
    threshold: float | None = None,
    tolerance_px: int = 2,
    amp: str = "none",
    out: str | Path | None = None,
) -> dict:
    """Run the predictor (the same one `crackseg predict` uses) over a split; returns metrics.

    With `out`, writes metrics.json and pr_curve.png there.
    """
    dev = resolve_device(device)
    predictor = Predictor.from_checkpoint(checkpoint, device=dev, tta=tta,
                                          amp_dtype=resolve_amp(amp, dev))  # fmt: skip
    cfg = predictor.model.config
    threshold = cfg.get("threshold", 0.5) if threshold is None else threshold
    dataset = build_dataset(data, split, resize="native")
    metrics = SegMetrics(threshold=threshold, tolerance_px=tolerance_px)
    loader = eval_loader(dataset, batch_size=batch_size, workers=workers)
    with torch.inference_mode():
        evaluate(predictor.model, loader, metrics, device=dev, mean=predictor.mean,
                 std=predictor.std, predict=predictor)  # fmt: skip
    result = {"checkpoint": str(checkpoint), "data": str(data), "split": split,
              "threshold": threshold, "tta": tta, "metrics": metrics.compute()}  # fmt: skip
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2))
        metrics.save_pr_curve(out / "pr_curve.png", title=f"Crack PR curve ({split})")
        result["files"] = [str(out / "metrics.json"), str(out / "pr_curve.png")]
    return result
