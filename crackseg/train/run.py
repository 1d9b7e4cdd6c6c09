"""`crackseg train` in four steps: build (device, data, model, optimisation; every refusal before
the first batch), restore (exact resume from last.ckpt), run (epochs: train, validate, log) and
save (last/best checkpoints, summary). torchrun (DDP) aware."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from crackseg.config import TrainConfig, resolve_config, save_config
from crackseg.engine import distributed as dist
from crackseg.engine.loop import NonFiniteLoss, evaluate, train_one_epoch
from crackseg.errors import CrackSegError
from crackseg.metrics import SegMetrics
from crackseg.outputs import mark_output
from crackseg.run_log import RunLog
from crackseg.train.build import Run, build_run, start_session
from crackseg.train.state import (
    Progress,
    interrupted_note,
    last_checkpoint_note,
    restore,
    save_epoch,
)


def show_progress(bar: tqdm, stats: dict) -> None:
    bar.update(1)
    bar.set_postfix(loss=f"{stats['loss']:.3f}", img_s=f"{stats['images_per_s']:.1f}")


def train(config: TrainConfig, *, resume: bool = False) -> dict:
    """Train per `config`; returns the summary (also written to summary.json)."""
    config.validate()  # resolve_config did for YAML and flags; a config built in Python too
    session = start_session(config, resume=resume)
    run = build_run(config, session)
    progress = restore(run, session.ckpt)
    if session.world > 1:
        run.model = torch.nn.parallel.DistributedDataParallel(run.model)
    log = RunLog(session.out, enabled=session.main, resume=session.ckpt is not None)
    if session.main:
        mark_output(session.out, "train")  # samples/ and curves.png are not photos to predict
        save_config(config, session.out / "config.yaml")
    started = time.perf_counter()
    epoch = progress.epoch
    try:
        for epoch in range(progress.epoch, config.epochs):
            row = run_epoch(run, epoch, progress.step)
            is_best = progress.record(row)
            if session.main:
                save_epoch(run, progress, row, is_best=is_best)
                log.epoch(row, progress.history, run.predictor, run.data.val_set,
                          config.num_samples)  # fmt: skip
            dist.barrier()
            if run.budget and run.budget.spent():
                log.note(f"time budget of {config.time_limit} min spent in epoch {epoch + 1} "
                         f"(step {progress.step})")  # fmt: skip
                break
            if config.time_limit and time.perf_counter() - started > 60 * config.time_limit:
                log.note(f"time limit of {config.time_limit} min reached after epoch {epoch + 1}")
                break
    except KeyboardInterrupt:  # Ctrl-C: the CLI prints this as its one "interrupted" line
        raise KeyboardInterrupt(interrupted_note(session.out, epoch, config.epochs)) from None
    return finish(run, progress, log, time.perf_counter() - started)


def run_epoch(run: Run, epoch: int, step: int) -> dict:
    """Train one epoch (from optimizer step `step`) and validate when due; returns its row."""
    config, data = run.config, run.data
    data.train_set.set_epoch(epoch)
    data.loader.sampler.set_epoch(epoch)
    bar = tqdm(total=run.steps_per_epoch * config.accum_steps, disable=not run.session.main,
               leave=False, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch")  # fmt: skip
    try:
        stats, step = train_one_epoch(run.model, data.loader, run.optim, run.inputs, step=step,
                                      on_batch=partial(show_progress, bar))  # fmt: skip
    except NonFiniteLoss as err:
        raise CrackSegError(
            f"training stopped at epoch {epoch + 1}: {err}; "
            f"{last_checkpoint_note(run.session.out)}. Try a lower --lr, --grad-clip 1.0 or "
            "--amp none."
        ) from err
    finally:
        bar.close()
    row = {"epoch": epoch + 1, "step": step, "lr": run.optim.lr_for_step(max(step - 1, 0)),
           "train_loss": stats["loss"], "images_per_s": stats["images_per_s"],
           "epoch_seconds": stats["seconds"]}  # fmt: skip
    if run.budget:
        row["elapsed_seconds"] = run.budget.elapsed()
    spent = run.budget is not None and run.budget.spent()
    if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs or spent:
        row.update(validate(run))
    return row


def validate(run: Run) -> dict:
    """Metrics of the evaluated weights (EMA when kept) on the val split, summed over processes;
    an undefined score is None, never a number."""
    inputs = run.inputs
    metrics = SegMetrics(threshold=run.config.threshold)
    evaluate(run.eval_model, run.data.val_loader, metrics, device=inputs.device, mean=inputs.mean,
             std=inputs.std, amp_dtype=inputs.amp_dtype, predict=run.predictor)  # fmt: skip
    metrics.all_reduce()
    return metrics.compute()


def finish(run: Run, progress: Progress, log: RunLog, seconds: float) -> dict:
    """Write summary.json and print the closing table; says so when no best.ckpt was written."""
    out = run.session.out
    summary = {"run": str(out), "epochs": len(progress.history), "best_crack_iou": progress.best,
               "seconds": seconds, "last": progress.history[-1] if progress.history else {},
               "threshold": run.config.threshold}  # fmt: skip
    if run.session.main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        log.close(summary)
        if progress.best is None:
            log.note(
                f"warning: no best.ckpt: val crack IoU was undefined at every validation (no "
                f"labelled crack or prediction in '{run.config.val_split}'); last.ckpt holds the "
                "weights"
            )
    dist.cleanup()
    return summary


def train_from(file=None, overrides=None, resume: bool = False) -> dict:
    """Resolve the config and train. A resumed run starts from the config.yaml saved in its run
    folder (flags still override it); without one there is nothing to resume."""
    overrides = dict(overrides or {})
    if resume and not file:
        out = Path(overrides.get("out") or "")
        if not out.is_dir():
            raise CrackSegError(f"--resume: run folder {out} not found; give --out RUN_DIR")
        file = out / "config.yaml"
        if not file.is_file():
            raise CrackSegError(
                f"--resume: {out} has no config.yaml (the options of the run to continue); "
                "give the folder of a run started by crackseg train, or --config RECIPE"
            )
    return train(resolve_config(file, overrides), resume=resume)
