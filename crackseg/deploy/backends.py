"""Inference backends: which model file each one runs, and loading it as an `nn.Module` with
`.config` (normalisation, window, scale, threshold), the contract `Predictor` builds on."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crackseg.errors import CrackSegError

if TYPE_CHECKING:  # no torch at import: the CLI's parsers read BACKENDS (fast --help)
    import torch
    from torch import nn

BACKENDS = ("torch", "onnxruntime")  # the first is the default
ONNX_SUFFIX = ".onnx"


def is_onnx_path(path: str | Path | None) -> bool:
    return path is not None and Path(path).suffix.lower() == ONNX_SUFFIX


def check_backend(checkpoint: str | Path | None, backend: str) -> None:
    """Before any work: `onnxruntime` runs an exported .onnx file and `torch` everything else
    (a .ckpt, a bundle, the default bundled model); a mismatch is a CrackSegError saying which."""
    if backend not in BACKENDS:
        raise CrackSegError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "onnxruntime" and checkpoint is None:
        raise CrackSegError(
            "--backend onnxruntime runs an exported model: pass --checkpoint F.onnx "
            "(write one with: crackseg export --dynamic --out F.onnx)"
        )
    if backend == "onnxruntime" and not is_onnx_path(checkpoint):
        raise CrackSegError(
            f"{checkpoint}: --backend onnxruntime runs an exported {ONNX_SUFFIX} file, not a "
            f"checkpoint; export it first: crackseg export --checkpoint {checkpoint} --dynamic "
            "--out model.onnx"
        )
    if backend == "torch" and is_onnx_path(checkpoint):
        raise CrackSegError(
            f"{checkpoint}: an exported ONNX model, which PyTorch cannot load; predict and serve "
            "run it with --backend onnxruntime"
        )


def load_for_inference(
    path: str | Path, *, backend: str = "torch", device: str | torch.device = "cpu"
) -> nn.Module:
    """The model `Predictor` runs: `load_model`'s PyTorch model, or an `OnnxModel` around an
    ONNX Runtime session (CPU; it moves tensors to and from `device` itself)."""
    check_backend(path, backend)
    if backend == "torch":
        from crackseg.engine.checkpoint import load_model

        return load_model(path, device=device)
    from crackseg.deploy.onnx_runtime import load_onnx_model

    return load_onnx_model(path)
