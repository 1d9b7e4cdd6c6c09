"""YOLO segmentation label files: `class x1 y1 x2 y2 ...` per line, normalised to [0, 1].

A malformed line (not numbers, odd count, a detection box, < 3 points) drops the whole image, so a
half-read label never trains as background; unknown class ids are filled as ignore (255);
coordinates outside [0, 1] are clipped with a warning (an error with strict=True).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crackseg.data.index import Problems

_CLIP_TOLERANCE = 1e-3  # float noise from exporters (1.0000001) is clipped without a warning


def parse_label(path: Path, names, crack_ids, problems: Problems) -> tuple | None:
    """Polygons of one label file, or None (and a problem naming the line) if it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        problems.add(
            path,
            f"cannot read label ({err})",
            "Fix or delete the file",
            "unreadable-file",
            skipped=True,
        )
        return None
    polygons, clipped = [], []
    for n, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            values = np.array(tokens, dtype=np.float64)
        except ValueError:
            bad = next(t for t in tokens if not _is_number(t))
            return _malformed(problems, path, n, f"'{bad}' is not a number")
        cls, coords = values[0], values[1:]
        if cls != int(cls) or len(coords) == 0:
            return _malformed(problems, path, n, "expected 'class x1 y1 x2 y2 ...'")
        if len(coords) % 2:
            return _malformed(problems, path, n, f"odd number of coordinates ({len(coords)})")
        if len(coords) == 4:
            return _malformed(
                problems, path, n, "4 numbers after the class: a YOLO detection box, not a polygon"
            )
        if len(coords) < 6:
            return _malformed(problems, path, n, "fewer than 3 points")
        if coords.min() < -_CLIP_TOLERANCE or coords.max() > 1 + _CLIP_TOLERANCE:
            if problems.strict:
                problems.add(
                    path,
                    f"coordinates outside [0, 1] ({coords.min():.3g}..{coords.max():.3g})",
                    "Normalise coordinates by the image size",
                    "coords-out-of-range",
                    line=n,
                )
            clipped.append(n)
        cls = int(cls)
        if names is not None and not 0 <= cls < len(names):
            problems.add(
                path,
                f"class id {cls} is not in names (0..{len(names) - 1}); filled as ignore (255)",
                "Fix the class id or the yaml's names",
                "unknown-class",
                line=n,
            )
            value = 255
        else:
            value = 1 if crack_ids is None or cls in crack_ids else 0
        polygons.append((value, np.clip(coords, 0, 1).astype(np.float32).reshape(-1, 2)))
    if clipped:
        lines = ", ".join(map(str, clipped[:5])) + (" ..." if len(clipped) > 5 else "")
        problems.add(
            path,
            f"coordinates outside [0, 1] on line(s) {lines}: clipped",
            "Normalise coordinates by the image size (--strict makes this an error)",
            "coords-out-of-range",
            line=clipped[0],
        )
    return tuple(polygons)


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
