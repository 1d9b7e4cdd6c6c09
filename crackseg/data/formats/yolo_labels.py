"""YOLO segmentation label files: `class x1 y1 x2 y2 ...` per line, normalised to [0, 1].

A malformed line (not numbers, NaN/inf, odd count, a detection box, < 3 points) drops the whole
image, so a half-read label never trains as background; unknown class ids are filled as ignore
(255); coordinates outside [0, 1] are clipped with a warning (an error with strict=True). Every
one of these is a recorded Problem naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crackseg.conventions import BACKGROUND, CRACK, IGNORE_INDEX
from crackseg.data.types import Problems

_CLIP_TOLERANCE = 1e-3  # float noise from exporters (1.0000001) is clipped without a warning


class _BadLine(ValueError):
    """A label line that cannot be a polygon; the message says why."""


def parse_label(path: Path, names, crack_ids, problems: Problems) -> tuple | None:
    """Polygons of one label file, or None (and a problem naming the line) if it is malformed."""
    text = _read_text(path, problems)
    if text is None:
        return None
    polygons, clipped = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.split():
            continue
        try:
            cls, coords = parse_line(line)
        except _BadLine as err:
            return _malformed(problems, path, n, str(err))
        if _out_of_range(coords):
            if problems.strict:
                problems.add(
                    path,
                    f"coordinates outside [0, 1] ({coords.min():.3g}..{coords.max():.3g})",
                    "Normalise coordinates by the image size",
                    "coords-out-of-range",
                    line=n,
                )
            clipped.append(n)
        value = _class_value(cls, names, crack_ids, path, n, problems)
        polygons.append((value, np.clip(coords, 0, 1).astype(np.float32).reshape(-1, 2)))
    _report_clipped(path, clipped, problems)
    return tuple(polygons)


def parse_line(line: str) -> tuple[int, np.ndarray]:
    """'class x1 y1 ...' -> (class id, (2N,) float64 coordinates); _BadLine says what is wrong."""
    tokens = line.split()
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if not _is_number(t))
        raise _BadLine(f"'{bad}' is not a number") from None
    if not np.isfinite(values).all():
        bad = next(t for t, v in zip(tokens, values, strict=True) if not np.isfinite(v))
        raise _BadLine(f"'{bad}' is not a finite number")
    cls, coords = values[0], values[1:]
    if cls != int(cls) or len(coords) == 0:
        raise _BadLine("expected 'class x1 y1 x2 y2 ...'")
    if len(coords) % 2:
        raise _BadLine(f"odd number of coordinates ({len(coords)})")
    if len(coords) == 4:
        raise _BadLine("4 numbers after the class: a YOLO detection box, not a polygon")
    if len(coords) < 6:
        raise _BadLine("fewer than 3 points")
    return int(cls), coords


def _read_text(path: Path, problems: Problems) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        problems.add(
            path,
            f"cannot read label ({err})",
            "Fix or delete the file",
            "unreadable-file",
            skipped=True,
        )
        return None


def _out_of_range(coords: np.ndarray) -> bool:
    return bool(coords.min() < -_CLIP_TOLERANCE or coords.max() > 1 + _CLIP_TOLERANCE)


def _class_value(cls: int, names, crack_ids, path: Path, line: int, problems: Problems) -> int:
    """The mask value a class id fills: crack, background, or ignore for an unknown id."""
    if names is not None and not 0 <= cls < len(names):
        problems.add(
            path,
            f"class id {cls} is not in names ({_known(names)}); filled as ignore ({IGNORE_INDEX})",
            "Fix the class id or the yaml's names",
            "unknown-class",
            line=line,
        )
        return IGNORE_INDEX
    return CRACK if crack_ids is None or cls in crack_ids else BACKGROUND


def _known(names) -> str:
    return f"0..{len(names) - 1}" if names else "the yaml's names list is empty"


def _report_clipped(path: Path, clipped: list[int], problems: Problems) -> None:
    if not clipped:
        return
    lines = ", ".join(map(str, clipped[:5])) + (" ..." if len(clipped) > 5 else "")
    problems.add(
        path,
        f"coordinates outside [0, 1] on line(s) {lines}: clipped",
        "Normalise coordinates by the image size (--strict makes this an error)",
        "coords-out-of-range",
        line=clipped[0],
    )


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def _malformed(problems: Problems, path: Path, line: int, message: str) -> None:
    problems.add(
        path,
        message,
        "Fix the line, or delete the label file to drop this image",
        "malformed-label",
        line=line,
        skipped=True,
    )
    return None
