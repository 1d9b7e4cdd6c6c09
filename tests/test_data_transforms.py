"""Joint augmentations keep image and mask aligned and binary; seeding reproducible with workers."""

import numpy as np
import pytest
import torch
from PIL import Image
from test_data_helpers import make_ultralytics

from crackseg.data import build_dataset
from crackseg.data.transforms import build_augment, resize_pair, seed_augment


def _shapes_pair(size=96):
    """Asymmetric white blobs on black, the mask marking them (plus an ignore patch)."""
    mask = np.zeros((size, size), np.uint8)
    mask[10:30, 15:70] = 1
    mask[40:90, 60:75] = 1
    yy, xx = np.mgrid[:size, :size]
    mask[(yy - 70) ** 2 + (xx - 25) ** 2 < 12**2] = 1
    image = np.repeat((mask == 1)[:, :, None] * np.uint8(255), 3, axis=2)
    mask[0:6, 0:6] = 255
    return image, mask


@pytest.mark.parametrize("level", ["light", "photo", "default", "strong"])
def test_augmentations_keep_image_and_mask_aligned_and_binary(level):
    aug = build_augment(level)
    image, mask = _shapes_pair()
    for seed in range(25):
        seed_augment(aug, seed)
        out = aug(image=image, mask=mask)
        img, msk = out["image"], out["mask"]
        assert img.shape == image.shape and msk.shape == mask.shape and msk.dtype == np.uint8
        assert set(np.unique(msk)) <= {0, 1, 255}
        found = img.astype(np.float32).mean(axis=2) > 60  # white stays brighter than black
        iou = (found & (msk == 1)).sum() / (found | (msk == 1)).sum()
        assert iou > 0.85, (level, seed, iou)


def test_transforms_draw_independently():
    """Each transform has its own seed: flips are not all-or-nothing (albumentations' default)."""
    aug = build_augment("light")
    image = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
    outcomes = set()
    for seed in range(40):
        seed_augment(aug, seed)
        outcomes.add(aug(image=image, mask=image[:, :, 0])["image"].tobytes())
    assert len(outcomes) == 8  # all 8 symmetries of the square show up


def test_d4_is_exactly_aligned():
    aug = build_augment("light")
    image, mask = _shapes_pair()
    image[:, :, 0] = mask * 100  # the mask written into the red channel
    for seed in range(16):
        seed_augment(aug, seed)
        out = aug(image=image, mask=mask)
        assert np.array_equal(out["image"][:, :, 0], out["mask"] * 100)


def _d4_variants(array):
    """The 8 flips/turns of an (H, W, ...) array, as bytes, in a fixed order."""
    turns = [np.rot90(array, k) for k in range(4)]
    return [np.ascontiguousarray(a).tobytes() for t in turns for a in (t, t[:, ::-1])]


def _noise_pair(seed=0, size=48):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = (rng.random((size, size)) < 0.1).astype(np.uint8)
    mask[:4, :4] = 255
    return image, mask


def test_photo_changes_only_the_image_about_half_the_time():
    """The photometric steps never touch the mask; about half the images get some change."""
    aug = build_augment("photo")
    image, mask = _noise_pair()
    image_d4, mask_d4 = _d4_variants(image), _d4_variants(mask)
    changed = 0
    for seed in range(200):
        seed_augment(aug, seed)
        out = aug(image=image, mask=mask)
        turn = mask_d4.index(out["mask"].tobytes())  # the mask is exactly a flip/turn of itself
        changed += out["image"].tobytes() != image_d4[turn]  # a photometric change on top
    assert 0.3 < changed / 200 < 0.65


def test_photo_draws_geometry_and_photometry_independently():
    """Every (flip/turn, photometric change or not) pair shows up: no shared coin flips."""
    aug = build_augment("photo")
    image, mask = _noise_pair(seed=1)
    image_d4, mask_d4 = _d4_variants(image), _d4_variants(mask)
    outcomes = set()
    for seed in range(200):
        seed_augment(aug, seed)
        out = aug(image=image, mask=mask)
        turn = mask_d4.index(out["mask"].tobytes())
        outcomes.add((turn, out["image"].tobytes() != image_d4[turn]))
    assert len(outcomes) == 16


def test_photo_is_deterministic_for_a_seed():
    image, mask = _noise_pair(seed=2)
    runs = []
    for _ in range(2):
        aug = build_augment("photo")  # a fresh pipeline each time: nothing carried over
        outs = []
        for seed in (3, 4, 5, 3):
            seed_augment(aug, seed)
            outs.append(aug(image=image, mask=mask)["image"].tobytes())
        runs.append(outs)
    assert runs[0] == runs[1] and runs[0][0] == runs[0][3]
    assert len(set(runs[0])) == 3


def test_resize_pair_uses_nearest_for_masks():
    image, mask = _shapes_pair(size=97)
    img, msk = resize_pair(image, mask, 40, "stretch")
    assert img.shape == (40, 40, 3) and set(np.unique(msk)) <= {0, 1, 255}
    img, msk = resize_pair(image[:, :50], mask[:, :50], 40, "letterbox")
    assert msk.shape == (40, 40) and (msk[:, :9] == 255).all() and (img[:, :9] == 114).all()


@pytest.fixture
def tiny_set(tmp_path):
    yaml_path = make_ultralytics(tmp_path, {"train": 6})
    for i in range(6):  # distinct content so that mixing samples up would show
        arr = np.random.default_rng(i).integers(0, 255, (60, 80, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / f"images/train/train{i}.png")
    return yaml_path


def _epoch(ds, epoch, workers, persistent=False, loader=None):
    ds.set_epoch(epoch)
    loader = loader or torch.utils.data.DataLoader(
        ds, batch_size=2, num_workers=workers, persistent_workers=persistent
    )
    return torch.cat([b["image"] for b in loader]), torch.cat([b["mask"] for b in loader]), loader


def test_augmentation_is_seeded_by_seed_epoch_and_index(tiny_set):
    ds = build_dataset(tiny_set, "train", image_size=48, augment="strong", seed=1)
    a, b = ds[3], ds[3]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["image"], a["image"])
    other = build_dataset(tiny_set, "train", image_size=48, augment="strong", seed=2)
    assert not torch.equal(other[3]["image"], a["image"])


def test_workers_reproduce_single_process_batches(tiny_set):
    ds = build_dataset(tiny_set, "train", image_size=48, augment="default", seed=5)
    ref0, ref0m, _ = _epoch(ds, 0, workers=0)
    ref1, _, _ = _epoch(ds, 1, workers=0)
    got0, got0m, loader = _epoch(ds, 0, workers=2, persistent=True)
    got1, _, _ = _epoch(ds, 1, workers=2, loader=loader)  # persistent workers see set_epoch
    assert torch.equal(ref0, got0) and torch.equal(ref0m, got0m) and torch.equal(ref1, got1)
    assert not torch.equal(ref0, ref1)


def test_compact_samples_convert_to_the_float_contract(tiny_set):
    from crackseg.data import batch_to_float

    full = build_dataset(tiny_set, "train", image_size=48, augment="default")
    compact = build_dataset(tiny_set, "train", image_size=48, augment="default", compact=True)
    c = compact[2]
    assert c["image"].dtype == torch.uint8 and c["mask"].dtype == torch.uint8
    batch = batch_to_float(torch.utils.data.default_collate([c]))
    assert batch["image"].dtype == torch.float32 and batch["mask"].dtype == torch.int64
    assert torch.allclose(batch["image"][0], full[2]["image"]) and torch.equal(
        batch["mask"][0], full[2]["mask"]
    )
