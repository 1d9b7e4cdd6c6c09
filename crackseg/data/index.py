"""Which format is this dataset? The one dispatcher: detect the format, call its reader.

Imports point one way: index -> formats/* -> types -> io, rasterize. The readers never come back
here; they build `crackseg.data.types` objects.
"""

from __future__ import annotations

from pathlib import Path

from crackseg.data.formats import coco, maskdir, yolo
from crackseg.data.types import DatasetIndex, Problems
from crackseg.errors import CrackSegError


def load_index(path: str | Path, *, strict: bool = False) -> DatasetIndex:
    """Detect the format of a folder or .yaml/.json file and index it (see the format modules)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CrackSegError(f"{path}: no such file or folder. Check the dataset path.")
    problems = Problems(strict)
    index = _read_file(path, problems) if path.is_file() else _read_folder(path, problems)
    if not any(index.splits.values()):
        skipped = (
            f" ({len(index.problems)} problems, first: {index.problems[0]})"
            if index.problems
            else ""
        )
        raise CrackSegError(
            f"{path}: empty dataset, no usable images found{skipped}. Expected an Ultralytics/"
            "Roboflow YOLO yaml, Roboflow COCO (_annotations.coco.json) or image + mask folders."
        )
    return index


def _read_file(path: Path, problems: Problems) -> DatasetIndex:
    """A dataset named by its yaml (YOLO) or its COCO json."""
    if path.suffix.lower() in (".yaml", ".yml"):
        return yolo.load_yaml(path, problems)
    if path.suffix.lower() == ".json":
        return coco.load_coco(path.parent, problems, files=[path])
    raise CrackSegError(
        f"{path}: expected a dataset folder, a .yaml (Ultralytics/Roboflow YOLO) or a "
        "COCO .json file."
    )


def _read_folder(path: Path, problems: Problems) -> DatasetIndex:
    """A folder: its dataset yaml, COCO jsons, a YOLO layout, or else image + mask folders."""
    if (found := yolo.find_yaml(path)) is not None:
        return yolo.load_yaml(found, problems)
    if coco.find_jsons(path):
        return coco.load_coco(path, problems)
    if yolo.looks_like_yolo(path):
        return yolo.load_folders(path, problems)
    return maskdir.load_mask_folders(path, problems)
