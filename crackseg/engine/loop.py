"""One epoch of training and one pass of evaluation; no files, no config, no printing.

The orchestration (run folder, checkpoints, logging, resume) lives in `crackseg.train`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from crackseg.data import batch_to_float
from crackseg.engine.ema import ModelEMA
from crackseg.metrics import SegMetrics, probs_from_logits
from crackseg.tensors import autocast, normalize


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf; the caller keeps the last good checkpoint."""


@dataclass(frozen=True)
class Inputs:
    """How a loader batch becomes model input: device, normalisation, precision, memory format."""

    device: torch.device
    mean: tuple
    std: tuple
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False


@dataclass(frozen=True)
class Optimisation:
    """What each optimizer step uses: optimizer, LR schedule, loss, fp16 scaler, gradient
    accumulation and clipping, the EMA to update, an optional cap on steps per epoch, and an
    optional stop condition checked between optimizer steps."""

    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    lr_for_step: Callable[[int], float]
    scaler: torch.amp.GradScaler | None = None
    accum_steps: int = 1
    grad_clip: float | None = None
    ema: ModelEMA | None = None
    max_steps: int | None = None
    stop_when: Callable[[], bool] | None = None  # e.g. a spent time budget: stop mid-epoch


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optim: Optimisation,
    inputs: Inputs,
    *,
    step: int,
    on_batch: Callable[[dict], None] | None = None,
) -> tuple[dict[str, float], int]:
    """Train over `loader`; returns ({"loss", "images", "seconds", "images_per_s"}, next step).

    `step` counts optimizer steps (the schedule's unit); with `optim.accum_steps` > 1 gradients
    of that many batches are summed before each step. Raises NonFiniteLoss on a NaN/inf loss.
    """
    model.train()
    accum, optimizer, scaler = optim.accum_steps, optim.optimizer, optim.scaler
    total_loss, images_seen, start = 0.0, 0, time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(loader):
        if optim.max_steps is not None and i >= optim.max_steps * accum:
            break
        if optim.stop_when and i % accum == 0 and optim.stop_when():
            break
        batch = batch_to_float(batch, inputs.device)  # uint8 batches travel light from workers
        images = normalize(batch["image"], inputs.mean, inputs.std)  # (B, 3, H, W)
        targets = batch["mask"]  # (B, H, W)
        if inputs.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(inputs.device, inputs.amp_dtype):
            logits = model(images)  # (B, K, H, W)
        loss = optim.loss_fn(logits.float(), targets)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"loss is {loss.item()} at step {step} (batch {i})")
        (scaler.scale(loss / accum) if scaler else loss / accum).backward()
        total_loss += loss.item() * len(images)
        images_seen += len(images)
        if (i + 1) % accum == 0:
            optimizer_step(model, optim, step)
            step += 1
        if on_batch:
            seconds = time.perf_counter() - start
            on_batch({"loss": loss.item(), "images_per_s": images_seen / seconds, "step": step})
    seconds = time.perf_counter() - start
    stats = {
        "loss": total_loss / max(1, images_seen),
        "images": images_seen,
        "seconds": seconds,
        "images_per_s": images_seen / max(seconds, 1e-9),
    }
    return stats, step


def optimizer_step(model: nn.Module, optim: Optimisation, step: int) -> None:
    """Set the scheduled LR, unscale and clip the summed gradients, step, zero, update the EMA."""
    optimizer, scaler = optim.optimizer, optim.scaler
    for group in optimizer.param_groups:
        group["lr"] = optim.lr_for_step(step)
    if scaler:
        scaler.unscale_(optimizer)
    if optim.grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if optim.ema is not None:
        optim.ema.update(getattr(model, "module", model))


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    metrics: SegMetrics,
    *,
    device: torch.device,
    mean,
    std,
    amp_dtype: torch.dtype | None = None,
    predict: Callable[[Tensor], Tensor] | None = None,
) -> SegMetrics:
    """Accumulate `metrics` over `loader` (crack probabilities vs targets); returns `metrics`.

    `predict` maps normalised images to logits (default: the model itself); pass a sliding-window
    or TTA predictor to evaluate exactly what `crackseg predict` does.
    """
    model.eval()
    predict = predict or model
    for batches in loader:
        for batch in batches if isinstance(batches, list) else [batches]:  # grouped by size
            images = normalize(batch["image"].to(device), mean, std)
            with autocast(device, amp_dtype):
                logits = predict(images)  # (B, K, H, W)
            metrics.update(probs_from_logits(logits).cpu(), batch["mask"])
    return metrics
