"""Training configuration: dataclass defaults < YAML file (--config) < CLI flags, then frozen.

Each option is declared once, as a `TrainConfig` field with its type, default and help text; the
`crackseg train` flags and the YAML type checks are generated from the fields. Every option is
checked once (`TrainConfig.problems`) before any work, for YAML and flags alike. Only the entry
points read the config; modules get explicit keyword arguments. The resolved config is written to
the run folder and stored in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from crackseg.conventions import DEFAULT_THRESHOLD, IMAGENET_MEAN, IMAGENET_STD
from crackseg.errors import CrackSegError

COMMAND_LINE = "command line"


def option(default: Any, help: str) -> Any:
    """A config field with its help text (the `crackseg train` flag is generated from it)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    data: str = option(
        "", "dataset folder or .yaml (Ultralytics, Roboflow YOLO/COCO, mask folders)"
    )
    model: str = option("unet_small", "model preset (see `crackseg models`)")
    model_args: dict = option({}, "preset overrides, e.g. {depth: 6}")
    pretrained: str | None = option(None, "timm ViT weights (.safetensors/.pth) for the encoder")
    init: str | None = option(
        None,
        "start from the weights of a crackseg checkpoint or bundled model (its preset unless "
        "--model is given; a new optimiser and schedule): fine-tuning, or a longer run that "
        "continues a shorter one",
    )
    extra_data: list[str] = option(
        [], "more datasets whose train split joins --data's train (validation stays on --data)"
    )
    out: str = option("runs/train", "run folder (default runs/<model>, numbered if it exists)")
    epochs: int = option(20, "number of epochs")
    batch_size: int = option(8, "images per batch (per process under torchrun)")
    image_size: int = option(416, "training side in pixels (images are stretched to it by default)")
    resize: str = option("stretch", "stretch (Roboflow's default), letterbox or native")
    crop: int | None = option(None, "train on random crops of this side, after resizing")
    augment: str = option("default", "augmentation level: none, light, photo, default, strong")
    val_split: str = option("val", "split used for validation")
    lr: float = option(1e-3, "peak learning rate of AdamW")
    weight_decay: float = option(1e-2, "AdamW weight decay")
    warmup_epochs: float = option(1.0, "linear warmup length in epochs")
    schedule: str = option("cosine", "cosine or poly decay after warmup")
    min_lr_ratio: float = option(0.01, "final learning rate as a fraction of --lr")
    loss: str = option("ce+dice", "loss spec, e.g. ce+dice, 0.5*ce+dice, focal, tversky, ce+lovasz")
    class_weights: list[float] | None = option(None, "one loss weight per class (ce and focal)")
    allow_bad_labels: bool = option(False, "train even when many items have broken labels")
    amp: str = option("auto", "mixed precision: auto, none, bf16, fp16")
    grad_clip: float | None = option(1.0, "clip the gradient norm (0 = off)")
    accum_steps: int = option(1, "accumulate gradients over this many batches")
    ema: bool = option(False, "keep an EMA of the weights (evaluated and saved)")
    ema_decay: float = option(0.999, "EMA decay, in [0, 1)")
    seed: int = option(0, "random seed")
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    workers: int = option(2, "data loading processes (0 = in the main process)")
    threshold: float = option(DEFAULT_THRESHOLD, "crack probability threshold for the metrics")
    mean: tuple[float, float, float] = option(IMAGENET_MEAN, "per-channel normalisation mean")
    std: tuple[float, float, float] = option(IMAGENET_STD, "per-channel normalisation std")
    time_limit: float | None = option(None, "stop after the epoch that passes this many minutes")
    budget_schedule: bool = option(
        False,
        "with --time-limit: the LR decays over the time budget and training stops "
        "mid-epoch when it is spent, then validates (equal-budget model comparisons)",
    )
    max_steps_per_epoch: int | None = option(None, "cap the optimizer steps per epoch")
    eval_every: int = option(1, "validate every this many epochs (and after the last)")
    num_samples: int = option(4, "sample overlays written per epoch")
    deterministic: bool = option(False, "use only deterministic torch algorithms")
    channels_last: bool = option(True, "NHWC memory format (1.4x faster bf16 conv training on CPU)")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    def problems(self) -> list[tuple[str, str]]:
        """(option, what is wrong) for every value out of range; empty when all are fine."""
        return list(_problems(self))

    def validate(self, sources: dict[str, str] | None = None) -> TrainConfig:
        """Raise a one-line CrackSegError for the first bad option, naming where it came from."""
        for key, problem in self.problems():
            source = (sources or {}).get(key)
            raise CrackSegError(f"{option_label(key, source, getattr(self, key))}: {problem}")
        return self


