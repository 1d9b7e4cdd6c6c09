"""Fixture builders for the data tests: tiny datasets of every format, written into tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SQUARE = [0.25, 0.25, 0.75, 0.25, 0.75, 0.75, 0.25, 0.75]  # normalised x, y pairs
SQUARE_PIXELS_100 = 51 * 51  # pixels 25..75 on a 100 px image (vertex pixel = floor(x * W))


def write_image(path: Path, hw=(100, 100), seed=0, mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


def write_label(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def square_line(cls=0, coords=SQUARE) -> str:
    return f"{cls} " + " ".join(str(v) for v in coords)


def make_ultralytics(root: Path, splits=None, yaml_text=None) -> Path:
    """images/<split>/i.jpg + labels/<split>/i.txt (a square each) + data.yaml; returns the yaml."""
    splits = splits or {"train": 3, "val": 2}
    for k, (split, n) in enumerate(splits.items()):
        for i in range(n):
            write_image(root / "images" / split / f"{split}{i}.png", seed=1000 * k + i)
            write_label(root / "labels" / split / f"{split}{i}.txt", [square_line()])
    keys = "".join(f"{s}: images/{s}\n" for s in splits)
    yaml_path = root / "data.yaml"
    yaml_path.write_text(yaml_text or f"path: .\n{keys}names:\n  0: crack\n")
    return yaml_path


def make_roboflow_yolo(root: Path) -> Path:
    for split in ("train", "valid", "test"):
        for i in range(2):
            write_image(root / split / "images" / f"{split}{i}_jpg.rf.{i:032x}.jpg", seed=i)
            write_label(
                root / split / "labels" / f"{split}{i}_jpg.rf.{i:032x}.txt", [square_line()]
            )
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 1\n"
        "names: ['crack']\n\nroboflow:\n  workspace: x\n  version: 2\n"
    )
    return root / "data.yaml"


def coco_json(path: Path, images: list[dict], annotations: list[dict]) -> Path:
    categories = [
        {"id": 0, "name": "cracks-3ii36", "supercategory": "none"},
        {"id": 1, "name": "crack", "supercategory": "cracks-3ii36"},
    ]
    data = {"images": images, "annotations": annotations, "categories": categories}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_mask(path: Path, mask: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(mask)
    if mode:
        im = im.convert(mode)
    im.save(path)
    return path


def square_mask(hw=(100, 100), value=255) -> np.ndarray:
    mask = np.zeros(hw, np.uint8)
    mask[20:40, 30:70] = value
    return mask
