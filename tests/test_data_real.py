"""The real shared datasets, when present (read-only; skipped cleanly when absent)."""

from pathlib import Path

import numpy as np
import pytest

from crackseg.data import build_dataset, load_index

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CRACK_SEG = SHARED / "crack-seg"
MASONRY = SHARED / "masonry"


@pytest.mark.skipif(not CRACK_SEG.is_dir(), reason="../shared/data/crack-seg not present")
def test_crack_seg_counts_and_crack_fraction():
    index = load_index(CRACK_SEG)
    assert index.format == "ultralytics" and not index.problems
    assert {k: len(v) for k, v in index.splits.items()} == {"train": 3717, "val": 200}
    val = index.splits["val"]
    assert sum(1 for i in val if i.has_label and not i.polygons) == 1  # the one crack-free image
    fractions = [(i.load_mask((416, 416)) == 1).mean() for i in val]
    assert 0.01 < np.mean(fractions) < 0.04  # about 2% crack pixels
    sample = build_dataset(index, "train", augment="default")[0]
    assert sample["image"].shape == (3, 416, 416) and set(sample["mask"].unique().tolist()) <= {
        0,
        1,
    }


@pytest.mark.skipif(not MASONRY.is_dir(), reason="../shared/data/masonry not present")
def test_masonry_mask_pairs():
    index = load_index(MASONRY)
    assert index.format == "mask-folders" and not index.problems
    items = index.splits["train"]
    assert len(items) == 240
    mask = items[0].load_mask((224, 224))
    assert set(np.unique(mask)) <= {0, 1} and mask.sum() > 0