FIELDS = {f.name: f for f in fields(TrainConfig)}
TYPES = typing.get_type_hints(TrainConfig)


# smallest allowed value of the whole-number options (None stays allowed where the type says so)
WHOLE_MIN = {"epochs": 1, "batch_size": 1, "image_size": 8, "crop": 8, "accum_steps": 1,
             "workers": 0, "seed": 0, "max_steps_per_epoch": 1, "eval_every": 1,
             "num_samples": 0}  # fmt: skip


def _finite(value: float, low: float, high: float = math.inf, *, open_low: bool = False) -> bool:
    above = value > low if open_low else value >= low
    return math.isfinite(value) and above and value <= high


def _problems(c: TrainConfig) -> typing.Iterator[tuple[str, str]]:
    """Ranges and choices of every option; the choices come from the modules that use them."""
    from crackseg.data.transforms import AUGMENT_LEVELS, RESIZE_MODES
    from crackseg.engine.schedule import SCHEDULES
    from crackseg.engine.setup import AMP_MODES
    from crackseg.losses import build_loss
    from crackseg.models import list_models

    for key, low in WHOLE_MIN.items():
        if getattr(c, key) is not None and getattr(c, key) < low:
            yield key, f"must be a whole number >= {low}"
    ranges = {  # key: (ok, what it must be)
        "lr": (_finite(c.lr, 0, open_low=True), "a finite number > 0"),
        "weight_decay": (_finite(c.weight_decay, 0), "a finite number >= 0"),
        "warmup_epochs": (_finite(c.warmup_epochs, 0), "a finite number >= 0"),
        "min_lr_ratio": (_finite(c.min_lr_ratio, 0, 1), "a number in [0, 1]"),
        "grad_clip": (c.grad_clip is None or _finite(c.grad_clip, 0), "a number >= 0 (0 = off)"),
        "ema_decay": (_finite(c.ema_decay, 0) and c.ema_decay < 1, "a number in [0, 1)"),
        "threshold": (_finite(c.threshold, 0, 1, open_low=True), "a probability in (0, 1]"),
        "time_limit": (c.time_limit is None or _finite(c.time_limit, 0, open_low=True),
                       "a number of minutes > 0"),
        "mean": (all(_finite(m, 0, 1) for m in c.mean), "3 numbers in [0, 1]"),
        "std": (all(_finite(s, 0, open_low=True) for s in c.std), "3 numbers > 0"),
    }  # fmt: skip
    for key, (ok, what) in ranges.items():
        if not ok:
            yield key, f"must be {what}"
    if c.budget_schedule and c.time_limit is None:
        yield "budget_schedule", "needs --time-limit MINUTES (the budget it spreads the LR over)"
    choices = {"schedule": SCHEDULES, "amp": AMP_MODES, "resize": RESIZE_MODES,
               "augment": AUGMENT_LEVELS, "model": list_models()}  # fmt: skip
    for key, allowed in choices.items():
        if getattr(c, key) not in allowed:
            yield key, f"unknown {key} {getattr(c, key)!r}; expected one of {', '.join(allowed)}"
    if c.pretrained is not None and not Path(c.pretrained).is_file():
        yield "pretrained", "file not found"
    if c.init is not None:
        from crackseg.engine.checkpoint import resolve_model_ref

        try:
            if not resolve_model_ref(c.init).is_file():
                yield "init", "no such checkpoint file"
        except CrackSegError as err:
            yield "init", str(err)
    for extra in c.extra_data:
        if not Path(extra).expanduser().exists():
            yield "extra_data", f"{extra}: no such file or folder"
    try:
        build_loss(c.loss, class_weights=c.class_weights)
    except (CrackSegError, ValueError) as err:
        yield ("class_weights" if "class_weights" in str(err) else "loss"), str(err)


