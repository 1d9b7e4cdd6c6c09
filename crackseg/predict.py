"""`crackseg predict`: masks, probabilities and overlays for files, folders and globs.

A batch never stops at one bad image: with `on_skip`, each unreadable file (empty, truncated, not
an image, a decompression bomb, a folder with an image's name) is reported and skipped, and the
rest is written as usual. With `processes` > 1, images are shared out to that many processes
(spawned, each with its own copy of the predictor and an equal share of the torch threads); the
outputs are the same files with the same bytes. Which images are read, and which earlier outputs
are left out: `crackseg.inputs`.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path

import cv2
import numpy as np
import torch

from crackseg.conventions import DEFAULT_THRESHOLD, resolve_threshold
from crackseg.data import read_image
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor
from crackseg.inputs import output_names
from crackseg.outputs import mark_output
from crackseg.visualize import overlay, save_png

PNG_LEVEL = 1  # zlib level of the written PNGs: a 12 MP overlay takes 2 s at 1, 6.9 s at 6 (+16 %)


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
    gap_px: float | None = None,
    min_length_px: float | None = None,
    on_skip: Callable[[Path, str], None] | None = None,
    processes: int = 1,
) -> list[dict]:
    """For each image write <name>_mask.png (0/255), <name>_prob.png (0-255) and
    <name>_overlay.png; with `measure`, also <name>_width.png and crack measurements
    (`gap_px`, `min_length_px`: see `measure_cracks`). Names come from `output_names`: an
    image in a sub-folder of a folder input is written to the same sub-folder of `out`, and
    no two images share a name.

    An unreadable image raises CrackSegError, or with `on_skip` is passed to
    `on_skip(path, message)` and skipped. predictions.json lists the images written (it is not
    written when every image failed), in input order whatever `processes` is; after Ctrl-C it
    lists the images written so far, and the KeyboardInterrupt says how many."""
    out = Path(out)
    named = output_names(inputs, exclude=out)
    mark_output(out, "predict")
    settings = {"threshold": threshold, "measure": measure, "mm_per_px": mm_per_px,
                "gap_px": gap_px, "min_length_px": min_length_px}  # fmt: skip
    if processes > 1 and len(named) > 1:
        outcomes = _in_processes(predictor, named, out, settings, processes)
    else:
        outcomes = (predict_one(predictor, path, name, out, **settings) for path, name in named)
    results, interrupted = [], False
    try:
        for (path, _), outcome in zip(named, outcomes, strict=True):
            if isinstance(outcome, str):  # the image could not be read
                if on_skip is None:
                    raise CrackSegError(outcome)
                on_skip(path, outcome)
                continue
            results.append(outcome)
    except KeyboardInterrupt:  # Ctrl-C: keep the record of what was written, then say so
        interrupted = True
    if results:
        (out / "predictions.json").write_text(json.dumps(results, indent=2))
    if interrupted:
        done = f"after {len(results)} of {len(named)} images; {out / 'predictions.json'} lists them"
        raise KeyboardInterrupt(done if results else "before any image was written")
    return results


def predict_one(
    predictor: Predictor, path: Path, name: str, out: Path, *, threshold: float, **measuring
) -> dict | str:
    """Predict one image and write its PNGs (`write_outputs`); its predictions.json row, or the
    message saying why it could not be read."""
    try:
        image = _read(path)  # (H, W, 3) uint8
    except CrackSegError as err:
        return str(err)
    probs = predictor.predict_probs(image)  # (H, W) float32
    preds, prob8 = mask_and_prob8(probs, threshold)
    del probs  # freed before the overlay and the PNGs are made (4 bytes a pixel)
    row = write_outputs(image, preds, prob8, out / name, **measuring)
    return {"image": str(path), **row}


def mask_and_prob8(probs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Crack probabilities (H, W) float32 -> mask (H, W) uint8 {0, 1} and probabilities as
    uint8 0-255, `(probs * 255).round()` without a float copy."""
    return (probs >= threshold).astype(np.uint8), cv2.convertScaleAbs(probs, alpha=255.0)


def write_outputs(
    image: np.ndarray,
    preds: np.ndarray,
    prob8: np.ndarray,
    stem: Path,
    *,
    measure: bool = False,
    mm_per_px: float | None = None,
    gap_px: float | None = None,
    min_length_px: float | None = None,
) -> dict:
    """<stem>_mask.png, _prob.png, _overlay.png (and _width.png with `measure`) of an image
    (H, W, 3) uint8 and its `mask_and_prob8`; the row for predictions.json."""
    stem.parent.mkdir(parents=True, exist_ok=True)  # `sub/x` keeps the input's sub-folder
    save_png(preds * np.uint8(255), f"{stem}_mask.png", compress_level=PNG_LEVEL)
    save_png(prob8, f"{stem}_prob.png", compress_level=PNG_LEVEL)
    save_png(overlay(image, preds), f"{stem}_overlay.png", compress_level=PNG_LEVEL)
    row = {"mask": f"{stem}_mask.png", "crack_fraction": float(preds.mean())}
    if measure:
        from crackseg.measure import measure_cracks, width_overlay

        counting = {"gap_px": gap_px, "min_length_px": min_length_px}
        counting = {k: v for k, v in counting.items() if v is not None}  # else the defaults
        report = measure_cracks(preds, mm_per_px=mm_per_px, **counting)
        save_png(width_overlay(image, preds, report), f"{stem}_width.png", compress_level=PNG_LEVEL)
        row["measurements"] = report.to_dict()
    return row


_worker_predictor: Predictor | None = None  # set in each worker process by `_start_worker`


def _start_worker(predictor: Predictor, threads: int) -> None:
    global _worker_predictor
    torch.set_num_threads(threads)
    _worker_predictor = predictor


def _worker_predict(path: Path, name: str, out: Path, settings: dict) -> dict | str:
    return predict_one(_worker_predictor, path, name, out, **settings)


def _in_processes(
    predictor: Predictor, named: list[tuple[Path, str]], out: Path, settings: dict, processes: int
) -> Iterator[dict | str]:
    """`predict_one`'s outcomes in input order, computed by `processes` spawned workers that
    share this process's torch threads; pending images are dropped if the caller stops early."""
    threads = max(1, torch.get_num_threads() // processes)
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(predictor, threads))  # fmt: skip
    try:
        paths, names = zip(*named, strict=True)
        yield from pool.map(_worker_predict, paths, names, repeat(out), repeat(settings))
    finally:
        pool.shutdown(cancel_futures=True)
