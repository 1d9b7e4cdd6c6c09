"""`crackseg predict`: masks, probabilities and overlays for files, folders and globs.

A batch never stops at one bad image: with `on_skip`, each unreadable file (empty, truncated, not
an image, a decompression bomb, a folder with an image's name) is reported and skipped, and the
rest is written as usual. With `processes` > 1, images are shared out to that many processes
(spawned, each with its own copy of the predictor and an equal share of the torch threads); the
outputs are the same files with the same bytes.
"""

from __future__ import annotations

import glob
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
from crackseg.data.io import is_image_file
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor
from crackseg.visualize import overlay, save_png

PNG_LEVEL = 1  # zlib level of the written PNGs: a 12 MP overlay takes 2 s at 1, 6.9 s at 6 (+16 %)


def expand_inputs(inputs: list[str], exclude: str | Path | None = None) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths; unmatched inputs
    are an error that names them. A folder named like an image (`x.jpg/`) inside a searched folder
    is listed too, so that it is reported rather than silently passed over. Images under
    `exclude` (the --out folder) are left out of folder walks and glob matches when that folder
    lies inside the searched one, so a second run does not predict on the first one's PNGs."""
    return find_inputs(inputs, exclude)[0]


def find_inputs(inputs: list[str], exclude: str | Path | None = None) -> tuple[list[Path], str]:
    """`expand_inputs` and the line a command prints about what it left out under `exclude`
    ("" when nothing was), from one walk of the folders."""
    pairs, left_out = _expand(inputs, exclude)
    note = f"left out {left_out} images under --out {exclude} (an earlier run's outputs)"
    return [path for path, _ in pairs], note if left_out else ""


def _expand(inputs: list[str], exclude: str | Path | None = None) -> tuple[list, int]:
    """(image path, its name for outputs) per image, and how many images under `exclude` were
    left out: a folder's images keep their sub-folder relative to it (`a/x`), a file or glob
    match is named by its stem."""
    paths: list[tuple[Path, Path]] = []
    left_out = 0
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(
                q for q in p.rglob("*") if is_image_file(q) and (q.is_file() or q.is_dir())
            )
            found = [(q, q.relative_to(p).with_suffix("")) for q in found
                     if q.is_file() or not _has_images(q)]  # fmt: skip
            if not found and is_image_file(p):
                found = [(p, Path(p.stem))]  # `x.jpg` given by name is a folder: reported when read
            if not found:
                raise CrackSegError(f"{spec}: the folder holds no image files")
            kept = _outside(found, exclude, p, spec)
            left_out, found = left_out + len(found) - len(kept), kept
        elif p.is_file():
            found = [(p, Path(p.stem))]
        else:
            matches = sorted(Path(q) for q in glob.glob(spec, recursive=True) if Path(q).is_file())
            found = [(q, Path(q.stem)) for q in matches]
            if found:
                kept = _outside(found, exclude, _glob_root(spec), spec)
                left_out, found = left_out + len(found) - len(kept), kept
        if not found:
            raise CrackSegError(f"{spec}: no such image file, folder or matching pattern")
        paths += found
    return paths, left_out


def _glob_root(spec: str) -> Path:
    """The folder a glob pattern searches: its parts before the first wildcard."""
    fixed = []
    for part in Path(spec).parts:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _outside(found: list, exclude: str | Path | None, searched: Path, spec: str) -> list:
    """`found` less the paths under `exclude`, when `exclude` is a sub-folder of `searched` (an
    --out folder equal to or above the searched folder excludes nothing: it holds the inputs)."""
    if exclude is None:
        return found
    out, root = Path(exclude).resolve(), searched.resolve()
    if out == root or not out.is_relative_to(root):
        return found
    kept = [(q, name) for q, name in found if not q.resolve().is_relative_to(out)]
    if not kept:
        raise CrackSegError(f"{spec}: its only images are earlier outputs in --out {exclude}")
    return kept


def output_names(inputs: list[str], exclude: str | Path | None = None) -> list[tuple[Path, str]]:
    """(image path, unique output name) per image, so that no output overwrites another.

    Names are `x` for a file, `sub/x` for an image in a sub-folder of a folder input. Where
    two different images would still share a name (`x.jpg` and `x.png`, or `a/x.jpg` and
    `b/x.jpg` given as files), each gets its extension (`x_jpg`), then a number (`x_jpg-2`).
    The same file given twice is predicted once."""
    pairs, seen = [], set()
    for path, name in _expand(inputs, exclude)[0]:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            pairs.append((path, name.as_posix()))
    counts: dict[str, int] = {}
    for _, name in pairs:
        counts[name.casefold()] = counts.get(name.casefold(), 0) + 1
    named, taken = [], set()
    for path, name in pairs:
        if counts[name.casefold()] > 1:
            name = f"{name}_{path.suffix.lstrip('.')}"
        unique, n = name, 1
        while unique.casefold() in taken:
            n += 1
            unique = f"{name}-{n}"
        taken.add(unique.casefold())
        named.append((path, unique))
    return named


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
    written when every image failed), in input order whatever `processes` is."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CrackSegError(f"--out {out}: is a file, not a folder. Choose a folder.")
    out.mkdir(parents=True, exist_ok=True)
    named = output_names(inputs, exclude=out)
    settings = {"threshold": threshold, "measure": measure, "mm_per_px": mm_per_px,
                "gap_px": gap_px, "min_length_px": min_length_px}  # fmt: skip
    if processes > 1 and len(named) > 1:
        outcomes = _in_processes(predictor, named, out, settings, processes)
    else:
        outcomes = (predict_one(predictor, path, name, out, **settings) for path, name in named)
    results = []
    for (path, _), outcome in zip(named, outcomes, strict=True):
        if isinstance(outcome, str):  # the image could not be read
            if on_skip is None:
                raise CrackSegError(outcome)
            on_skip(path, outcome)
            continue
        results.append(outcome)
    if results:
        (out / "predictions.json").write_text(json.dumps(results, indent=2))
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
