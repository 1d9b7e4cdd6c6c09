"""The dataset index's types: Items, the Problems met while reading, and splits of Items.

A leaf of the data package: the format readers (`crackseg.data.formats`) build these, the
dispatcher (`crackseg.data.index`), the torch dataset and the inspector read them; nothing here
imports a reader. An Item is one image and where its crack mask comes from (polygons, a mask
file, COCO RLE or nothing: a crack-free image). Nothing is decoded until `load_image` /
`load_mask` is called, and Items are small and picklable so DataLoader workers can carry them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crackseg.conventions import CRACK, IGNORE_INDEX
from crackseg.data.io import image_size, read_image, read_mask, read_mask_values
from crackseg.data.rasterize import checked_rle_decode, fill_polygons
from crackseg.errors import CrackSegError

CANONICAL_SPLITS = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}  # fmt: skip
_SPLIT_PREFIX = re.compile(r"^(training|train|validation|valid|val|testing|test)")


def canonical_split(name: str) -> str:
    """'valid' and 'validation' -> 'val', 'training' -> 'train'; unknown names are kept."""
    return CANONICAL_SPLITS.get(name.lower(), name.lower())


def split_from_name(name: str) -> str | None:
    """The split a folder name starts with ('train_img' -> 'train', 'valcrop' -> 'val'), if any."""
    m = _SPLIT_PREFIX.match(name.lower())
    return canonical_split(m.group(1)) if m else None


def crack_class_values(names: list[str]) -> list[int]:
    """Which class ids are crack: those named '*crack*' if any are, else all of them."""
    named = [i for i, n in enumerate(names) if "crack" in str(n).lower()]
    return named or list(range(len(names)))


@dataclass(frozen=True)
class Problem:
    """Something wrong in the user's files: where, what, what to do, was an item left out."""

    file: str
    message: str
    action: str
    kind: str
    line: int | None = None
    skipped: bool = False
    split: str | None = None

    def __str__(self) -> str:
        verdict = " (skipped)" if self.skipped else ""
        return f"{self.where}: {self.message}{verdict}. {self.action}"

    @property
    def where(self) -> str:
        """file:line, or the file alone."""
        return f"{self.file}:{self.line}" if self.line else self.file


class Problems(list):
    """Problems met while indexing; with strict=True the first one is raised as CrackSegError.

    `split` is the split being read, recorded on every problem added (so a run over some splits
    reports only theirs); readers set it before reading each split."""

    def __init__(self, strict: bool = False):
        super().__init__()
        self.strict = strict
        self.split: str | None = None

    def add(self, file, message, action, kind, *, line=None, skipped=False, split=None) -> None:
        split = split or self.split
        problem = Problem(str(file), message, action, kind, line, skipped, split)
        if self.strict:
            raise CrackSegError(f"{problem} (strict mode: every problem is an error)")
        self.append(problem)


@dataclass(frozen=True)
class Item:
    """One image and the source of its crack mask (all optional: none means no crack)."""

    image: Path
    label: Path | None = None  # the annotation file (txt, mask, json) named in messages
    polygons: tuple = ()  # (value, (N, 2) float32 normalised xy); 1 crack, 0 other, 255 ignore
    rles: tuple = ()  # (value, COCO RLE dict at the image's resolution)
    mask_file: Path | None = None
    crack_values: tuple[int, ...] | None = None  # pixel values that mean crack (from _classes.csv)

    def load_image(self) -> np.ndarray:
        return read_image(self.image)  # (H, W, 3) uint8

    def load_mask(self, hw: tuple[int, int] | None = None, *, strict: bool = False) -> np.ndarray:
        """The full-resolution uint8 (H, W) mask in {0, 1, 255}; hw checks/sets the image size."""
        if self.mask_file is not None:
            return self._mask_from_file(hw, strict)
        hw = tuple(hw) if hw is not None else image_size(self.image)
        mask = np.zeros(hw, np.uint8)  # (H, W)
        for value in (CRACK, IGNORE_INDEX):  # crack first, ignore on top; others stay background
            fill_polygons([p for p in self.polygons if p[0] == value], hw, mask)
            for _, rle in (r for r in self.rles if r[0] == value):
                region = checked_rle_decode(rle, str(self.label))
                if region.shape != hw:
                    raise CrackSegError(
                        f"{self.label}: RLE for {self.image.name} is {region.shape[1]}x"
                        f"{region.shape[0]} but the image is {hw[1]}x{hw[0]}. Re-export it."
                    )
                mask[region > 0] = value
        return mask

    def _mask_from_file(self, hw: tuple[int, int] | None, strict: bool) -> np.ndarray:
        if self.crack_values is not None:
            mask = np.isin(read_mask_values(self.mask_file), self.crack_values).astype(np.uint8)
        else:
            mask = read_mask(self.mask_file, strict=strict)
        if hw is not None and mask.shape != tuple(hw):
            raise CrackSegError(
                f"{self.mask_file}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{self.image.name} is {hw[1]}x{hw[0]}. Export masks at the image size."
            )
        return mask

    @property
    def has_label(self) -> bool:
        return self.label is not None


@dataclass
class DatasetIndex:
    """A dataset found on disk: its format, splits of Items, class names and problems."""

    root: Path
    format: str
    splits: dict[str, list[Item]]
    class_names: list[str]
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Item]:
        """The items of a split ('valid' works for 'val'); a missing split lists the others and,
        when items were skipped, why (the first problem of that split)."""
        key = canonical_split(name)
        if key not in self.splits:
            have = ", ".join(f"{k} ({len(v)})" for k, v in self.splits.items()) or "none"
            raise CrackSegError(
                f"{self.root}: no '{name}' split in this {self.format} dataset; splits: {have}"
                f"{self.skipped_because(key)}. Pick one of those, or add the split to the dataset."
            )
        return self.splits[key]

    def skipped_because(self, split: str) -> str:
        """'; N items skipped (kinds), first: ...' for a split, or '' when none was skipped."""
        skipped = [p for p in self.problems if p.skipped and p.split in (split, None)]
        if not skipped:
            return ""
        kinds = ", ".join(f"{k} {n}" for k, n in Counter(p.kind for p in skipped).items())
        return f"; {len(skipped)} items skipped ({kinds}), first: {skipped[0]}"

    def skipped(self) -> Counter:
        """How many items were left out, by kind of problem."""
        return Counter(p.kind for p in self.problems if p.skipped)

    def summary(self, max_problems: int = 10) -> str:
        lines = [f"{self.root}: {self.format} dataset, classes {self.class_names}"]
        lines += [f"  {name}: {len(items)} images" for name, items in self.splits.items()]
        lines += [f"  note: {note}" for note in self.notes]
        if self.problems:
            kinds = Counter(p.kind for p in self.problems)
            lines.append(
                f"  {len(self.problems)} problems: "
                + ", ".join(f"{k} {n}" for k, n in kinds.items())
            )
            lines += [f"    {p}" for p in self.problems[:max_problems]]
            if len(self.problems) > max_problems:
                lines.append(
                    f"    ... {len(self.problems) - max_problems} more (crackseg data inspect)"
                )
        return "\n".join(lines)
