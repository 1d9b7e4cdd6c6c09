"""`crackseg train`: options from a YAML recipe (--config) overridden by flags."""

from __future__ import annotations

import argparse
from pathlib import Path

# flag -> (type, help); every flag defaults to None = "not given" so the YAML value stands
FLAGS = {
    "data": (str, "dataset folder or .yaml (Ultralytics, Roboflow YOLO/COCO, mask folders)"),
    "model": (str, "model preset (see `crackseg models`), default unet_small"),
    "epochs": (int, "number of epochs"),
    "batch_size": (int, "images per batch (per process under torchrun)"),
    "image_size": (int, "training side in pixels (images are stretched to it by default)"),
    "out": (str, "run folder (default runs/<model>, numbered if it exists)"),
    "lr": (float, "peak learning rate of AdamW"),
    "weight_decay": (float, "AdamW weight decay"),
    "schedule": (str, "cosine or poly decay after warmup"),
    "warmup_epochs": (float, "linear warmup length in epochs"),
    "loss": (str, "loss spec, e.g. ce+dice, 0.5*ce+dice, focal, tversky"),
    "augment": (str, "augmentation level: none, light, default, strong"),
    "resize": (str, "stretch (Roboflow's default), letterbox or native"),
    "crop": (int, "train on random crops of this side (e.g. with --resize native)"),
    "val_split": (str, "split used for validation (default val)"),
    "amp": (str, "mixed precision: auto, none, bf16, fp16"),
    "grad_clip": (float, "clip the gradient norm (0 = off)"),
    "accum_steps": (int, "accumulate gradients over this many batches"),
    "ema_decay": (float, "EMA decay (with --ema)"),
    "seed": (int, "random seed"),
    "device": (str, "auto, cpu, cuda or cuda:N"),
    "workers": (int, "data loading processes"),
    "pretrained": (str, "timm ViT weights (.safetensors/.pth) for the encoder"),
    "time_limit": (float, "stop after the epoch that passes this many minutes"),
    "max_steps_per_epoch": (int, "cap the optimizer steps per epoch (quick runs)"),
    "threshold": (float, "crack probability threshold for the metrics"),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on a crack dataset",
        description="Train a segmentation model. Options come from defaults < --config YAML < "
        "flags; the resolved config, checkpoints (last.ckpt, best.ckpt by val crack IoU), "
        "metrics.csv, TensorBoard events, curves.png and sample overlays go to the run folder. "
        "Runs under torchrun use DistributedDataParallel.",
        epilog="example: crackseg train --data crack-seg.yaml --model segmenter_vit_tiny_patch16_mask "
        "--epochs 20 --batch-size 8 --image-size 416 --out runs/vit",
    )
    p.add_argument("--config", help="YAML recipe (see configs/)")
    for name, (kind, text) in FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text)
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset argument, e.g. depth=6 (repeatable)")  # fmt: skip
    p.add_argument("--class-weights", type=float, nargs="+", default=None)
    p.add_argument("--ema", action="store_true", default=None, help="keep an EMA of the weights")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    p.set_defaults(func=run)


def parse_model_args(pairs: list[str]) -> dict:
    import yaml

    from crackseg.errors import CrackSegError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CrackSegError(f"--model-arg {pair!r}: expected KEY=VALUE, e.g. depth=6")
        out[key] = yaml.safe_load(value)
    return out


def next_run_dir(base: Path) -> Path:
    """runs/x, then runs/x2, runs/x3 ... (never overwrite a finished run)."""
    if not base.exists():
        return base
    n = 2
    while Path(f"{base}{n}").exists():
        n += 1
    return Path(f"{base}{n}")


def run(args: argparse.Namespace) -> int:
    from crackseg.config import read_yaml
    from crackseg.errors import CrackSegError
    from crackseg.train import train_from

    overrides = {name: getattr(args, name) for name in FLAGS}
    overrides["class_weights"], overrides["ema"] = args.class_weights, args.ema
    if args.model_arg:
        overrides["model_args"] = parse_model_args(args.model_arg)
    if args.resume and not overrides["out"]:
        raise CrackSegError("--resume needs --out RUN_DIR (the run to continue)")
    if not overrides["out"]:
        model = overrides["model"] or (read_yaml(args.config).get("model") if args.config else None)
        overrides["out"] = str(next_run_dir(Path("runs") / (model or "unet_small")))
    if not args.resume and not overrides["data"] and not args.config:
        raise CrackSegError("--data is required (a dataset folder or .yaml), or a --config recipe")
    train_from(args.config, overrides, resume=args.resume)
    return 0
