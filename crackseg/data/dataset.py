"""The torch Dataset over an index split: load -> resize -> augment -> tensors.

Seeding: sample i of epoch e is augmented from SeedSequence([seed, e, i]) (one seed per
transform), so a run is reproducible whatever the number of DataLoader workers, their scheduling
or the batch size, and each epoch sees new augmentations. Call `set_epoch(e)` before iterating
epoch e; the epoch lives in shared memory, so this also reaches persistent workers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from crackseg.conventions import IGNORE_INDEX
from crackseg.data.index import load_index
from crackseg.data.transforms import RESIZE_MODES, build_augment, resize_pair, seed_augment
from crackseg.data.types import DatasetIndex, Item, canonical_split
from crackseg.errors import CrackSegError
from crackseg.tensors import uint8_to_float


class CrackDataset(Dataset):
    """Items -> {"image": float32 (3, H, W) in [0, 1], "mask": int64 (H, W) in {0, 1, 255}, "path"}.

    Images are not mean/std-normalised (the engine does that). With resize="native" images keep
    their size, so batches need equal-sized images (or batch_size=1). compact=True returns uint8
    image (3, H, W) and mask (H, W) instead; `batch_to_float` converts a batch after the
    DataLoader (float32 + int64 took 2.7 ms per 416 px image to pass between processes here).
    """

    def __init__(
        self,
        items: list[Item],
        *,
        image_size: int = 416,
        resize: str = "stretch",
        augment: str | bool | None = False,
        seed: int = 0,
        strict: bool = False,
        class_names: list[str] | None = None,
        compact: bool = False,
        crop: int | None = None,
    ):
        if resize not in RESIZE_MODES:
            raise CrackSegError(f"resize={resize!r}: expected one of {', '.join(RESIZE_MODES)}")
        if image_size < 8:
            raise CrackSegError(f"image_size={image_size}: expected at least 8 pixels")
        self.items = list(items)
        self.image_size = int(image_size)
        self.resize = resize
        self.augment_level = augment
        self.augment = build_augment(augment)
        self.seed = int(seed)
        self.strict = strict
        self.class_names = class_names or ["crack"]
        self.compact = compact
        self.crop = crop
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Choose every sample's augmentation draw for this epoch (see the module docstring)."""
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Resized, augmented uint8 arrays: image (H, W, 3), mask (H, W)."""
        item = self.items[index]
        image = item.load_image()  # (H, W, 3)
        mask = item.load_mask(image.shape[:2], strict=self.strict)  # (H, W)
        image, mask = resize_pair(image, mask, self.image_size, self.resize)
        if self.augment is not None:
            seed_augment(self.augment, [self.seed, self.epoch, index])
            out = self.augment(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        if self.crop:
            image, mask = random_crop(image, mask, self.crop, [self.seed, self.epoch, index])
        return image, mask

    def __getitem__(self, index: int) -> dict:
        image, mask = self.load(index)
        path = str(self.items[index].image)
        if self.compact:  # uint8 both: 4x-8x less to pass from DataLoader workers (batch_to_float)
            chw = np.ascontiguousarray(image.transpose(2, 0, 1))
            return {
                "image": torch.from_numpy(chw),
                "mask": torch.from_numpy(mask.copy()),
                "path": path,
            }
        # numpy does the uint8 -> float32 step: torch's intra-op threads only slow this down here
        chw = np.multiply(image.transpose(2, 0, 1), np.float32(1 / 255), dtype=np.float32)
        return {
            "image": torch.from_numpy(chw),  # (3, H, W)
            "mask": torch.from_numpy(mask.astype(np.int64)),  # (H, W)
            "path": path,
        }

    def __repr__(self) -> str:
        return (
            f"CrackDataset({len(self)} images, image_size={self.image_size}, "
            f"resize={self.resize!r}, "
            f"augment={self.augment_level!r}, seed={self.seed})"
        )


def random_crop(
    image: np.ndarray, mask: np.ndarray, size: int, entropy: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded size x size window; smaller sides are padded (image 0, mask 255 = ignore)."""
    h, w = mask.shape
    ph, pw = max(size - h, 0), max(size - w, 0)
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
        mask = np.pad(mask, ((0, ph), (0, pw)), constant_values=IGNORE_INDEX)
        h, w = mask.shape
    rng = np.random.default_rng(np.random.SeedSequence([*entropy, 7]))
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return image[top : top + size, left : left + size], mask[top : top + size, left : left + size]


def build_dataset(
    path_or_index: str | Path | DatasetIndex,
    split: str,
    *,
    image_size: int = 416,
    resize: str = "stretch",
    augment: str | bool | None = False,
    seed: int = 0,
    strict: bool = False,
    compact: bool = False,
    crop: int | None = None,
) -> CrackDataset:
    """A split of any supported dataset as a CrackDataset; a missing split lists the others.

    `crop` takes a random crop x crop window after resizing and augmenting (e.g. native-resolution
    training on crops, so thin cracks keep their width)."""
    index = (
        path_or_index
        if isinstance(path_or_index, DatasetIndex)
        else load_index(path_or_index, strict=strict)
    )
    items = index.split(split)
    if not items:
        raise CrackSegError(
            f"{index.root}: the '{split}' split has no usable images"
            f"{index.skipped_because(canonical_split(split))}. Run `crackseg data inspect "
            f"{index.root}` to see every problem."
        )
    return CrackDataset(
        items,
        image_size=image_size,
        resize=resize,
        augment=augment,
        seed=seed,
        strict=strict,
        class_names=index.class_names,
        compact=compact,
        crop=crop,
    )


def batch_to_float(batch: dict, device: torch.device | str | None = None) -> dict:
    """A compact batch (uint8 images and masks) -> float32 images in [0, 1], int64 masks.

    Moves to `device` first, so on a GPU the conversion happens there. Float batches pass through.
    """
    images = (
        batch["image"].to(device, non_blocking=True) if device else batch["image"]
    )  # (B, 3, H, W)
    masks = batch["mask"].to(device, non_blocking=True) if device else batch["mask"]  # (B, H, W)
    return {**batch, "image": uint8_to_float(images), "mask": masks.long()}
