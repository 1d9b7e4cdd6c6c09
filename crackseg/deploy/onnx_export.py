"""ONNX export: a model to one .onnx file that also carries what inference needs (normalisation,
window, predict scale, threshold, model name) as JSON in its metadata_props.

The TorchScript-based exporter (`dynamo=False`) is used: on torch 2.13 the dynamo one fails on
the hybrid (torch.export cannot guard the U-Net decoder's crop sizes, which depend on symbolic
H, W) and specialises a batch of 1. Two things keep dynamic H, W honest with the tracer:
- a ViT resamples its learned positions only when the patch grid differs from the training
  grid; the trace is taken at another size, so the resampling is in the graph (at the training
  grid it resamples to the same size, an identity);
- that bicubic antialiased resampling has no TorchScript symbolic: `bicubic_aa_symbolic` maps it
  to ONNX Resize (opset 18: antialias, a = -0.5, exclude_outside), as onnxscript's torchlib does.
Nothing is trusted: every export is run in ONNX Runtime at two input sizes and compared with
PyTorch before the file is written.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from crackseg.conventions import IMAGENET_MEAN, IMAGENET_STD
from crackseg.deploy.onnx_runtime import FORMAT, METADATA_KEY, open_session
from crackseg.errors import CrackSegError

OPSET = 18  # Resize with antialias (the ViT's position resampling) needs opset 18
TOLERANCE = 1e-3  # max |logit| difference between ONNX Runtime and PyTorch an export may show
TRACE_OFFSET = (37, 53)  # dynamic: traced at (S + 37, S + 53), off any patch grid and unequal


@dataclass
class ExportReport:
    """What was written and how closely ONNX Runtime matched PyTorch on it."""

    path: Path
    dynamic: bool
    size_bytes: int
    size: tuple[int, int]  # the traced (H, W): the only one accepted without `dynamic`
    checks: list[tuple[tuple[int, ...], float]] = field(default_factory=list)  # (shape, max abs)

    def summary(self) -> str:
        shapes = " and ".join(f"{'x'.join(map(str, s))}" for s, _ in self.checks)
        worst = max(d for _, d in self.checks)
        return (f"ONNX Runtime matches PyTorch to {worst:.1e} (max abs logit) at {shapes}")  # fmt: skip


def bicubic_aa_symbolic(g, images, output_size, *_):
    """aten::_upsample_bicubic2d_aa -> ONNX Resize: PyTorch's antialiased bicubic uses Keys'
    a = -0.5 and renormalises weights over in-image samples (exclude_outside=1)."""
    batch_channels = g.op("Slice", g.op("Shape", images), g.op("Constant", value_t=torch.tensor([0])),
                          g.op("Constant", value_t=torch.tensor([2])))  # fmt: skip
    size = g.op("Cast", output_size, to_i=7)  # INT64
    sizes = g.op("Concat", batch_channels, size, axis_i=0)  # (B, C, h, w)
    empty = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
    return g.op("Resize", images, empty, empty, sizes, mode_s="cubic", cubic_coeff_a_f=-0.5,
                coordinate_transformation_mode_s="half_pixel", exclude_outside_i=1,
                antialias_i=1)  # fmt: skip


def inference_config(model: nn.Module, window: int) -> dict:
    """The settings `Predictor.from_checkpoint` reads from a model's config, for the metadata."""
    cfg = getattr(model, "config", {}) or {}
    return {"image_size": window, "mean": list(cfg.get("mean") or IMAGENET_MEAN),
            "std": list(cfg.get("std") or IMAGENET_STD),
            "predict_scale": cfg.get("predict_scale") or 1.0}  # fmt: skip


def metadata(model: nn.Module, *, window: int, dynamic: bool, size: tuple[int, int],
             source: str) -> dict:  # fmt: skip
    """The JSON stored under metadata_props["crackseg"]: enough to predict with the file alone."""
    preset = getattr(model, "preset", {"name": type(model).__name__, "overrides": {}})
    return {
        "format": FORMAT,
        "model": {"name": preset["name"], "overrides": dict(preset.get("overrides", {}))},
        "config": inference_config(model, window),
        "threshold": (getattr(model, "config", {}) or {}).get("threshold"),
        "input": {"dynamic": dynamic, "size": None if dynamic else list(size)},
        "source": source,
        "exported": {
            "torch": torch.__version__,
            "opset": OPSET,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },  # fmt: skip
    }