def option_label(key: str, source: str | None, value: Any = None) -> str:
    """How an error names an option: `--batch-size 0` for a flag, `r.yaml: option 'lr'` for YAML."""
    if source == COMMAND_LINE:
        shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        return f"--{key.replace('_', '-')} {shown}"
    return f"{source}: option {key!r}" if source else f"option {key!r}"


def value_type(key: str) -> tuple[type, tuple, bool]:
    """(container or scalar type, element types, None allowed) of a field, from its annotation."""
    hint = TYPES[key]
    args = typing.get_args(hint)
    nullable = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if nullable:
        hint = next(a for a in args if a is not type(None))
    return typing.get_origin(hint) or hint, typing.get_args(hint), nullable


def _scalar(kind: type, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise ValueError
        return value
    if kind in (int, float):
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if kind is int and number != int(number):
            raise ValueError
        return kind(number)
    if kind is str:
        if isinstance(value, (list, tuple, dict)):
            raise ValueError
        return str(value)
    if kind is dict and not isinstance(value, dict):
        raise ValueError
    return value


def coerce(key: str, value: Any, source: str) -> Any:
    """Check and convert one option: YAML reads `1e-3` as a string, flags arrive typed."""
    kind, elements, nullable = value_type(key)
    if value is None and nullable:
        return None
    try:
        if kind in (list, tuple):
            if not isinstance(value, (list, tuple)):
                raise ValueError
            fixed = kind is tuple and Ellipsis not in elements
            if fixed and len(value) != len(elements):
                raise ValueError
            element = elements[0] if elements else object
            return kind(_scalar(element, v) if element is not object else v for v in value)
        return _scalar(kind, value)
    except (TypeError, ValueError, OverflowError):
        expected = kind.__name__
        if kind is tuple and elements:
            expected = f"{len(elements)} numbers"
        elif kind is list and elements:
            expected = f"a list of {elements[0].__name__}"
        raise CrackSegError(
            f"{option_label(key, source, value)} expects {expected}, got {value!r}"
        ) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CrackSegError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise CrackSegError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise CrackSegError(f"{path}: expected a mapping of option: value")
    return data


def resolve_config(
    file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Defaults < YAML < overrides (None values in overrides mean 'not given'), then validated.
    With --init and no model named anywhere, the model is the preset of the --init weights; with
    no run folder named, it is runs/<model>, numbered if that exists."""
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    sources = [(str(file), read_yaml(file))] if file else []
    sources.append((COMMAND_LINE, {k: v for k, v in (overrides or {}).items() if v is not None}))
    for source, mapping in sources:
        for key, value in mapping.items():
            key = str(key).replace("-", "_")
            if key not in FIELDS:
                raise CrackSegError(f"{source}: unknown option {key!r}; known: {', '.join(FIELDS)}")
            values[key], origin[key] = coerce(key, value, source), source
    if values.get("init") and "model" not in values:
        _model_from_init(values, origin)
    if not values.get("out"):  # "" too: a run folder must have a name
        values["out"] = str(
            next_run_dir(Path("runs") / values.get("model", FIELDS["model"].default))
        )
    return TrainConfig(**values).validate(origin)


def next_run_dir(base: Path) -> Path:
    """runs/x, then runs/x2, runs/x3 ... (never overwrite a finished run)."""
    if not base.exists():
        return base
    n = 2
    while Path(f"{base}{n}").exists():
        n += 1
    return Path(f"{base}{n}")


def _model_from_init(values: dict[str, Any], origin: dict[str, str]) -> None:
    """--init without --model: train the preset (and overrides) the init weights were built with.
    An unreadable --init is left to validation and loading, which name the problem."""
    from crackseg.engine.checkpoint import model_spec

    try:
        name, overrides = model_spec(values["init"])
    except CrackSegError:
        return
    source = f"--init {values['init']}"
    values["model"], origin["model"] = name, source
    if "model_args" not in values:
        # the training side is --image-size's (every preset takes it), not the weights' own
        args = {k: v for k, v in overrides.items() if k != "image_size"}
        values["model_args"], origin["model_args"] = args, source


def save_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
