"""Build step of a training run: device and processes, data (with its preflight), model and
optimisation. Everything here runs before the first batch, so every refusal is cheap."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn

from crackseg.config import TrainConfig
from crackseg.data import CrackDataset, build_dataset, load_index
from crackseg.data.holdout import with_holdout
from crackseg.data.preflight import check_training_data
from crackseg.engine import distributed as dist
from crackseg.engine.checkpoint import load_model, read_checkpoint
from crackseg.engine.ema import ModelEMA
from crackseg.engine.loop import Inputs, Optimisation
from crackseg.engine.schedule import TimeBudget, lr_at
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
from crackseg.outputs import check_writable
from crackseg.train.guards import check_class_weights, check_crop, check_memory, training_pixels


@dataclass(frozen=True)
class Session:
    """Where this process trains: device, rank among `world` processes, run folder, precision,
    and the checkpoint to resume from (None for a new run)."""

    device: torch.device
    rank: int
    world: int
    main: bool
    out: Path
    amp_dtype: torch.dtype | None
    ckpt: dict | None


@dataclass(frozen=True)
class Data:
    train_set: CrackDataset
    val_set: CrackDataset
    loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader
    scale: float  # train size / native size, reused at prediction time


@dataclass
class Run:
    """Everything a training run holds between the build and the last epoch."""

    config: TrainConfig
    session: Session
    data: Data
    model: nn.Module  # wrapped in DistributedDataParallel after the restore step under torchrun
    optim: Optimisation
    inputs: Inputs
    steps_per_epoch: int
    predictor: Predictor  # evaluates the EMA weights when there are some
    budget: TimeBudget | None = None  # --budget-schedule: LR and stop follow the clock

    @property
    def eval_model(self) -> nn.Module:
        return self.optim.ema.module if self.optim.ema else self.model


def start_session(config: TrainConfig, *, resume: bool) -> Session:
    """Check the run folder against --resume, pick the device, join torchrun, seed torch."""
    if not config.data:
        raise CrackSegError("option 'data' is empty: give --data DATASET (a folder or .yaml)")
    out, last = Path(config.out), Path(config.out) / "last.ckpt"
    if resume and not last.is_file():
        raise CrackSegError(f"--resume: no {last} to resume from")
    if not resume and last.exists():
        raise CrackSegError(
            f"{out} already holds a run; pass --resume to continue it or a new --out"
        )
    check_writable(out)  # before the data is read and the model built
    device = resolve_device(config.device)
    amp_dtype = resolve_amp(config.amp, device)
    ckpt = read_checkpoint(last) if resume else None
    rank, world = dist.init_distributed(device)
    device = dist.local_device(device, world)
    torch.manual_seed(config.seed)
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
    return Session(device, rank, world, dist.is_main_process(), out, amp_dtype, ckpt)


def predict_scale(dataset: CrackDataset, image_size: int, resize: str) -> float:
    """How training rescaled the images (train size / native size), reused at prediction time."""
    if resize == "native":
        return 1.0
    h, w = dataset.items[0].load_image().shape[:2]
    return image_size / ((h + w) / 2)


def build_data(config: TrainConfig, session: Session) -> Data:
    """Index (with a hold-out when there is no val split), preflight summary, datasets, loaders."""
    index = load_index(config.data)
    if config.val_split == "val":  # a dataset without one gets a grouped hold-out of train
        index = with_holdout(index, seed=config.seed)
    summary = check_training_data(index, ["train", config.val_split],
                                  allow_bad_labels=config.allow_bad_labels)  # fmt: skip
    for extra in config.extra_data:  # each source checked as `data inspect` would, then joined
        extra_index = load_index(extra)
        summary += check_training_data(extra_index, ["train"],
                                       allow_bad_labels=config.allow_bad_labels)  # fmt: skip
        index.splits["train"] = index.splits["train"] + extra_index.split("train")
    if config.extra_data:
        summary.append(f"training on {len(index.splits['train'])} items from "
                       f"{1 + len(config.extra_data)} datasets")  # fmt: skip
    if session.main:  # the counts and problems `data inspect` shows, notes included
        print("\n".join(summary), flush=True)
    train_set = build_dataset(index, "train", image_size=config.image_size,
                              resize=config.resize, augment=config.augment, seed=config.seed,
                              compact=True, crop=config.crop)  # fmt: skip
    val_set = build_dataset(index, config.val_split, image_size=config.image_size,
                            resize="native")  # fmt: skip
    check_crop(config, train_set.items)
    rank, world = session.rank, session.world
    loader = train_loader(train_set, batch_size=config.batch_size, workers=config.workers,
                          seed=config.seed, rank=rank, world=world)  # fmt: skip
    val_loader = eval_loader(val_set, batch_size=config.batch_size, workers=min(config.workers, 1),
                             rank=rank, world=world)  # fmt: skip
    scale = predict_scale(train_set, config.image_size, config.resize)
    return Data(train_set, val_set, loader, val_loader, scale)


def build_run(config: TrainConfig, session: Session) -> Run:
    """Data, then the model (checked against the class weights and the memory it would need),
    the optimiser with its schedule, loss, scaler and EMA, and the validation predictor."""
    data = build_data(config, session)
    device = session.device
    model = create_model(config.model, image_size=config.image_size, model_args=config.model_args,
                         pretrained=config.pretrained)  # fmt: skip
    if config.init:
        init_weights(model, config.init, config.model)
    check_class_weights(config, model)
    check_memory(model, config, pixels=training_pixels(config, data.train_set.items),
                 device=device)  # fmt: skip
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    steps_per_epoch = len(data.loader) // config.accum_steps
    if steps_per_epoch == 0:  # the weights would never change
        raise CrackSegError(
            f"--accum-steps {config.accum_steps}: an epoch has only {len(data.loader)} batches "
            f"of {config.batch_size}; lower --accum-steps or --batch-size"
        )
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    budget = time_budget(config, session, warmup_steps)
    lr_for_step = budget or partial(lr_at, base_lr=config.lr, warmup_steps=warmup_steps,
                                    total_steps=steps_per_epoch * config.epochs,
                                    schedule=config.schedule, min_lr_ratio=config.min_lr_ratio)  # fmt: skip
    fp16 = session.amp_dtype == torch.float16
    optim = Optimisation(
        optimizer=torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr),
        loss_fn=build_loss(config.loss, class_weights=config.class_weights).to(device),
        lr_for_step=lr_for_step,
        scaler=torch.amp.GradScaler("cuda") if fp16 else None,
        accum_steps=config.accum_steps,
        grad_clip=config.grad_clip,
        ema=ModelEMA(model, decay=config.ema_decay) if config.ema else None,
        max_steps=config.max_steps_per_epoch,
        stop_when=budget.spent if budget else None,
    )
    inputs = Inputs(device, config.mean, config.std, session.amp_dtype, config.channels_last)
    evaluated = optim.ema.module if optim.ema else model
    predictor = Predictor(evaluated, window=config.image_size, mean=config.mean, std=config.std,
                          device=device, scale=data.scale, amp_dtype=session.amp_dtype,
                          channels_last=config.channels_last)  # fmt: skip
    return Run(config, session, data, model, optim, inputs, steps_per_epoch, predictor, budget)


def init_weights(model: nn.Module, ref: str, preset: str) -> None:
    """--init: copy the weights of a checkpoint or bundled model of the same architecture."""
    try:
        source = load_model(ref)
    except CrackSegError as err:
        raise CrackSegError(f"--init {ref}: {err}") from None
    try:
        model.load_state_dict(source.state_dict())
    except RuntimeError as err:
        reason = " ".join(str(err).split())[:160]
        source_preset = (getattr(source, "preset", None) or {}).get("name")
        hint = (f"train it with --model {source_preset}" if source_preset and source_preset != preset
                else "give a checkpoint of the same preset and model args")  # fmt: skip
        raise CrackSegError(
            f"--init {ref}: its weights do not fit --model {preset} ({reason}); {hint}"
        ) from None


def time_budget(config: TrainConfig, session: Session, warmup_steps: int) -> TimeBudget | None:
    """With --budget-schedule, the wall-clock budget (minus what a resumed run already spent)."""
    if not config.budget_schedule:
        return None
    history = session.ckpt["history"] if session.ckpt else []
    elapsed = history[-1].get("elapsed_seconds", 0.0) if history else 0.0
    return TimeBudget(60 * config.time_limit, base_lr=config.lr, warmup_steps=warmup_steps,
                      schedule=config.schedule, min_lr_ratio=config.min_lr_ratio,
                      elapsed=elapsed)  # fmt: skip
