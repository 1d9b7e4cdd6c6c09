"""Refusals before the first batch: a crop larger than the images, class weights that do not match
the model, and a batch that would not fit in memory (a typo such as `--crop 4096` on 64 px images
once grew to 22.6 GB and was killed by the kernel)."""

from __future__ import annotations

import os

import torch
from torch import nn

from crackseg.config import TrainConfig
from crackseg.data.io import image_size
from crackseg.errors import CrackSegError

SAMPLE_ITEMS = 64  # image headers read to find the largest native training image
PROBE_SIDE = 64  # side of the zero image whose forward pass measures a model's activations
OPTIMIZER_COPIES = 4  # weights, gradients, AdamW's two moments (+1 with an EMA)
MEMORY_SHARE = 0.75  # refuse a run whose estimate exceeds this share of the device's memory


def largest_image(items: list) -> tuple[int, int]:
    """(H, W) of the largest of the first SAMPLE_ITEMS images, from their headers."""
    sizes = [image_size(item.image) for item in items[:SAMPLE_ITEMS]]
    return max(sizes, key=lambda hw: hw[0] * hw[1])


def check_crop(config: TrainConfig, items: list) -> None:
    """A crop must fit in the images it is taken from (resized, or native with --resize native)."""
    if config.crop is None:
        return
    if config.resize == "native":
        h, w = largest_image(items)
        largest, what = max(h, w), f"the largest training image ({w}x{h} px, --resize native)"
    else:
        largest = config.image_size
        what = f"the training images ({largest} px after --resize {config.resize})"
    if config.crop > largest:
        raise CrackSegError(
            f"--crop {config.crop}: larger than {what}; give --crop {largest} or less"
        )


def training_pixels(config: TrainConfig, items: list) -> int:
    """Pixels of one training image as the model sees it (crop, resized side, or native size)."""
    if config.crop:
        return config.crop**2
    if config.resize == "native":
        h, w = largest_image(items)
        return h * w
    return config.image_size**2


def check_class_weights(config: TrainConfig, model: nn.Module) -> None:
    """One class weight per class the model predicts (the loss would fail in the first batch)."""
    classes = getattr(model, "num_classes", None)
    if config.class_weights is None or classes is None or len(config.class_weights) == classes:
        return
    raise CrackSegError(
        f"--class-weights {' '.join(map(str, config.class_weights))}: "
        f"{len(config.class_weights)} values, but {config.model} predicts {classes} classes; "
        "give one weight per class (background first)"
    )


@torch.no_grad()
def activation_bytes_per_pixel(model: nn.Module) -> float:
    """Bytes that the outputs of every leaf module take per input pixel of one image, measured by
    a forward pass on a zero PROBE_SIDE image (eval mode: no statistics updated, no RNG drawn).

    A rough linear model: attention's (tokens x tokens) matrices, which SDPA kernels need not keep,
    are not counted."""
    total = [0]

    def count(_module, _args, output) -> None:
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * t.element_size()

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters())
        model(torch.zeros(1, 3, PROBE_SIDE, PROBE_SIDE, dtype=param.dtype, device=param.device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total[0] / PROBE_SIDE**2


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory on `device` (the GPU's, or the machine's physical RAM); None if unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def estimate_training_bytes(model: nn.Module, config: TrainConfig, pixels: int) -> int:
    """Rough memory of one training step: the activations autograd keeps for a batch (about the
    leaf modules' outputs: 0.85 GB estimated vs 0.84 GB measured peak for unet_small, batch 8 at
    256 px on CPU; 0.33 vs 0.27 GB for segmenter_vit_tiny_patch16_mask, batch 4), plus the weights
    with their gradients, AdamW moments and EMA copy."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    copies = OPTIMIZER_COPIES + (1 if config.ema else 0)
    batch = config.batch_size * pixels * activation_bytes_per_pixel(model)
    return int(batch + copies * params)


def check_memory(model: nn.Module, config: TrainConfig, *, pixels: int, device) -> None:
    """Refuse a run whose estimated step memory exceeds MEMORY_SHARE of the device's memory."""
    available = device_memory(torch.device(device))
    if available is None:
        return
    needed = estimate_training_bytes(model, config, pixels)
    if needed > MEMORY_SHARE * available:
        side = round(pixels**0.5)
        raise CrackSegError(
            f"--batch-size {config.batch_size} at about {side}x{side} px "
            f"(--image-size/--crop/--resize): a training step of {config.model} needs about "
            f"{needed / 1e9:.1f} GB, more than {MEMORY_SHARE:.0%} of the {available / 1e9:.1f} GB "
            f"on {device}; lower --batch-size, --image-size or --crop"
        )
