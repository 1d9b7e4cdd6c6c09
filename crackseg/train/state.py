"""Restore and save steps of a training run: where it stands (`Progress`), last.ckpt (everything
for an exact resume) and best.ckpt (the weights with the best defined val crack IoU)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crackseg.engine.checkpoint import model_payload, rng_state, save_checkpoint, set_rng_state
from crackseg.errors import CrackSegError
from crackseg.train.build import Run

BEST_KEYS = ("model", "state_dict", "config", "ema", "epoch")  # what best.ckpt keeps


@dataclass
class Progress:
    """Epochs done, optimizer steps, best val crack IoU (None until one is defined), history."""

    epoch: int = 0
    step: int = 0
    best: float | None = None
    history: list[dict] = field(default_factory=list)

    def record(self, row: dict) -> bool:
        """Add an epoch's row; True when its val crack IoU is a new best. A row without one, or
        with an undefined (None) one, is never a best: no score from nothing."""
        self.history.append(row)
        self.epoch, self.step = row["epoch"], row["step"]
        iou = row.get("crack_iou")
        if iou is None or (self.best is not None and iou <= self.best):
            return False
        self.best = float(iou)
        return True


def restore(run: Run, ckpt: dict | None) -> Progress:
    """Load model, optimizer, scaler, EMA and RNG state from last.ckpt; a new run starts at 0."""
    if ckpt is None:
        return Progress()
    last = run.session.out / "last.ckpt"
    optim = run.optim
    try:
        run.model.load_state_dict(ckpt["state_dict"])
        optim.optimizer.load_state_dict(ckpt["optimizer"])
        if optim.scaler and ckpt.get("scaler"):
            optim.scaler.load_state_dict(ckpt["scaler"])
        if optim.ema and ckpt.get("ema"):
            optim.ema.load_state_dict(ckpt["ema"], ckpt["ema_updates"])
        set_rng_state(ckpt["rng"])
        progress = Progress(ckpt["epoch"], ckpt["step"], ckpt["best"], list(ckpt["history"]))
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        reason = " ".join(str(err).split())[:200] or type(err).__name__  # one line, bounded
        raise CrackSegError(
            f"--resume: {last} does not match this run's model and options ({reason}); resume "
            "with the options saved in its config.yaml, or start a new --out"
        ) from None
    if progress.best is not None and progress.best < 0:  # older runs stored -1.0 for "none yet"
        progress.best = None
    return progress


def save_epoch(run: Run, progress: Progress, row: dict, *, is_best: bool) -> None:
    """last.ckpt after every epoch (atomic); best.ckpt when this epoch set a new best."""
    out, optim = run.session.out, run.optim
    config = {**run.config.to_dict(), "predict_scale": run.data.scale}
    payload = {**model_payload(run.model), "config": config, "epoch": progress.epoch,
               "step": progress.step, "best": progress.best, "history": progress.history,
               "optimizer": optim.optimizer.state_dict(),
               "scaler": optim.scaler.state_dict() if optim.scaler else None,
               "ema": optim.ema.state_dict() if optim.ema else None,
               "ema_updates": optim.ema.updates if optim.ema else 0, "rng": rng_state()}  # fmt: skip
    save_checkpoint(payload, out / "last.ckpt")
    if is_best:
        best = {key: payload[key] for key in BEST_KEYS}
        save_checkpoint({**best, "metrics": row}, out / "best.ckpt")


def last_checkpoint_note(out: Path) -> str:
    last = out / "last.ckpt"
    return f"the last good checkpoint is {last}" if last.exists() else "no checkpoint yet"


def interrupted_note(out: Path, epoch: int, epochs: int) -> str:
    """Where a run stopped by Ctrl-C stands, and the command that continues it."""
    last = out / "last.ckpt"
    if not last.exists():
        return f"in epoch {epoch + 1} of {epochs}, before any epoch was saved: nothing to resume"
    return (f"in epoch {epoch + 1} of {epochs}; {last} holds the last finished epoch: continue "
            f"with crackseg train --out {out} --resume")  # fmt: skip
