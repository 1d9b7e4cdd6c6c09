"""Learning-rate schedule as a pure function of the optimizer step (nanoGPT style)."""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "poly")


def lr_at(
    step: int,
    *,
    base_lr: float,
    total_steps: int,
    warmup_steps: int,
    schedule: str = "cosine",
    min_lr_ratio: float = 0.01,
    power: float = 0.9,
) -> float:
    """Linear warmup to `base_lr`, then cosine or polynomial ("poly") decay to `base_lr*min_lr_ratio`."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be 'cosine' or 'poly', got {schedule!r}")
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    decay = (
        0.5 * (1 + math.cos(math.pi * progress))
        if schedule == "cosine"
        else (1 - progress) ** power
    )
    min_lr = base_lr * min_lr_ratio
    return min_lr + (base_lr - min_lr) * decay
