"""Roboflow COCO segmentation exports: `<split>/_annotations.coco.json` next to the images.

Segmentations may be polygon lists (absolute pixel coordinates) or RLE (list or compressed
counts). Categories are mapped by name; Roboflow's super-category (id 0, the parent of the real
classes, never used by an annotation) is dropped. Images listed without annotations have no crack.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from crackseg.conventions import BACKGROUND, CRACK, IGNORE_INDEX
from crackseg.data.io import image_size, is_image_file
from crackseg.data.types import (
    DatasetIndex,
    Item,
    Problems,
    canonical_split,
    crack_class_values,
    split_from_name,
)
from crackseg.errors import CrackSegError

ANNOTATION_FILE = "_annotations.coco.json"


def find_jsons(folder: Path) -> list[Path]:
    """Roboflow's annotation files: in the folder itself or one level down (one per split)."""
    return sorted([*folder.glob(ANNOTATION_FILE), *folder.glob(f"*/{ANNOTATION_FILE}")])


def load_coco(folder: Path, problems: Problems, files: list[Path] | None = None) -> DatasetIndex:
    files = files or find_jsons(folder)
    splits: dict[str, list[Item]] = {}
    names: list[str] = []
    for path in files:
        split = split_from_name(path.parent.name) or (
            split_from_name(path.stem) or canonical_split("train")
        )
        problems.split = split
        try:
            file_names, items = _load_split(path, problems, split)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CrackSegError(
                f"{path}: unexpected COCO structure ({type(err).__name__}: {err}). Re-export it."
            ) from None
        names = names or file_names
        splits.setdefault(split, []).extend(items)
    problems.split = None
    return DatasetIndex(folder, "roboflow-coco", splits, names, problems)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise CrackSegError(f"{path}: cannot read ({err}). Check the file.") from None
    except json.JSONDecodeError as err:
        raise CrackSegError(
            f"{path}:{err.lineno}: not valid JSON ({err.msg}). Re-export the dataset."
        ) from None
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise CrackSegError(f"{path}: not a COCO file (no 'images'/'annotations'). Re-export it.")
    return data


def category_names(categories: list[dict], used: set[int]) -> dict[int, str]:
    """id -> name, without Roboflow's super-category (a parent of other classes, never used)."""
    parents = {c.get("supercategory") for c in categories}
    return {
        int(c["id"]): str(c["name"])
        for c in categories
        if not (c["name"] in parents and int(c["id"]) not in used and len(categories) > 1)
    }


def _load_split(path: Path, problems: Problems, split: str) -> tuple[list[str], list[Item]]:
    data = _read_json(path)
    anns_by_image: dict[int, list[dict]] = defaultdict(list)
    for ann in data["annotations"]:
        anns_by_image[ann.get("image_id")].append(ann)
    used = {int(a["category_id"]) for a in data["annotations"] if "category_id" in a}
    cats = category_names(data.get("categories", []), used)
    ids = sorted(cats)
    names = [cats[i] for i in ids]
    crack = {ids[i] for i in crack_class_values(names)}
    items, listed = [], set()
    for img in data["images"]:
        image = path.parent / img["file_name"]
        listed.add(image.name)
        if not image.is_file():
            problems.add(
                path,
                f"image {img['file_name']} (id {img['id']}) is listed but missing",
                "Add the image or re-export",
                "label-without-image",
                skipped=True,
                split=split,
            )
            continue
        item = _item(path, image, img, anns_by_image.get(img["id"], []), cats, crack, problems)
        if item is not None:
            items.append(item)
    for extra in sorted(p for p in path.parent.iterdir() if is_image_file(p)):
        if extra.name not in listed:
            problems.add(
                extra,
                f"image not listed in {path.name}, so its labels are unknown",
                "Re-export the dataset, or delete the image",
                "image-not-in-annotations",
                skipped=True,
                split=split,
            )
    return names, items


def _item(path, image, img, anns, cats, crack, problems) -> Item | None:
    """One image's polygons (normalised by the json's width/height) and RLEs; None if malformed."""
    w, h = float(img.get("width") or 0), float(img.get("height") or 0)
    polygons, rles = [], []
    for ann in anns:
        where = f"annotation id {ann.get('id')} of {img['file_name']}"
        cat = ann.get("category_id")
        if cat not in cats:
            problems.add(
                path,
                f"{where}: category id {cat} is not in categories; filled as ignore "
                f"({IGNORE_INDEX})",
                "Fix the category",
                "unknown-class",
            )
            value = IGNORE_INDEX
        else:
            value = CRACK if cat in crack else BACKGROUND
        seg = ann.get("segmentation")
        if isinstance(seg, dict):
            rles.append((value, seg))
            continue
        if not seg or not isinstance(seg, list):
            return _bad(problems, path, f"{where} has no segmentation (a detection export?)")
        if not (np.isfinite(w) and np.isfinite(h) and w > 0 and h > 0):
            return _bad(problems, path, f"image {img['file_name']} has no valid width/height")
        if (actual := _actual_size(image)) not in (None, (h, w)):
            return _bad(
                problems,
                path,
                f"image {img['file_name']} is {actual[1]}x{actual[0]} but the json says "
                f"{w:.0f}x{h:.0f}: its polygons would be scaled wrong",
            )
        for poly in seg:
            if len(poly) % 2:
                return _bad(problems, path, f"{where}: odd number of coordinates ({len(poly)})")
            if len(poly) < 6:
                return _bad(problems, path, f"{where}: polygon with fewer than 3 points")
            xy = np.asarray(poly, np.float64).reshape(-1, 2) / (w, h)
            if not np.isfinite(xy).all():
                return _bad(problems, path, f"{where}: a coordinate is not a finite number")
            if xy.min() < -1e-3 or xy.max() > 1 + 1e-3:
                problems.add(
                    path,
                    f"{where}: coordinates outside the {w:.0f}x{h:.0f} image: clipped",
                    "Fix the annotation (--strict makes this an error)",
                    "coords-out-of-range",
                )
            polygons.append((value, np.clip(xy, 0, 1).astype(np.float32)))
    return Item(image, label=path, polygons=tuple(polygons), rles=tuple(rles))


def _actual_size(image: Path) -> tuple[float, float] | None:
    """(H, W) from the image header, or None when unreadable (the preflight reports that)."""
    try:
        return tuple(float(v) for v in image_size(image))
    except CrackSegError:
        return None


def _bad(problems: Problems, path: Path, message: str) -> None:
    problems.add(path, message, "Fix or re-export the annotation", "malformed-label", skipped=True)
    return None
