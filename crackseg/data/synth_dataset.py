"""Write a synthetic crack dataset in the Ultralytics layout, so the real loader path is exercised.

    out/data.yaml                      path: ., train/val/test: images/<split>, names: {0: crack}
    out/images/<split>/synth_00000.jpg
    out/labels/<split>/synth_00000.txt one polygon per crack component `0 x1 y1 ...` (empty: none)
    out/cracks.json                    per image: each crack's kind, true length and width (px)

Labels are the outer contours of the exact crack mask at pixel centres, so the loader's polygon
fill gives the mask back pixel for pixel (asserted while writing). The default 256 px keeps the
embedded demo fast on a CPU; generate at the size you train at (thin cracks do not survive a
downscale).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from crackseg.data.rasterize import fill_polygons, mask_to_polygons
from crackseg.data.synth_scene import render_scene
from crackseg.errors import CrackSegError

SPLITS = ("train", "val", "test")
GENERATOR = "crackseg.data.synthesize"


def split_sizes(n: int, fractions: tuple[float, ...]) -> list[int]:
    """Images per split; every split with a non-zero fraction gets at least one when n allows."""
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise CrackSegError(
            f"splits={fractions}: expected three non-negative fractions (train, val, test)"
        )
    f = np.asarray(fractions, np.float64) / sum(fractions)
    sizes = np.floor(f * n).astype(int)
    for i in np.argsort(-(f * n - sizes))[: n - sizes.sum()]:
        sizes[i] += 1
    for i in range(1, 3):  # val and test: one image at least, taken from train
        if f[i] > 0 and sizes[i] == 0 and sizes[0] > 1:
            sizes[i], sizes[0] = 1, sizes[0] - 1
    return sizes.tolist()


def _clear(out: Path) -> None:
    """Refuse a folder holding anything else; empty a previous synthetic set (no stale images)."""
    if out.exists() and not out.is_dir():
        raise CrackSegError(f"{out}: exists and is not a folder. Choose another --out.")
    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        previous = json.loads((out / "cracks.json").read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        previous = False
    if not previous:
        raise CrackSegError(f"{out}: folder is not empty. Choose a new or empty --out folder.")
    for pattern in ("images/*/synth_*.jpg", "labels/*/synth_*.txt"):
        for old in out.glob(pattern):
            old.unlink()


def synthesize(
    out_dir: str | Path,
    n: int,
    *,
    seed: int = 0,
    image_size: int = 256,
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15),
    quality: int = 92,
) -> Path:
    """Write n synthetic images (+ exact labels, + cracks.json) and return the dataset yaml's path.

    Image i depends only on (seed, i), so a larger n extends a smaller one's images.
    """
    if n < 1:
        raise CrackSegError(f"n={n}: ask for at least one image")
    if not 32 <= image_size <= 4096:
        raise CrackSegError(f"image_size={image_size}: expected 32..4096 px")
    out = Path(out_dir)
    _clear(out)
    records: dict[str, dict] = {}
    i = 0
    for split, count in zip(SPLITS, split_sizes(n, splits), strict=True):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            scene = render_scene(np.random.default_rng([seed, i]), image_size)
            name = f"synth_{i:05d}"
            image_path = out / "images" / split / f"{name}.jpg"
            bgr = np.ascontiguousarray(scene.image[:, :, ::-1])
            if not cv2.imwrite(str(image_path), bgr, [cv2.IMWRITE_JPEG_QUALITY, quality]):
                raise CrackSegError(f"{image_path}: cannot write. Check the folder's permissions.")
            polygons = mask_to_polygons(scene.mask)
            lines = ["0 " + " ".join(f"{v:.6f}" for v in xy.reshape(-1)) for xy in polygons]
            (out / "labels" / split / f"{name}.txt").write_text(
                "\n".join(lines) + ("\n" if lines else "")
            )
            filled = fill_polygons([(1, xy) for xy in polygons], scene.mask.shape)
            assert np.array_equal(filled, scene.mask), f"{name}: label does not reproduce the mask"
            records[f"images/{split}/{name}.jpg"] = {
                "split": split,
                "crack_pixels": int(scene.mask.sum()),
                "cracks": scene.cracks,
                "scene": scene.distractors,
            }
            i += 1
    yaml_path = out / "data.yaml"
    yaml_path.write_text(
        "# Synthetic cracks written by `crackseg data synth` (exact masks; see cracks.json)\n"
        "path: .\ntrain: images/train\nval: images/val\ntest: images/test\nnames:\n  0: crack\n"
    )
    meta = {"generator": GENERATOR, "seed": seed, "image_size": image_size, "n": n}
    (out / "cracks.json").write_text(json.dumps({**meta, "images": records}, indent=1))
    return yaml_path