def _trace(model: nn.Module, sample: torch.Tensor, path: Path, *, dynamic: bool) -> None:
    from torch.onnx import register_custom_op_symbolic

    register_custom_op_symbolic("aten::_upsample_bicubic2d_aa", bicubic_aa_symbolic, OPSET)
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}
    with warnings.catch_warnings():  # TracerWarnings about shape branches (handled above) and
        warnings.simplefilter("ignore")  # the exporter's deprecation notice, not the user's concern
        torch.onnx.export(model, (sample,), str(path), input_names=["images"],
                          output_names=["logits"], dynamic_axes={"images": axes, "logits": axes},
                          opset_version=OPSET, dynamo=False)  # fmt: skip


def _add_metadata(path: Path, meta: dict) -> None:
    import onnx

    proto = onnx.load(str(path))
    proto.producer_name = "crackseg"
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _compare(model: nn.Module, path: Path, shapes: list[tuple[int, ...]]) -> list:
    """(shape, max |ORT - PyTorch| logit) per input shape, on seeded random images."""
    session = open_session(path)
    generator = torch.Generator().manual_seed(0)
    checks = []
    for shape in shapes:
        images = torch.randn(*shape, generator=generator)
        with torch.inference_mode():
            expected = model(images)
        (got,) = session.run(None, {"images": images.numpy()})
        if tuple(got.shape) != tuple(expected.shape):
            raise CrackSegError(f"export check failed: ONNX Runtime gave logits {got.shape} for "
                                f"{shape}, PyTorch {tuple(expected.shape)}; nothing written")  # fmt: skip
        checks.append((shape, float((torch.from_numpy(got) - expected).abs().max())))
    return checks


def export_onnx(model: nn.Module, out: str | Path, *, dynamic: bool, image_size: int | None = None,
                source: str = "") -> ExportReport:  # fmt: skip
    """Write `model` (float32, CPU) to `out` and check it in ONNX Runtime against PyTorch.

    `dynamic`: any batch, height and width; otherwise a fixed `image_size` square (any batch).
    `image_size` defaults to the model's training size (its config), which is also the window
    `Predictor` tiles with. The file appears only once the check has passed (atomic rename)."""
    import onnx  # noqa: F401  (fail here, before any work, when the extra is missing)

    model = model.float().cpu().eval()
    window = int((getattr(model, "config", {}) or {}).get("image_size") or 416)
    side = image_size or window
    size = (side + TRACE_OFFSET[0], side + TRACE_OFFSET[1]) if dynamic else (side, side)
    sample = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode():
            result = tuple(model(sample).shape)
    except (ValueError, RuntimeError) as err:  # e.g. a plain ViT on a size off its patch grid
        result = f"an error ({err})"
    if not (len(result) == 4 and result[0] == 2 and result[2:] == size):
        name = getattr(model, "preset", {}).get("name", type(model).__name__)
        raise CrackSegError(
            f"model {name!r} maps images {tuple(sample.shape)} to {result}, not to logits "
            "(B, K, H, W) of the same size: only segmentation models export"
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        try:
            _trace(model, sample, tmp, dynamic=dynamic)
        except Exception as err:  # an operator without an ONNX translation, and the like
            reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            raise CrackSegError(f"the model could not be exported to ONNX ({type(err).__name__}: "
                                f"{reason})") from err  # fmt: skip
        _add_metadata(tmp, metadata(model, window=side if not dynamic else window,
                                    dynamic=dynamic, size=size, source=source))  # fmt: skip
        second = (1, 3, side, side) if dynamic else (1, 3, *size)
        checks = _compare(model, tmp, [tuple(sample.shape), second])
        worst = max(d for _, d in checks)
        if not worst <= TOLERANCE:
            raise CrackSegError(f"export check failed: ONNX Runtime differs from PyTorch by "
                                f"{worst:.2e} (max abs logit, > {TOLERANCE}); nothing written")  # fmt: skip
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(out, dynamic, out.stat().st_size, size, checks)
