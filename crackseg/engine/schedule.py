"""Learning-rate schedules: a pure function of the optimizer step (nanoGPT style), or of the
fraction of a wall-clock budget spent (`TimeBudget`, for equal-budget model comparisons)."""

from __future__ import annotations

import math
import time

SCHEDULES = ("cosine", "poly")


def decayed_lr(
    progress: float, *, base_lr: float, schedule: str, min_lr_ratio: float, power: float = 0.9
) -> float:
    """Cosine or polynomial decay from `base_lr` (progress 0) to `base_lr*min_lr_ratio` (1)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be 'cosine' or 'poly', got {schedule!r}")
    progress = min(1.0, max(0.0, progress))
    if schedule == "cosine":
        decay = 0.5 * (1 + math.cos(math.pi * progress))
    else:
        decay = (1 - progress) ** power
    min_lr = base_lr * min_lr_ratio
    return min_lr + (base_lr - min_lr) * decay


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
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return decayed_lr(progress, base_lr=base_lr, schedule=schedule, min_lr_ratio=min_lr_ratio,
                      power=power)  # fmt: skip


class TimeBudget:
    """A wall-clock training budget: warmup by steps, then the LR decays with the fraction of
    `seconds` spent, and `spent()` tells the loop to stop (mid-epoch). `elapsed` carries the time
    of earlier sessions of a resumed run. Not bit-reproducible by design: it follows the clock."""

    def __init__(self, seconds: float, *, base_lr: float, warmup_steps: int, schedule: str,
                 min_lr_ratio: float, elapsed: float = 0.0, clock=time.perf_counter):  # fmt: skip
        if seconds <= 0:
            raise ValueError(f"a time budget must be > 0 seconds, got {seconds}")
        self.seconds, self.base_lr, self.warmup_steps = seconds, base_lr, warmup_steps
        self.schedule, self.min_lr_ratio, self.clock = schedule, min_lr_ratio, clock
        self.started = clock() - elapsed

    def elapsed(self) -> float:
        return self.clock() - self.started

    def fraction(self) -> float:
        return self.elapsed() / self.seconds

    def spent(self) -> bool:
        return self.fraction() >= 1.0

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        return decayed_lr(self.fraction(), base_lr=self.base_lr, schedule=self.schedule,
                          min_lr_ratio=self.min_lr_ratio)  # fmt: skip
