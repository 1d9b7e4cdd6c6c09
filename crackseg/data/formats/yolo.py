"""YOLO segmentation datasets: the Ultralytics layout and Roboflow's YOLO export.

Ultralytics: `images/<split>/*` + `labels/<split>/*.txt`; Roboflow: `<split>/images` +
`<split>/labels` and a data.yaml with `train: ../train/images` style paths, resolved as Ultralytics
does (against `path`, and without the leading '../' when that does not exist). Each label line
is `class x1 y1 x2 y2 ...` normalised to [0, 1]; an image without a label file has no crack.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from crackseg.data.formats.yolo_labels import parse_label
from crackseg.data.io import is_image_file
from crackseg.data.types import (
    DatasetIndex,
    Item,
    Problems,
    canonical_split,
    crack_class_values,
    split_from_name,
)
from crackseg.errors import CrackSegError

SPLIT_KEYS = ("train", "val", "valid", "test")


def _read_yaml(path: Path) -> dict:
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise CrackSegError(f"{path}: cannot read ({err}). Check the file.") from None
    except yaml.YAMLError as err:
        raise CrackSegError(
            f"{path}: not valid YAML ({str(err).splitlines()[0]}). Fix it."
        ) from None
    return cfg if isinstance(cfg, dict) else {}


def find_yaml(folder: Path) -> Path | None:
    """The dataset yaml in a folder (one with train/val/test keys); data.yaml wins a tie."""
    found = [
        p
        for p in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
        if any(k in _read_yaml(p) for k in SPLIT_KEYS)
    ]
    if len(found) > 1:
        preferred = [p for p in found if p.stem == "data"]
        if len(preferred) != 1:
            names = ", ".join(p.name for p in found)
            raise CrackSegError(
                f"{folder}: several dataset yaml files ({names}). Pass one of them."
            )
        found = preferred
    return found[0] if found else None


def looks_like_yolo(folder: Path) -> bool:
    """`images/` + `labels/*.txt` at the top, or under split folders (Roboflow without its yaml)."""
    return any(
        (d / "images").is_dir() and next((d / "labels").rglob("*.txt"), None) is not None
        for d in [folder, *_subdirs(folder)]
    )


def _subdirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def load_yaml(path: Path, problems: Problems) -> DatasetIndex:
    """Index the splits a dataset yaml names; paths that point nowhere are errors."""
    cfg = _read_yaml(path)
    if not any(cfg.get(k) for k in SPLIT_KEYS):
        raise CrackSegError(f"{path}: no 'train', 'val' or 'test' entry. Is this a dataset yaml?")
    names = _names(cfg, path)
    root = _root(cfg, path, problems)
    splits: dict[str, list[Path]] = {}
    for key in SPLIT_KEYS:
        value = cfg.get(key)
        if not value:
            continue
        problems.split = canonical_split(key)
        for source in value if isinstance(value, list) else [value]:
            target = _resolve(root, path, str(source), key)
            splits.setdefault(problems.split, []).extend(_images_of(target, root, problems))
    problems.split = None
    return _index(root, splits, names, problems)


def load_folders(folder: Path, problems: Problems) -> DatasetIndex:
    """A YOLO layout without a yaml: splits from folder names, every class id counts as crack."""
    splits: dict[str, list[Path]] = {}
    if (folder / "images").is_dir():
        subs = [d for d in _subdirs(folder / "images") if split_from_name(d.name)]
        for d in subs or [folder / "images"]:
            problems.split = split_from_name(d.name) or "train"
            splits.setdefault(problems.split, []).extend(_images_of(d, folder, problems))
    for d in _subdirs(folder):
        if (d / "images").is_dir() and (d / "labels").is_dir():
            problems.split = split_from_name(d.name) or canonical_split(d.name)
            splits.setdefault(problems.split, []).extend(_images_of(d / "images", folder, problems))
    problems.split = None
    index = _index(folder, splits, None, problems)
    index.notes.append("no dataset yaml: class names unknown, every class id counts as crack")
    return index


def _names(cfg: dict, path: Path) -> list[str]:
    names = cfg.get("names")
    if isinstance(names, dict):
        try:
            return [str(names[k]) for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            raise CrackSegError(f"{path}: 'names' keys must be class ids 0, 1, ...") from None
    if isinstance(names, list):
        return [str(n) for n in names]
    try:
        return [f"class{i}" for i in range(int(cfg.get("nc", 1)))]
    except (TypeError, ValueError):
        raise CrackSegError(f"{path}: 'nc' must be a number of classes; add 'names'.") from None


def _root(cfg: dict, path: Path, problems: Problems) -> Path:
    """The dataset root: `path` (absolute, or relative to the yaml's folder or the cwd) or the
    yaml's folder."""
    value = cfg.get("path")
    if not value:
        return path.parent
    given = Path(str(value)).expanduser()
    for candidate in [given] if given.is_absolute() else [path.parent / given, Path.cwd() / given]:
        if candidate.is_dir():
            return candidate.resolve()
    problems.add(
        path,
        f"'path: {value}' does not exist",
        f"Using the yaml's folder {path.parent}; fix 'path'",
        "yaml-path",
    )
    return path.parent


def _resolve(root: Path, yaml_path: Path, value: str, key: str) -> Path:
    tries = [root / value, yaml_path.parent / value]
    if value.startswith("../"):  # Roboflow's data.yaml sits inside the root (Ultralytics' fix)
        tries += [root / value[3:], yaml_path.parent / value[3:]]
    for candidate in tries:
        if candidate.exists():
            return candidate.resolve()
    raise CrackSegError(
        f"{yaml_path}: '{key}: {value}' points nowhere (tried {tries[0]}). Fix the path; relative "
        f"paths are resolved against 'path' ({root})."
    )


def _images_of(target: Path, root: Path, problems: Problems) -> list[Path]:
    """Images in a folder (recursively), a single image, or listed in a .txt file."""
    if target.is_dir():
        return _images_in_folder(target, problems)
    if target.suffix.lower() == ".txt":
        images = []
        for n, line in enumerate(target.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            p = Path(line.strip())
            p = (
                p
                if p.is_absolute()
                else next(
                    (b / p for b in (target.parent, root) if (b / p).exists()), target.parent / p
                )
            )
            if p.exists():
                images.append(p)
            else:
                problems.add(
                    target,
                    f"listed image {line.strip()} not found",
                    "Fix the list",
                    "missing-image",
                    line=n,
                    skipped=True,
                )
        return images
    return [target] if is_image_file(target) else []


def _images_in_folder(folder: Path, problems: Problems) -> list[Path]:
    """Image files under a folder; a folder named like an image (`x.jpg/`) is a problem."""
    images = []
    for p in sorted(p for p in folder.rglob("*") if is_image_file(p)):
        if p.is_file():
            images.append(p)
        else:
            problems.add(p, "is a folder, not an image", "Rename or remove it", "unreadable-image",
                          skipped=True)  # fmt: skip
    return images


def label_path(image: Path) -> Path:
    """Ultralytics' rule: the last `images` folder in the path becomes `labels`, suffix .txt."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _index(
    root: Path, splits: dict[str, list[Path]], names: list[str] | None, problems
) -> DatasetIndex:
    crack_ids = set(crack_class_values(names)) if names else None
    index_splits: dict[str, list[Item]] = {}
    roboflow = False
    for split, images in splits.items():
        problems.split = split
        items, label_dirs = [], set()
        for image in sorted(set(images)):
            roboflow |= (
                image.parent.name == "images"
                and split_from_name(image.parent.parent.name) is not None
            )
            label = label_path(image)
            label_dirs.add(label.parent)
            if not label.exists():
                items.append(Item(image))  # no label file: an image without cracks
                continue
            polygons = parse_label(label, names, crack_ids, problems)
            if polygons is not None:
                items.append(Item(image, label=label, polygons=polygons))
        index_splits[split] = items
        stems = {label_path(i).stem for i in images}
        for d in sorted(d for d in label_dirs if d.is_dir()):
            for orphan in sorted(
                p for p in d.glob("*.txt") if p.stem not in stems and p.name != "classes.txt"
            ):
                problems.add(
                    orphan,
                    "label without image",
                    "Add its image or delete the label",
                    "label-without-image",
                    skipped=True,
                    split=split,
                )
    problems.split = None
    fmt = "roboflow-yolo" if roboflow else "ultralytics"
    return DatasetIndex(root, fmt, index_splits, names or ["crack"], problems)
