"""Resizing and joint image/mask augmentation (albumentations), masks always nearest-neighbour.

Why albumentations: it applies one sampled geometry to image and mask together (aligned by
construction), uses nearest-neighbour for masks everywhere, runs on uint8 with OpenCV (fast),
and has every photometric effect the issue lists (colour jitter, blur, noise, JPEG). Hand-written
versions would be longer and slower. The pipelines below are resized-size agnostic.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

from crackseg.conventions import IGNORE_INDEX, LETTERBOX_FILL
from crackseg.errors import CrackSegError

RESIZE_MODES = ("stretch", "letterbox", "native")
AUGMENT_LEVELS = ("none", "light", "photo", "default", "strong")


def letterbox_geometry(h: int, w: int, size: int) -> tuple[float, int, int, int, int]:
    """Keep-aspect fit of (h, w) into size x size: (scale, top, left, new_h, new_w)."""
    scale = size / max(h, w)
    nh, nw = max(round(h * scale), 1), max(round(w * scale), 1)
    return scale, (size - nh) // 2, (size - nw) // 2, nh, nw


def resize_pair(
    image: np.ndarray, mask: np.ndarray, size: int, mode: str = "stretch"
) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) image and (H, W) mask -> size x size (stretch, letterbox) or unchanged (native).

    stretch is Roboflow's "Stretch to 416x416"; letterbox keeps the aspect ratio and pads the
    image with grey and the mask with 255 (ignore), so padding never counts as background.
    """
    if mode == "native":
        return image, mask
    h, w = mask.shape
    if mode == "stretch":
        nh, nw = size, size
    elif mode == "letterbox":
        _, top, left, nh, nw = letterbox_geometry(h, w, size)
    else:
        raise CrackSegError(f"resize={mode!r}: expected one of {', '.join(RESIZE_MODES)}")
    if (nh, nw) != (h, w):
        shrink = nh * nw < h * w
        image = cv2.resize(
            image, (nw, nh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
        mask = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_NEAREST)
    if mode == "letterbox" and (nh, nw) != (size, size):
        pads = (top, size - nh - top, left, size - nw - left)
        image = cv2.copyMakeBorder(image, *pads, cv2.BORDER_CONSTANT, value=(LETTERBOX_FILL,) * 3)
        mask = cv2.copyMakeBorder(mask, *pads, cv2.BORDER_CONSTANT, value=IGNORE_INDEX)
    return image, mask


def _d4() -> list:
    """The 8 symmetries of the square: cracks have no preferred orientation."""
    return [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.RandomRotate90(p=0.5)]


def _affine(scale: tuple[float, float], rotate: float, p: float) -> A.Affine:
    """Random scale (zoom in = crop), shift and small rotation; borders reflect in both targets."""
    return A.Affine(
        scale=scale,
        translate_percent=(-0.1, 0.1),
        rotate=(-rotate, rotate),
        interpolation=cv2.INTER_LINEAR,
        mask_interpolation=cv2.INTER_NEAREST,
        border_mode=cv2.BORDER_REFLECT_101,
        p=p,
    )


def _degrade(p: float, strength: float) -> A.OneOf:
    """Camera effects: blur, sensor noise, JPEG artefacts (one of them)."""
    return A.OneOf(
        [
            A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 0.6 + strength)),
            A.GaussNoise(std_range=(0.01, 0.03 + 0.03 * strength), noise_scale_factor=0.5),
            A.ImageCompression(quality_range=(int(70 - 30 * strength), 95)),
        ],
        p=p,
    )


def _photometric(p: float = 0.5) -> A.Sequential:
    """Another camera, image only (the mask is never touched): with probability p, a few of
    exposure, gamma, colour cast, blur, sensor noise, JPEG and resampling, each drawn on its own.

    Mild on purpose: cracks are 1-5 px wide, so blur, downscaling and noise stay at strengths
    where a thin crack is still visible, and hue barely moves (concrete is grey).
    """
    return A.Sequential(
        [
            A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=0.6),
            A.RandomGamma(gamma_limit=(75, 135), p=0.3),
            A.HueSaturationValue(hue_shift_limit=5, sat_shift_limit=15, val_shift_limit=0, p=0.3),
            A.OneOf(
                [
                    A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.3, 1.0)),
                    A.MotionBlur(blur_limit=(3, 5), allow_shifted=False),
                ],
                p=0.25,
            ),
            A.OneOf(
                [
                    A.GaussNoise(std_range=(0.01, 0.05), noise_scale_factor=0.5),
                    A.ISONoise(color_shift=(0.01, 0.04), intensity=(0.1, 0.4)),
                ],
                p=0.3,
            ),
            A.ImageCompression(quality_range=(30, 95), p=0.3),
            A.Downscale(
                scale_range=(0.6, 0.9),
                interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR},
                p=0.1,
            ),
        ],
        p=p,
    )


def build_augment(level: str | bool | None) -> A.Compose | None:
    """Joint pipeline for a level: none, light (D4), photo (D4 + other cameras' photometry),
    default, strong; None when no augmentation."""
    level = {False: "none", None: "none", True: "default"}.get(level, level)
    if level not in AUGMENT_LEVELS:
        raise CrackSegError(f"augment={level!r}: expected one of {', '.join(AUGMENT_LEVELS)}")
    if level == "none":
        return None
    if level == "light":
        steps = _d4()
    elif level == "photo":
        steps = [*_d4(), _photometric(p=0.5)]
    elif level == "default":
        steps = [
            *_d4(),
            _affine(scale=(0.75, 1.35), rotate=15, p=0.5),
            A.ColorJitter(brightness=0.25, contrast=0.25, saturation=0.2, hue=0.03, p=0.5),
            _degrade(p=0.3, strength=0.0),
        ]
    else:
        steps = [
            *_d4(),
            _affine(scale=(0.6, 1.6), rotate=30, p=0.7),
            A.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.35, hue=0.06, p=0.8),
            A.RandomShadow(p=0.2),
            _degrade(p=0.5, strength=1.0),
        ]
    return A.Compose(steps, mask_interpolation=cv2.INTER_NEAREST, seed=0)


def _nodes(pipeline) -> list:
    """Every transform and composition in a pipeline, depth first (parents before children)."""
    out = [pipeline]
    if isinstance(pipeline, A.BaseCompose):  # (ColorJitter's own `transforms` are plain functions)
        for child in pipeline.transforms:
            out += _nodes(child)
    return out


def seed_augment(pipeline: A.Compose, entropy: int | list[int]) -> None:
    """Give every transform of the pipeline its own seed drawn from `entropy`.

    albumentations' `set_random_seed` on a Compose hands the same seed to every child, so each
    call's coin flips come out identical (all transforms applied, or none). Its public
    per-transform `set_random_seed` gives independence: seed the nodes parent first (a Compose
    re-seeds its children), then each child with its own seed.
    """
    nodes = _nodes(pipeline)  # depth first, parents before their children
    for node, state in zip(
        nodes, np.random.SeedSequence(entropy).generate_state(len(nodes)), strict=True
    ):
        node.set_random_seed(int(state))
