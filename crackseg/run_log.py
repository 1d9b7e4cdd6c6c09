"""What a training run writes besides checkpoints: metrics.csv, TensorBoard events, curves.png,
per-epoch sample overlays, and the one-screen summary. Only rank 0 writes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from crackseg.conventions import DEFAULT_THRESHOLD
from crackseg.metrics.report import format_table, threshold_hint
from crackseg.visualize import sample_grid, save_curves, save_png

CSV_KEYS = ["epoch", "step", "lr", "train_loss", "images_per_s", "epoch_seconds", "crack_iou",
            "crack_f1", "precision", "recall", "miou", "pixel_acc", "ods_f1", "ods_threshold",
            "ois_f1", "tol_f1"]  # fmt: skip


class RunLog:
    def __init__(self, out: Path, *, enabled: bool = True, resume: bool = False):
        self.out, self.enabled = Path(out), enabled
        self.writer = None
        if not enabled:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.out / "tensorboard"))
        if not resume:
            (self.out / "metrics.csv").unlink(missing_ok=True)

    def epoch(self, row: dict, history: list[dict], predictor, val_set, num_samples: int) -> None:
        path = self.out / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_KEYS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in CSV_KEYS})
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(key, value, row["epoch"])
        self.writer.flush()
        save_curves(history, self.out / "curves.png")
        if num_samples:
            grid = sample_grid(list(samples(predictor, val_set, num_samples)))
            save_png(grid, self.out / "samples" / f"epoch_{row['epoch']:03d}.png")
        self.print_epoch(row)

    def print_epoch(self, row: dict) -> None:
        parts = [f"epoch {row['epoch']}", f"loss {row['train_loss']:.4f}",
                 f"{row['images_per_s']:.1f} img/s"]  # fmt: skip
        if "crack_iou" in row:
            parts += [f"val crack IoU {score(row['crack_iou'])}", f"F1 {score(row['crack_f1'])}",
                      f"ODS {score(row.get('ods_f1'))}"]  # fmt: skip
        print(" | ".join(parts), flush=True)

    def note(self, text: str) -> None:
        if self.enabled:
            print(text, flush=True)

    def close(self, summary: dict) -> None:
        if self.writer:
            self.writer.close()
        last = summary["last"]
        metrics = {k: v for k, v in last.items() if k in CSV_KEYS[6:]}
        print(format_table(metrics, title=f"Run {summary['run']}: epoch {last.get('epoch')}"))
        print(f"best val crack IoU {score(summary['best_crack_iou'])} | {summary['epochs']} epochs "
              f"in {summary['seconds'] / 60:.1f} min | checkpoints: {self.out}/best.ckpt, "
              f"{self.out}/last.ckpt | curves: {self.out}/curves.png")  # fmt: skip
        if hint := threshold_hint(metrics, summary["threshold"]):  # read off the last validation
            print(f"{hint} (val, epoch {last.get('epoch')})")


def score(value: float | None) -> str:
    """A metric for the console: 4 decimals, or 'undefined' when there was nothing to score."""
    return "undefined" if value is None else f"{value:.4f}"


def samples(predictor, dataset, n: int):
    """(image uint8, target, prediction) for the first n samples of a native-size dataset."""
    for i in range(min(n, len(dataset))):
        item = dataset[i]
        image = (item["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        probs = predictor.predict_probs(image)
        target = item["mask"].numpy().astype(np.uint8)
        yield image, target, (probs >= DEFAULT_THRESHOLD).astype(np.uint8)
