"""`crackseg train`: a run folder with config, checkpoints (last/best), metrics CSV, TensorBoard
events, curves and sample overlays; exact resume; torchrun (DDP) aware."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from crackseg.config import TrainConfig, resolve_config, save_config
from crackseg.data import build_dataset, load_index
from crackseg.data.holdout import with_holdout
from crackseg.engine import distributed as dist
from crackseg.engine.checkpoint import (
    model_payload,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from crackseg.engine.ema import ModelEMA
from crackseg.engine.loop import NonFiniteLoss, evaluate, train_one_epoch
from crackseg.engine.schedule import lr_at
from crackseg.engine.setup import (
    create_model,
    eval_loader,
    param_groups,
    resolve_amp,
    resolve_device,
    train_loader,
)
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor
from crackseg.losses import build_loss
from crackseg.metrics import SegMetrics
from crackseg.run_log import RunLog


def predict_scale(dataset, image_size: int, resize: str) -> float:
    """How training rescaled the images (train size / native size), reused at prediction time."""
    if resize == "native":
        return 1.0
    h, w = dataset.items[0].load_image().shape[:2]
    return image_size / ((h + w) / 2)


def show_progress(bar: tqdm, stats: dict) -> None:
    bar.update(1)
    bar.set_postfix(loss=f"{stats['loss']:.3f}", img_s=f"{stats['images_per_s']:.1f}")


def resume_state(out: Path) -> dict | None:
    last = out / "last.ckpt"
    return read_checkpoint(last) if last.is_file() else None


def train(config: TrainConfig, *, resume: bool = False) -> dict:
    """Train per `config`; returns the summary (also written to summary.json)."""
    device = resolve_device(config.device)
    rank, world = dist.init_distributed(device)
    device = dist.local_device(device, world)
    out, main = Path(config.out), dist.is_main_process()
    ckpt = resume_state(out) if resume else None
    if resume and ckpt is None:
        raise CrackSegError(f"--resume: no {out / 'last.ckpt'} to resume from")
    if not resume and (out / "last.ckpt").exists():
        raise CrackSegError(
            f"{out} already holds a run; pass --resume to continue it or a new --out"
        )
    torch.manual_seed(config.seed)
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
    amp_dtype = resolve_amp(config.amp, device)

    index = load_index(config.data)
    if config.val_split == "val":  # a dataset without one gets a grouped hold-out of train
        index = with_holdout(index, seed=config.seed)
    if main and index.notes:
        print("\n".join(f"note: {n}" for n in index.notes), flush=True)
    train_set = build_dataset(index, "train", image_size=config.image_size,
                              resize=config.resize, augment=config.augment, seed=config.seed,
                              compact=True, crop=config.crop)  # fmt: skip
    val_set = build_dataset(index, config.val_split, image_size=config.image_size,
                            resize="native")  # fmt: skip
    loader = train_loader(train_set, batch_size=config.batch_size, workers=config.workers,
                          seed=config.seed, rank=rank, world=world)  # fmt: skip
    val_loader = eval_loader(val_set, batch_size=config.batch_size, workers=min(config.workers, 1),
                             rank=rank, world=world)  # fmt: skip
    scale = predict_scale(train_set, config.image_size, config.resize)
    config_dict = {**config.to_dict(), "predict_scale": scale}

    model = create_model(config.model, image_size=config.image_size, model_args=config.model_args,
                         pretrained=config.pretrained).to(device)  # fmt: skip
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    ema = ModelEMA(model, decay=config.ema_decay) if config.ema else None
    loss_fn = build_loss(config.loss, class_weights=config.class_weights).to(device)
    steps_per_epoch = len(loader) // config.accum_steps
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    lr_for_step = partial(lr_at, base_lr=config.lr, total_steps=steps_per_epoch * config.epochs,
                          warmup_steps=int(config.warmup_epochs * steps_per_epoch),
                          schedule=config.schedule, min_lr_ratio=config.min_lr_ratio)  # fmt: skip

    start_epoch, step, best, history = 0, 0, -1.0, []
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scaler and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        if ema and ckpt.get("ema"):
            ema.load_state_dict(ckpt["ema"], ckpt["ema_updates"])
        start_epoch, step, best, history = (
            ckpt["epoch"],
            ckpt["step"],
            ckpt["best"],
            ckpt["history"],
        )
        set_rng_state(ckpt["rng"])
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    log = RunLog(out, enabled=main, resume=ckpt is not None)
    if main:
        save_config(config, out / "config.yaml")
    eval_model = ema.module if ema else model
    predictor = Predictor(getattr(eval_model, "module", eval_model), window=config.image_size,
                          mean=config.mean, std=config.std, device=device, scale=scale,
                          amp_dtype=amp_dtype, channels_last=config.channels_last)  # fmt: skip
    started = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        train_set.set_epoch(epoch)
        loader.sampler.set_epoch(epoch)
        bar = tqdm(total=steps_per_epoch * config.accum_steps, disable=not main, leave=False,
                   desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch")  # fmt: skip
        try:
            stats, step = train_one_epoch(
                model, loader, optimizer=optimizer, loss_fn=loss_fn, lr_for_step=lr_for_step,
                step=step, device=device, mean=config.mean, std=config.std, amp_dtype=amp_dtype,
                scaler=scaler, accum_steps=config.accum_steps, grad_clip=config.grad_clip,
                ema=ema, max_steps=config.max_steps_per_epoch, channels_last=config.channels_last,
                on_batch=partial(show_progress, bar),
            )  # fmt: skip
        except NonFiniteLoss as err:
            last = out / "last.ckpt"
            kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint yet"
            raise CrackSegError(
                f"training stopped at epoch {epoch + 1}: {err}; {kept}. Try a lower --lr, "
                "--grad-clip 1.0 or --amp none."
            ) from err
        finally:
            bar.close()
        row = {"epoch": epoch + 1, "step": step, "lr": lr_for_step(max(step - 1, 0)),
               "train_loss": stats["loss"], "images_per_s": stats["images_per_s"],
               "epoch_seconds": stats["seconds"]}  # fmt: skip
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            metrics = SegMetrics(threshold=config.threshold)
            evaluate(eval_model, val_loader, metrics, device=device, mean=config.mean,
                     std=config.std, amp_dtype=amp_dtype, predict=predictor)  # fmt: skip
            metrics.all_reduce()
            row.update(metrics.compute())
        history.append(row)
        is_best = row.get("crack_iou", -1.0) > best
        best = max(best, row.get("crack_iou", -1.0))
        if main:
            payload = {**model_payload(model), "config": config_dict, "epoch": epoch + 1,
                       "step": step, "best": best, "history": history,
                       "optimizer": optimizer.state_dict(),
                       "scaler": scaler.state_dict() if scaler else None,
                       "ema": ema.state_dict() if ema else None,
                       "ema_updates": ema.updates if ema else 0, "rng": rng_state()}  # fmt: skip
            save_checkpoint(payload, out / "last.ckpt")
            if is_best:
                slim = {k: payload[k] for k in ("model", "state_dict", "config", "ema", "epoch")}
                save_checkpoint({**slim, "metrics": row}, out / "best.ckpt")
            log.epoch(row, history, predictor, val_set, config.num_samples)
        dist.barrier()
        if config.time_limit and time.perf_counter() - started > 60 * config.time_limit:
            log.note(f"time limit of {config.time_limit} min reached after epoch {epoch + 1}")
            break
    summary = {"run": str(out), "epochs": len(history), "best_crack_iou": best,
               "seconds": time.perf_counter() - started, "last": history[-1] if history else {}}  # fmt: skip
    if main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        log.close(summary)
    dist.cleanup()
    return summary


def train_from(file=None, overrides=None, resume: bool = False) -> dict:
    """Resolve the config (a resumed run starts from its saved config.yaml) and train."""
    overrides = dict(overrides or {})
    if resume and not file and overrides.get("out"):
        saved = Path(overrides["out"]) / "config.yaml"
        file = saved if saved.is_file() else None
    return train(resolve_config(file, overrides), resume=resume)


__all__ = ["train", "train_from"]
