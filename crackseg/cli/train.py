"""`crackseg train`: options from a YAML recipe (--config) overridden by flags.

The flags are generated from the `TrainConfig` fields (type, help), so every option of the config
is a flag and none can drift. Every flag defaults to None = "not given", so the YAML value stands.
"""

from __future__ import annotations

import argparse

# the one option with its own syntax: repeatable KEY=VALUE pairs instead of a YAML mapping
MODEL_ARGS_FLAG = "--model-arg"


def add_config_flags(p: argparse.ArgumentParser) -> list[str]:
    """One flag per TrainConfig field; returns the field names that came from flags."""
    from crackseg.config import FIELDS, value_type

    names = []
    for name, field_ in FIELDS.items():
        kind, elements, _ = value_type(name)
        flag, text = "--" + name.replace("_", "-"), field_.metadata["help"]
        if kind is dict:
            continue
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif kind in (list, tuple):
            count = len(elements) if kind is tuple and Ellipsis not in elements else "+"
            p.add_argument(flag, type=elements[0], nargs=count, default=None, help=text)
        else:
            p.add_argument(flag, type=kind, default=None, help=text)
        names.append(name)
    return names


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
    names = add_config_flags(p)
    p.add_argument(MODEL_ARGS_FLAG, action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset argument, e.g. depth=6 (repeatable)")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly")
    p.set_defaults(func=run, config_flags=names)


def parse_model_args(pairs: list[str]) -> dict:
    import yaml

    from crackseg.errors import CrackSegError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CrackSegError(f"{MODEL_ARGS_FLAG} {pair!r}: expected KEY=VALUE, e.g. depth=6")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise CrackSegError(f"{MODEL_ARGS_FLAG} {pair!r}: {value!r} is not a value") from None
    return out


def run(args: argparse.Namespace) -> int:
    from crackseg.errors import CrackSegError
    from crackseg.train import train_from

    overrides = {name: getattr(args, name) for name in args.config_flags}
    if args.model_arg:
        overrides["model_args"] = parse_model_args(args.model_arg)
    if args.resume and not overrides["out"]:
        raise CrackSegError("--resume needs --out RUN_DIR (the run to continue)")
    if not args.resume and not overrides["data"] and not args.config:
        raise CrackSegError("--data is required (a dataset folder or .yaml), or a --config recipe")
    train_from(args.config, overrides, resume=args.resume)
    return 0
