"""Random training crops: seeded, aligned, padded with ignore when the image is smaller."""

import numpy as np

from crackseg.data import build_dataset
from crackseg.data.dataset import random_crop


def test_random_crop_is_seeded_aligned_and_pads_with_ignore():
    image = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    mask = image[..., 0] % 2
    a = random_crop(image, mask, 6, [0, 0, 1])
    b = random_crop(image, mask, 6, [0, 0, 1])
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[0].shape == (6, 6, 3) and np.array_equal(a[0][..., 0] % 2, a[1])
    img, msk = random_crop(image, mask, 16, [0, 0, 2])
    assert img.shape == (16, 16, 3) and (msk == 255).sum() == 16 * 16 - 10 * 12


def test_dataset_crops_native_images(synth_yaml):
    ds = build_dataset(synth_yaml, "train", resize="native", augment="default", crop=32)
    sample = ds[0]
    assert sample["image"].shape == (3, 32, 32) and sample["mask"].shape == (32, 32)
