"""Carve a validation split out of train when a dataset ships none, grouped by source photo.

Augmented or tiled copies of one photo must land on the same side, or validation leaks:
the rule for "same source photo" is `crackseg.data.sources.source_group`.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from crackseg.data.sources import source_group
from crackseg.data.types import DatasetIndex


def with_holdout(index: DatasetIndex, fraction: float = 0.1, *, seed: int = 0) -> DatasetIndex:
    """A copy of `index` whose 'val' split holds about `fraction` of train's images, taken as whole
    source photos in a stable hashed order (never more than twice the fraction), unless the
    dataset already has a 'val' split."""
    if "val" in index.splits or not index.splits.get("train"):
        return index
    groups: dict[str, list] = {}
    for item in index.splits["train"]:
        groups.setdefault(source_group(item.image.stem), []).append(item)
    total = len(index.splits["train"])
    order = sorted(groups, key=lambda g: hashlib.sha1(f"{seed}:{g}".encode()).digest())
    held: set[str] = set()
    count = 0
    for group in order:
        if count >= fraction * total:
            break
        if count + len(groups[group]) <= 2 * fraction * total:
            held.add(group)
            count += len(groups[group])
    if not held or len(held) == len(groups):  # nothing fits: keep the dataset as it is
        return index
    train = [i for g in groups if g not in held for i in groups[g]]
    val = [i for g in order if g in held for i in groups[g]]
    note = (f"no 'val' split: held out {len(val)} of {total} train images ({len(held)} of "
            f"{len(groups)} source photos) for validation")  # fmt: skip
    return replace(index, splits={**index.splits, "train": train, "val": val},
                   notes=[*index.notes, note])  # fmt: skip
