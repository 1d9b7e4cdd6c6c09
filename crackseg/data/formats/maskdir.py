"""Image + mask-file datasets, paired by file stem.

A file is a mask when a folder on its path names masks (masks, labels, gt, groundTruth, lab,
segmentation, annotations, ...: DeepCrack `train_lab`, CrackForest `groundTruth`, masonry
`*_masks`) or its stem ends in `_mask`, `_gt`, `_label`, ... (Roboflow "Semantic Segmentation
Masks" writes `x_mask.png` next to `x.jpg`, with `_classes.csv`). Failing both, a folder where
every .jpg has a .png of the same stem (CRACK500) pairs them. Splits come from folder names
(train, valid, test_img, traincrop, ...); with none, everything is 'train'. Mask values follow
`crackseg.data.io`'s rules.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

from crackseg.data.io import IMAGE_EXTS, MASK_EXTS, exif_orientation, image_size, mask_size
from crackseg.data.types import (
    DatasetIndex,
    Item,
    Problems,
    crack_class_values,
    split_from_name,
)
from crackseg.errors import CrackSegError

MASK_WORDS = {
    "mask", "masks", "label", "labels", "lab", "gt", "groundtruth", "ground", "truth",
    "annotation", "annotations", "annot", "segmentation", "segmentations",
}  # fmt: skip
MASK_SUFFIX = re.compile(r"[_\-. ](mask|gt|label|lab|seg|segmentation|annotation)$", re.IGNORECASE)
BACKGROUND_NAMES = {"background", "_background_", "unlabeled", "unlabelled", "none", "bg"}


def _is_mask_dir(name: str) -> bool:
    return bool(MASK_WORDS & set(re.split(r"[^a-z0-9]+", name.lower())))


def _split_of(rel_dirs: tuple[str, ...]) -> str | None:
    return next((s for d in rel_dirs if (s := split_from_name(d))), None)


def load_mask_folders(folder: Path, problems: Problems) -> DatasetIndex:
    """Index image + mask folders: find the files, pair them by stem, check sizes, split."""
    images, masks = _find_files(folder, problems)
    if images and not masks:
        images, masks = _same_folder_pairs(images)
    if not images:
        return DatasetIndex(folder, "mask-folders", {}, ["crack"], problems)
    if not masks:
        raise CrackSegError(
            f"{folder}: {sum(map(len, images.values()))} images but no labels or masks found. "
            "Expected a dataset yaml, _annotations.coco.json, or mask files in a 'masks' folder "
            "(or named '<image stem>_mask.png')."
        )
    names, crack_values, fmt = _classes_csv(folder)
    splits = _pair(images, masks, crack_values, problems)
    _report_masks_without_images(images, masks, problems)
    index = DatasetIndex(folder, fmt, dict(splits), names, problems)
    if all(key[0] is None for key in images):
        index.notes.append(
            f"no split folders: all {len(splits['train'])} images are in 'train'; make a "
            "validation split by source photo, not by patch"
        )
    return index


def _find_files(folder: Path, problems: Problems):
    """(split, stem) -> image files and -> mask files, told apart by folder and file names; a
    folder named like an image (`x.jpg/`) is a problem."""
    found = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in (*IMAGE_EXTS, *MASK_EXTS, ".mat") and not p.name.startswith(".")
    )
    files = [p for p in found if p.is_file()]
    for p in (p for p in found if not p.is_file()):
        split = _split_of(p.relative_to(folder).parts[:-1]) or "train"
        problems.add(p, "is a folder, not an image", "Rename or remove it", "unreadable-image",
                     skipped=True, split=split)  # fmt: skip
    images: dict[tuple, list[Path]] = defaultdict(list)
    masks: dict[tuple, list[Path]] = defaultdict(list)
    for p in files:
        rel_dirs = p.relative_to(folder).parts[:-1]
        is_mask = (
            p.suffix.lower() == ".mat"
            or any(_is_mask_dir(d) for d in rel_dirs)
            or bool(MASK_SUFFIX.search(p.stem))
        )
        key = (_split_of(rel_dirs), MASK_SUFFIX.sub("", p.stem).lower())
        (masks if is_mask else images)[key].append(p)
    return images, masks


def _pair(images, masks, crack_values, problems: Problems) -> dict[str, list[Item]]:
    """One Item per image with its one mask; ambiguous pairs and wrong sizes are problems."""
    splits: dict[str, list[Item]] = defaultdict(list)
    for key, found in sorted(images.items(), key=lambda kv: str(kv[0])):
        split = problems.split = key[0] or "train"
        mask_files = masks.get(key, [])
        if len(found) > 1 or len(mask_files) > 1:
            dupes = ", ".join(str(p) for p in [*found, *mask_files])
            problems.add(
                found[0],
                f"ambiguous pairing: {dupes}",
                "Give each image one mask with a matching stem",
                "ambiguous-pair",
                skipped=True,
            )
            continue
        if not mask_files:
            problems.add(
                found[0],
                "image has no mask: used as a crack-free image",
                "Add its mask if it has cracks",
                "image-without-mask",
            )
            splits[split].append(Item(found[0]))
            continue
        item = Item(
            found[0], label=mask_files[0], mask_file=mask_files[0], crack_values=crack_values
        )
        if check_image_mask_sizes(item, problems):
            splits[split].append(item)
    problems.split = None
    return splits


def _report_masks_without_images(images, masks, problems: Problems) -> None:
    for key, mask_files in sorted(masks.items(), key=lambda kv: str(kv[0])):
        if key not in images:
            for m in mask_files:
                problems.add(
                    m,
                    "mask without image",
                    "Add its image or delete the mask",
                    "label-without-image",
                    skipped=True,
                    split=key[0] or "train",
                )


def check_image_mask_sizes(item: Item, problems: Problems) -> bool:
    """Header-only size check of an image against its mask; False (and a problem) if unequal.

    A mask saved at the raw orientation of an EXIF-rotated photo is the usual cause: it is named.
    """
    sizes = []
    for path, read in ((item.image, image_size), (item.mask_file, mask_size)):
        try:
            sizes.append(read(path))
        except CrackSegError as err:
            message = str(err).removeprefix(f"{path}: ").rsplit(". ", 1)[0]
            problems.add(path, message, "Fix or remove the file", "unreadable-file", skipped=True)
            return False
    (ih, iw), (mh, mw) = sizes
    if (ih, iw) == (mh, mw):
        return True
    rotated = (mh, mw) == (iw, ih) and exif_orientation(item.image) in (5, 6, 7, 8)
    problems.add(
        item.mask_file,
        f"mask is {mw}x{mh} but its image {item.image.name} is {iw}x{ih}"
        + (
            " after its EXIF rotation (the mask matches the photo's raw, unrotated pixels)"
            if rotated
            else ""
        ),  # fmt: skip
        "Save masks at the EXIF-rotated size (e.g. re-export the photos with the rotation applied)"
        if rotated
        else "Export masks at the image size",
        "mask-size-mismatch",
        skipped=True,
    )
    return False


def _same_folder_pairs(files: dict[tuple, list[Path]]):
    """CRACK500-style: x.jpg and x.png side by side, for every .jpg of the folder."""
    images, masks = defaultdict(list), defaultdict(list)
    for key, paths in files.items():
        jpgs = [p for p in paths if p.suffix.lower() in (".jpg", ".jpeg")]
        pngs = [p for p in paths if p.suffix.lower() == ".png"]
        if len(jpgs) == 1 and len(pngs) == 1:
            images[key].append(jpgs[0])
            masks[key].append(pngs[0])
        else:
            images[key].extend(paths)
    return (images, masks) if masks else (files, {})


def _classes_csv(folder: Path) -> tuple[list[str], tuple[int, ...] | None, str]:
    """Roboflow's `_classes.csv` ('Pixel Value, Class'): class names and the crack pixel values."""
    found = sorted(folder.rglob("_classes.csv"))
    if not found:
        return ["crack"], None, "mask-folders"
    try:
        with found[0].open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r]
        pairs = [(int(r[0]), r[1].strip()) for r in rows[1:]]
    except (OSError, ValueError, IndexError) as err:
        raise CrackSegError(
            f"{found[0]}: cannot read classes ({err}); expected 'Pixel Value, Class' rows."
        ) from None
    classes = [(v, n) for v, n in pairs if n.lower() not in BACKGROUND_NAMES]
    names = [n for _, n in classes] or ["crack"]
    crack = tuple(classes[i][0] for i in crack_class_values(names)) if classes else None
    return names, crack, "roboflow-masks"
