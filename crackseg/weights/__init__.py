"""Model weights shipped inside the package: discovery, metadata and the `--checkpoint` default.

A bundled model is two files in this folder: `NAME.safetensors` (fp16/bf16/fp32 weights) and
`NAME.json` (format marker, model preset and overrides, the config inference needs, the calibrated
threshold, metrics and provenance). Loading (with the same checks as a checkpoint) lives in
`crackseg.engine.checkpoint.load_model`; writing a bundle in `crackseg.weights.bundle`.

No torch here: `crackseg --help` and the resolver stay fast. `CRACKSEG_WEIGHTS_DIR` points the
lookup at another folder (tests build bundles in a tmp folder).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crackseg.errors import CrackSegError

FORMAT = "crackseg-bundle-v1"
ENV_DIR = "CRACKSEG_WEIGHTS_DIR"
WEIGHTS_SUFFIX = ".safetensors"
MAX_BYTES = 20 * 1024 * 1024  # a bundled weights file stays under 20 MB (package size)
NO_BUNDLE = (
    "no bundled model in this installation; pass --checkpoint with a .ckpt from crackseg train"
)


@dataclass(frozen=True)
class BundledModel:
    """One bundled model as its metadata describes it (the weights are not read)."""

    name: str
    file: Path  # the .safetensors weights
    size_bytes: int
    preset: str
    dtype: str
    threshold: float
    metrics: dict[str, Any]  # at `threshold`, on the split named in metrics["split"]
    description: str
    default: bool = False
    meta: dict[str, Any] = field(default_factory=dict, repr=False)  # the whole JSON

    @property
    def crack_iou(self) -> float | None:
        return self.metrics.get("crack_iou")


def weights_dir() -> Path:
    """The folder holding bundled models: `$CRACKSEG_WEIGHTS_DIR` when set, else this package."""
    override = os.environ.get(ENV_DIR)
    return Path(override) if override else Path(__file__).resolve().parent


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON next to a bundle's weights (`NAME.json` for `NAME.safetensors`), checked."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise CrackSegError(
            f"{path}: no metadata file {meta_path.name} next to it; a bundled model is "
            f"NAME{WEIGHTS_SUFFIX} + NAME.json written by `crackseg models bundle`"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CrackSegError(
            f"{meta_path}: unreadable metadata ({err}); rewrite the bundle"
        ) from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CrackSegError(f"{meta_path}: not crackseg bundle metadata (no '{FORMAT}' marker)")
    spec, config = meta.get("model"), meta.get("config")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise CrackSegError(f"{meta_path}: no 'model' entry with a preset name; rewrite the bundle")
    if not isinstance(config, dict):
        raise CrackSegError(f"{meta_path}: no 'config' entry (normalisation, image size)")
    return meta


def _info(weights: Path) -> BundledModel:
    meta = read_metadata(weights)
    return BundledModel(
        name=weights.stem,
        file=weights,
        size_bytes=weights.stat().st_size,
        preset=meta["model"]["name"],
        dtype=str(meta.get("dtype", "?")),
        threshold=float(meta.get("threshold", meta["config"].get("threshold", 0.5))),
        metrics=dict(meta.get("metrics") or {}),
        description=str(meta.get("description", "")),
        default=bool(meta.get("default", False)),
        meta=meta,
    )


def bundled_models() -> list[BundledModel]:
    """Every bundled model in `weights_dir()`: those marked default first, the newest (by its
    provenance's creation time) first among them, then the others by name. So a model bundled
    as the default takes over from the shipped one without anyone editing the shipped JSON."""
    folder = weights_dir()
    found = [_info(p) for p in sorted(folder.glob(f"*{WEIGHTS_SUFFIX}"))] if folder.is_dir() else []
    defaults = sorted((m for m in found if m.default), key=_created, reverse=True)  # stable:
    return defaults + [m for m in found if not m.default]  # equal times stay in name order


def _created(model: BundledModel) -> str:
    """The bundle's creation time, ISO 8601 UTC (sorts as text); "" when it has none."""
    provenance = model.meta.get("provenance")
    created = provenance.get("created") if isinstance(provenance, dict) else None
    return created if isinstance(created, str) else ""


def default_model() -> BundledModel:
    """The model used when no checkpoint is given: the newest marked default, else the first by
    name (`bundled_models`)."""
    models = bundled_models()
    if not models:
        raise CrackSegError(NO_BUNDLE)
    return models[0]


def find_bundled(name: str) -> BundledModel | None:
    """The bundled model called `name` (None when there is none)."""
    return next((m for m in bundled_models() if m.name == name), None)


def headline(model: BundledModel) -> str:
    """'val crack IoU 0.67': the score a note about the model quotes."""
    iou, split = model.crack_iou, model.metrics.get("split", "val")
    return f"{split} crack IoU {iou:.2f}" if iou is not None else "no recorded crack IoU"


def resolve_checkpoint(path: str | Path | None) -> tuple[str | Path, str | None]:
    """What to load for a `--checkpoint` option: a given path is itself (no note); None is the
    default bundled model's weights file and a one-line note saying so (a CrackSegError when
    this installation has no bundled model)."""
    if path is not None:
        return path, None
    model = default_model()
    note = (
        f"using the bundled model {model.name} ({headline(model)}; "
        "pass --checkpoint to use your own)"
    )
    return model.file, note


__all__ = [
    "ENV_DIR",
    "FORMAT",
    "MAX_BYTES",
    "BundledModel",
    "bundled_models",
    "default_model",
    "find_bundled",
    "headline",
    "read_metadata",
    "resolve_checkpoint",
    "weights_dir",
]
