"""`crackseg predict`: masks, probabilities and overlays for files, folders and globs.

A batch never stops at one bad image: with `on_skip`, each unreadable file (empty, truncated, not
an image, a decompression bomb, a folder with an image's name) is reported and skipped, and the
rest is written as usual.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from crackseg.conventions import DEFAULT_THRESHOLD, resolve_threshold
from crackseg.data import read_image
from crackseg.data.io import is_image_file
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor
from crackseg.visualize import overlay, save_png


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths; unmatched inputs
    are an error that names them. A folder named like an image (`x.jpg/`) inside a searched folder
    is listed too, so that it is reported rather than silently passed over."""
    paths: list[Path] = []
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(
                q for q in p.rglob("*") if is_image_file(q) and (q.is_file() or q.is_dir())
            )
            found = [q for q in found if q.is_file() or not _has_images(q)]
            if not found and is_image_file(p):
                found = [p]  # `x.jpg` given by name is a folder: reported when read
        elif p.is_file():
            found = [p]
        else:
            found = sorted(Path(q) for q in glob.glob(spec, recursive=True) if Path(q).is_file())
        if not found:
            raise CrackSegError(f"{spec}: no such image file, folder or matching pattern")
        paths += found
    return paths


def _has_images(folder: Path) -> bool:
    return any(q.is_file() and is_image_file(q) for q in folder.rglob("*"))


def threshold_for(predictor: Predictor, requested: float | None, checkpoint: str | Path) -> float:
    """The user's threshold, else the one stored in the checkpoint, else the default; a stored
    value outside [0, 1] is an error naming the checkpoint."""
    stored = getattr(predictor.model, "config", {}).get("threshold")
    try:
        return resolve_threshold(requested, stored)
    except (TypeError, ValueError):
        raise CrackSegError(
            f"{checkpoint}: stored threshold {stored!r} is not in [0, 1]; pass --threshold"
        ) from None


def _read(path: Path) -> np.ndarray:
    """(H, W, 3) uint8, or a CrackSegError that names the file and the problem."""
    if path.is_dir():
        raise CrackSegError(f"{path}: a folder, not an image file. Rename or remove it.")
    return read_image(path)


def predict_files(
    predictor: Predictor,
    inputs: list[str],
    out: str | Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    measure: bool = False,
    mm_per_px: float | None = None,
    on_skip: Callable[[Path, str], None] | None = None,
) -> list[dict]:
    """For each image write <stem>_mask.png (0/255), <stem>_prob.png (0-255) and
    <stem>_overlay.png; with `measure`, also <stem>_width.png and crack measurements.

    An unreadable image raises CrackSegError, or with `on_skip` is passed to
    `on_skip(path, message)` and skipped. predictions.json lists the images written (it is not
    written when every image failed)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CrackSegError(f"--out {out}: is a file, not a folder. Choose a folder.")
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for path in expand_inputs(inputs):
        try:
            image = _read(path)  # (H, W, 3) uint8
        except CrackSegError as err:
            if on_skip is None:
                raise
            on_skip(path, str(err))
            continue
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
    if results:
        (out / "predictions.json").write_text(json.dumps(results, indent=2))
    return results
