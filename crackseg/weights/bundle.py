"""Turn a training checkpoint into a bundled model: calibrate, convert, verify, write.

`bundle_checkpoint` evaluates the checkpoint on a labelled split at native size, stores the best-F1
(ODS) threshold of that split, converts the weights to fp16/bf16, keeps the conversion only when
its crack IoU stays within `MAX_IOU_DROP` of float32, and writes `NAME.safetensors` + `NAME.json`.
A bundled model is accepted in place of the checkpoint: that recalibrates it on the user's own
labelled photos (whose cracks may be drawn wider or narrower than the data it was calibrated on).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from crackseg.errors import CrackSegError
from crackseg.weights import FORMAT, MAX_BYTES, WEIGHTS_SUFFIX, read_metadata, weights_dir

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
MAX_IOU_DROP = 0.005  # a converted model may lose at most this much val crack IoU
INFERENCE_KEYS = ("image_size", "mean", "std", "predict_scale", "channels_last", "num_classes")


def write_bundle(
    model: nn.Module,
    folder: str | Path,
    name: str,
    *,
    dtype: str = "fp16",
    threshold: float,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `folder/name.safetensors` (floating weights cast to `dtype`) and `folder/name.json`;
    returns the weights path. Refuses a weights file over MAX_BYTES (and writes nothing)."""
    from safetensors.torch import save_file

    if dtype not in DTYPES:
        raise CrackSegError(f"--dtype {dtype}: give one of {', '.join(DTYPES)}")
    if not name or "/" in name or name.startswith("."):
        raise CrackSegError(f"--name {name!r}: give a plain file name such as crackseg-unet-v1")
    config = dict(getattr(model, "config", {}) or {})
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cast = DTYPES[dtype]
    tensors = {k: (v.to(cast) if v.is_floating_point() else v).contiguous()
               for k, v in model.state_dict().items()}  # fmt: skip
    path = folder / f"{name}{WEIGHTS_SUFFIX}"
    with tempfile.TemporaryDirectory(dir=folder) as tmp:  # size check before anything lands
        staged = Path(tmp) / path.name
        save_file(tensors, staged)
        size = staged.stat().st_size
        if size > MAX_BYTES:
            raise CrackSegError(
                f"{path}: the {dtype} weights take {size / 2**20:.1f} MB, over the "
                f"{MAX_BYTES // 2**20} MB limit of a bundled model; bundle a smaller preset"
            )
        meta = {
            "format": FORMAT,
            "name": name,
            "file": path.name,
            "model": dict(model.preset),
            "config": {k: config[k] for k in INFERENCE_KEYS if k in config},
            "threshold": float(threshold),
            "dtype": dtype,
            "size_bytes": size,
            "metrics": metrics or {},
            **(extra or {}),
        }
        staged.replace(path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def _scores(weights: Path, data, split: str, threshold: float | None, device: str) -> dict:
    from crackseg.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(weights, data, split=split, device=device, threshold=threshold)
    return result["metrics"]


def _headline(scores: dict, split: str, threshold: float) -> dict:
    keys = ("crack_iou", "crack_f1", "precision", "recall", "miou", "ods_f1", "ois_f1", "tol_f1")
    return {"split": split, "threshold": threshold, "images": int(scores["images"]),
            **{k: scores.get(k) for k in keys}}  # fmt: skip


def bundle_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    name: str,
    *,
    split: str = "val",
    dtype: str = "fp16",
    ood: str | Path | None = None,
    ood_split: str = "train",
    folder: str | Path | None = None,
    device: str = "cpu",
    description: str = "",
    default: bool = True,
    command: str | None = None,
    log=print,
) -> dict[str, Any]:
    """Calibrate, convert, verify and write a bundle; returns its metadata (see module doc)."""
    from crackseg.engine.checkpoint import load_model, resolve_model_ref

    if dtype not in DTYPES:
        raise CrackSegError(f"--dtype {dtype}: give one of {', '.join(DTYPES)}")
    folder = Path(folder) if folder is not None else weights_dir()
    start = time.perf_counter()
    checkpoint = resolve_model_ref(checkpoint)  # a bundled model's name -> its file
    if (folder / f"{name}{WEIGHTS_SUFFIX}").resolve() == checkpoint.resolve():
        raise CrackSegError(f"--name {name}: that is the model being recalibrated, and writing it "
                            "would replace it; give the new bundle its own name")  # fmt: skip
    source = _source(checkpoint)  # read before any evaluation: a bad file fails at once
    model = load_model(checkpoint)
    if not description and "recalibrated_from" in source:
        description = f"{source['recalibrated_from']} recalibrated on {data} [{split}]"
    log(f"evaluating {checkpoint} (float32) on {data} [{split}] to calibrate the threshold")
    fp32 = _scores(checkpoint, data, split, None, device)
    threshold = fp32["ods_threshold"]
    if threshold is None:
        raise CrackSegError(
            f"{data}: the {split!r} split has no labelled crack pixel, so no threshold can be "
            "calibrated; bundle with a split that has cracks (e.g. --split val)"
        )
    fp32 = _scores(checkpoint, data, split, threshold, device)
    log(f"calibrated threshold {threshold:.2f} (best F1 on {split}): float32 crack IoU "
        f"{fp32['crack_iou']:.4f}")  # fmt: skip
    kept, note = dtype, None
    overflow = fp16_overflow(model) if dtype == "fp16" else None
    if overflow:  # e.g. a BatchNorm running_var above 65504: bf16 has float32's range
        note = f"fp16 cannot hold {overflow} (|value| > 65504): stored as bf16"
        log(f"warning: {note}")
        dtype = kept = "bf16"
    with tempfile.TemporaryDirectory() as tmp:
        trial = write_bundle(model, tmp, name, dtype=dtype, threshold=threshold)
        converted = _scores(trial, data, split, threshold, device)
    drop = fp32["crack_iou"] - converted["crack_iou"]
    if dtype != "fp32" and drop > MAX_IOU_DROP:
        kept, converted = "fp32", fp32
        note = (f"{dtype} lost {drop:.4f} crack IoU (> {MAX_IOU_DROP}): kept float32 weights; "
                f"{note or ''}").rstrip("; ")  # fmt: skip
        log(f"warning: {note}")
    else:
        log(f"{dtype} crack IoU {converted['crack_iou']:.4f} (float32 {fp32['crack_iou']:.4f})")
    extra = {
        "description": description,
        "default": default,
        "metrics_fp32": _headline(fp32, split, threshold),
        "dtype_requested": dtype,
        "dtype_note": note,
        "provenance": {
            "checkpoint": str(checkpoint),
            "data": str(data),
            **source,
            "command": command,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    path = write_bundle(model, folder, name, dtype=kept, threshold=threshold,
                        metrics=_headline(converted, split, threshold), extra=extra)  # fmt: skip
    if ood is not None:
        log(f"out-of-domain check on {ood} [{ood_split}] (never trained on)")
        scores = _scores(path, ood, ood_split, threshold, device)
        meta = json.loads(path.with_suffix(".json").read_text())
        meta["metrics_ood"] = {"data": str(ood), **_headline(scores, ood_split, threshold)}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    meta = json.loads(path.with_suffix(".json").read_text())
    log(f"wrote {path} ({meta['size_bytes'] / 2**20:.2f} MB, {kept}) and {path.with_suffix('.json')}"
        f" in {time.perf_counter() - start:.0f} s")  # fmt: skip
    return meta


def _source(checkpoint: Path) -> dict[str, Any]:
    """What a bundle is made from: a training checkpoint's epoch and config, or for a bundled
    model being recalibrated, its name, former threshold and its own provenance."""
    from crackseg.engine.checkpoint import read_checkpoint

    if checkpoint.suffix == WEIGHTS_SUFFIX:
        meta = read_metadata(checkpoint)
        return {"recalibrated_from": meta.get("name", checkpoint.stem),
                "threshold_before": meta.get("threshold"),
                "source_provenance": meta.get("provenance")}  # fmt: skip
    ckpt = read_checkpoint(checkpoint)
    soup = {"soup_of": ckpt["soup"]} if ckpt.get("soup") else {}  # averaged checkpoints
    return {"epoch": ckpt.get("epoch"), "training_config": ckpt.get("config"), **soup}


def fp16_overflow(model) -> str | None:
    """The first floating tensor of `model`'s state dict whose finite values overflow float16."""
    for key, value in model.state_dict().items():
        finite = value.is_floating_point() and bool(value.isfinite().all())
        if finite and not value.to(torch.float16).isfinite().all():
            return key
    return None
