"""Which source photo a file comes from: one rule for the hold-out split and the inspector.

Roboflow names augmented copies `<source>_jpg.rf.<md5>` (or `<source>.rf.<md5>`): the source is
the name before `.rf.`, without the `_jpg`/`.png`-style extension Roboflow folds into it, so
`IMG_12_jpg.rf.<hash>` and `IMG_12.rf.<hash>` are copies of one photo `IMG_12`. Patch sets name
tiles `<photo>_<row>_<col>`.
"""

from __future__ import annotations

import re

_ROBOFLOW = re.compile(
    r"^(.+?)(?:[._-](?:jpg|jpeg|png|bmp|tif|tiff|webp))?\.rf\.[0-9a-f]{32}$", re.I
)
_TILE = re.compile(r"^(.+?)_\d+_\d+$")


def roboflow_source(stem: str) -> str | None:
    """The source photo of a Roboflow copy (`IMG_12_jpg.rf.<md5>` -> 'IMG_12'), or None."""
    match = _ROBOFLOW.match(stem)
    return match.group(1) if match else None


def source_group(stem: str) -> str:
    """The source photo a file name comes from: Roboflow's, else the tile's photo, else the stem."""
    if (source := roboflow_source(stem)) is not None:
        return source
    match = _TILE.match(stem)
    return match.group(1) if match else stem
