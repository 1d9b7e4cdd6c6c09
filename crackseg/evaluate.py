"""`crackseg evaluate`: metrics of a checkpoint on a dataset split, at the labels' native size."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from crackseg.conventions import IGNORE_INDEX, resolve_threshold
from crackseg.data import build_dataset
from crackseg.engine.checkpoint import resolve_model_ref
from crackseg.engine.loop import evaluate
from crackseg.engine.setup import eval_loader, resolve_amp, resolve_device
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor, scale_settings
from crackseg.metrics import SegMetrics
from crackseg.outputs import mark_output


def check_options(
    *,
    batch_size: int,
    workers: int,
    tolerance_px: int,
    threshold: float | None,
    scale: float | str = "auto",
) -> None:
    """Reject bad settings before any work (CrackSegError naming the flag)."""
    scale_settings(scale)
    if batch_size < 1:
        raise CrackSegError(f"--batch-size {batch_size}: give a whole number >= 1")
    if workers < 0:
        raise CrackSegError(f"--workers {workers}: give a whole number >= 0 (0 = no worker)")
    if tolerance_px < 0:
        raise CrackSegError(f"--tolerance {tolerance_px}: give a whole number of pixels >= 0")
    if threshold is not None and not (math.isfinite(threshold) and 0 <= threshold <= 1):
        raise CrackSegError(f"--threshold {threshold}: give a crack probability in [0, 1]")


def finite_outputs(predict: Callable[[Tensor], Tensor], checkpoint) -> Callable[[Tensor], Tensor]:
    """`predict`, refusing logits that are NaN or inf (one reduction per batch)."""

    def checked(images: Tensor) -> Tensor:
        logits = predict(images)  # (B, K, H, W)
        if not bool(torch.isfinite(logits).all()):
            raise CrackSegError(
                f"model outputs are not finite: the checkpoint {checkpoint} gives NaN or inf "
                "logits; use an earlier checkpoint or retrain with a lower --lr"
            )
        return logits

    return checked


def evaluate_checkpoint(
    checkpoint: str | Path | None,
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
    scale: float | str = "auto",
    out: str | Path | None = None,
) -> dict:
    """Run the predictor (the same one `crackseg predict` uses) over a split; returns metrics.

    `checkpoint` is a .ckpt, a bundled model's file or name, or None for the default bundled model.
    `scale` resizes the images for the model as `crackseg predict --scale` does: "auto" (the run's
    own scale; an image whose short side is over two windows is downscaled) or a factor.

    With `out`, writes metrics.json and pr_curve.png there. A split without any labelled pixel
    (every mask pixel ignore) is an error, never a perfect score; one without a labelled crack
    pixel (e.g. `names: []` in data.yaml) reports crack scores as undefined and adds a warning.
    """
    check_options(batch_size=batch_size, workers=workers, tolerance_px=tolerance_px,
                  threshold=threshold, scale=scale)  # fmt: skip
    checkpoint = resolve_model_ref(checkpoint)
    dev = resolve_device(device)
    predictor = Predictor.from_checkpoint(checkpoint, device=dev, tta=tta,
                                          amp_dtype=resolve_amp(amp, dev),
                                          **scale_settings(scale))  # fmt: skip
    try:
        threshold = resolve_threshold(threshold, predictor.model.config.get("threshold"))
    except ValueError as err:
        raise CrackSegError(f"{checkpoint}: stored {err}; pass --threshold") from err
    dataset = build_dataset(data, split, resize="native")
    metrics = SegMetrics(threshold=threshold, tolerance_px=tolerance_px)
    loader = eval_loader(dataset, batch_size=batch_size, workers=workers)
    with torch.inference_mode():
        evaluate(predictor.model, loader, metrics, device=dev, mean=predictor.mean,
                 std=predictor.std, predict=finite_outputs(predictor, checkpoint))  # fmt: skip
    scores = metrics.compute()
    if scores["labelled_pixels"] == 0:
        raise CrackSegError(
            f"{data}: the {split!r} split has no labelled pixel (all {int(scores['images'])} "
            f"masks are ignore={IGNORE_INDEX}), so no metric can be computed; check 'names' in "
            "data.yaml and the mask values"
        )
    result = {"checkpoint": str(checkpoint), "data": str(data), "split": split,
              "threshold": threshold, "tta": tta, "scale": scale, "metrics": scores, "warnings": []}  # fmt: skip
    if scores["recall"] is None:  # no crack pixel among the labels
        result["warnings"].append(
            f"{data}: the {split!r} split has no labelled crack pixel, so crack IoU, F1 and "
            "recall are undefined; check 'names' in data.yaml and the mask values"
        )
    if out is not None:
        out = Path(out)
        mark_output(out, "evaluate")  # pr_curve.png is not a photo for a later predict
        (out / "metrics.json").write_text(json.dumps(result, indent=2))
        metrics.save_pr_curve(out / "pr_curve.png", title=f"Crack PR curve ({split})")
        result["files"] = [str(out / "metrics.json"), str(out / "pr_curve.png")]
    return result
