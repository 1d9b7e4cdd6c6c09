"""`crackseg predict`: masks, probabilities and overlays for files, folders and globs."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import numpy as np
from PIL import Image

from crackseg.data import read_image
from crackseg.data.io import is_image_file
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor
from crackseg.visualize import overlay, save_png


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths; unmatched inputs
    are an error that names them."""
    paths: list[Path] = []
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and is_image_file(q))
        elif p.is_file():
            found = [p]
        else:
            found = sorted(Path(q) for q in glob.glob(spec, recursive=True) if Path(q).is_file())
        if not found:
            raise CrackSegError(f"{spec}: no such image file, folder or matching pattern")
        paths += found
    return paths


def predict_files(
    predictor: Predictor,
    inputs: list[str],
    out: str | Path,
    *,
    threshold: float = 0.5,
    measure: bool = False,
    mm_per_px: float | None = None,
) -> list[dict]:
    """For each image write <stem>_mask.png (0/255), <stem>_prob.png (0-255) and
    <stem>_overlay.png; with `measure`, also <stem>_width.png and crack measurements."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for path in expand_inputs(inputs):
        image = read_image(path)  # (H, W, 3) uint8
        probs = predictor.predict_probs(image)  # (H, W)
        preds = (probs >= threshold).astype(np.uint8)
        stem = path.stem
        Image.fromarray(preds * 255).save(out / f"{stem}_mask.png")
        Image.fromarray((probs * 255).round().astype(np.uint8)).save(out / f"{stem}_prob.png")
        save_png(overlay(image, preds), out / f"{stem}_overlay.png")
        row = {"image": str(path), "mask": str(out / f"{stem}_mask.png"),
               "crack_fraction": float(preds.mean())}  # fmt: skip
        if measure:
            from crackseg.measure import measure_cracks, width_overlay

            report = measure_cracks(preds, mm_per_px=mm_per_px)
            save_png(width_overlay(image, preds, report), out / f"{stem}_width.png")
            row["measurements"] = report.to_dict()
        results.append(row)
    (out / "predictions.json").write_text(json.dumps(results, indent=2))
    return results
