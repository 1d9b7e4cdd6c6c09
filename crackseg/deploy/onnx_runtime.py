"""The ONNX Runtime backend: an exported file run as an `nn.Module` whose forward maps images
(B, 3, H, W) to logits, with `.config` read from the file's metadata, so `Predictor` applies the
same normalisation, scale, tiling, TTA and threshold as with the PyTorch model.

Runs on ONNX Runtime's CPU provider with as many intra-op threads as torch uses, so the two
backends compare on the same cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from crackseg.errors import CrackSegError

METADATA_KEY = "crackseg"  # metadata_props entry holding the JSON below
FORMAT = "crackseg-onnx-v1"
INSTALL_HINT = "pip install 'crackseg[onnx]'"


def import_onnxruntime():
    """The onnxruntime module, or a CrackSegError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise CrackSegError(
            f"the onnxruntime backend needs the 'onnx' extra (onnxruntime is missing): "
            f"{INSTALL_HINT}"
        ) from None
    return onnxruntime


def session_options(threads: int | None = None, *, level: str = "all"):
    """ORT options: `threads` intra-op threads (default: torch's), one inter-op thread, and the
    graph optimisation `level` (disable, basic, extended, all)."""
    ort = import_onnxruntime()
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = levels[level]
    options.log_severity_level = 3  # errors only: no warnings about unused initialisers
    return options


def open_session(path: str | Path, *, threads: int | None = None, level: str = "all"):
    """An InferenceSession on `path`, or a CrackSegError for a missing, empty or unreadable file."""
    ort = import_onnxruntime()
    path = Path(path)
    if path.is_dir():
        raise CrackSegError(f"{path}: is a folder, not an ONNX model file")
    if not path.is_file():
        raise CrackSegError(f"{path}: ONNX model not found")
    if path.stat().st_size == 0:
        raise CrackSegError(
            f"{path}: empty file (0 bytes), not an ONNX model; was it copied fully?"
        )
    try:
        return ort.InferenceSession(str(path), session_options(threads, level=level),
                                    providers=["CPUExecutionProvider"])  # fmt: skip
    except Exception as err:  # ORT raises its own classes (InvalidProtobuf, Fail, ...)
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise CrackSegError(
            f"{path}: not a readable ONNX model ({reason}); write one with crackseg export"
        ) from None


def check_signature(session, path: Path) -> tuple[int, int] | None:
    """One float input (B, 3, H, W) and a 4-D float first output, else a CrackSegError naming
    what the file has. Returns the fixed (H, W) of a file exported without --dynamic, else None."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    wanted = "crackseg runs models with one input, images (B, 3, H, W) float32"
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise CrackSegError(f"{path}: the model has {len(inputs)} inputs ({names}); {wanted}")
    (image,) = inputs
    four_d = len(image.shape) == 4
    rgb = four_d and (image.shape[1] == 3 or not isinstance(image.shape[1], int))  # or symbolic
    if image.type != "tensor(float)" or not rgb:
        shown = "x".join(str(d) for d in image.shape)
        raise CrackSegError(
            f"{path}: input {image.name!r} is {image.type} of shape [{shown}]; {wanted}"
        )
    if not outputs or outputs[0].type != "tensor(float)" or len(outputs[0].shape) != 4:
        raise CrackSegError(
            f"{path}: the first output is not 4-D float logits (B, K, H, W); "
            "export the model with crackseg export"
        )
    height, width = image.shape[2:]
    return (height, width) if isinstance(height, int) and isinstance(width, int) else None


def read_metadata(session, path: Path) -> dict[str, Any]:
    """The crackseg JSON in the file's metadata_props, checked for its marker and entries."""
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise CrackSegError(
            f"{path}: no crackseg metadata (normalisation, window, threshold) in this ONNX file; "
            "export the checkpoint with crackseg export"
        )
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CrackSegError(f"{path}: unreadable crackseg metadata ({err}); re-export") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CrackSegError(f"{path}: crackseg metadata without the '{FORMAT}' marker; re-export")
    if not isinstance(meta.get("config"), dict) or not isinstance(meta.get("model"), dict):
        raise CrackSegError(f"{path}: crackseg metadata lacks 'config' or 'model'; re-export")
    return meta


class OnnxModel(nn.Module):
    """An ONNX Runtime session behind the PyTorch model interface `Predictor` uses: `forward`,
    `.config` (as `load_model`'s models) and `.preset` (the exported model's name)."""

    def __init__(self, session, *, path: Path, meta: dict[str, Any],
                 fixed_size: tuple[int, int] | None):  # fmt: skip
        super().__init__()
        self.session, self.path, self.fixed_size = session, path, fixed_size
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self.config = {**meta["config"], "threshold": meta.get("threshold"), "onnx": path.name}
        self.preset = dict(meta["model"])

    def __getstate__(self) -> dict:
        """Pickled without the session (predict's worker processes): each reopens the file."""
        return {**self.__dict__, "session": None}

    def forward(self, images: Tensor) -> Tensor:
        """Shapes: images (B, 3, H, W) -> logits (B, K, H, W), float32 on the images' device."""
        if self.session is None:  # unpickled in a worker: open with the worker's torch threads
            self.session = open_session(self.path)
        array = images.detach().float().cpu().contiguous().numpy()
        (logits,) = self.session.run([self.output_name], {self.input_name: array})
        return torch.from_numpy(logits).to(images.device)


def load_onnx_model(path: str | Path, *, any_size: bool = True) -> OnnxModel:
    """An exported file as an `OnnxModel`, checked (readable, one 4-D float input, crackseg
    metadata). With `any_size` (predict, serve: images and tiles come in every size), a file with
    a fixed input size is refused with the command that exports one without."""
    path = Path(path)
    session = open_session(path)
    fixed_size = check_signature(session, path)
    meta = read_metadata(session, path)
    if fixed_size and any_size:
        height, width = fixed_size
        raise CrackSegError(
            f"{path}: exported with a fixed {height}x{width} input (no --dynamic), but predict and "
            "serve feed images and tiles of any size; re-export with crackseg export --dynamic"
        )
    return OnnxModel(session, path=path, meta=meta, fixed_size=fixed_size)
