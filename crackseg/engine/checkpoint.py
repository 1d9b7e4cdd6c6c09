"""Self-describing, atomically written checkpoints that load without unpickling code.

A checkpoint is a plain dict of tensors and Python primitives saved with `torch.save` and read back
with `torch.load(weights_only=True)`: {"format", "model": {"name", "overrides"}, "config",
"state_dict", and for resuming "optimizer", "scaler", "ema", "rng", "epoch", "step", "best", ...}.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crackseg.errors import CrackSegError
from crackseg.models import build_model

FORMAT = "crackseg-checkpoint-v1"


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path` (atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load safely (`weights_only=True`); a clear error for missing, corrupt or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CrackSegError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CrackSegError(f"{path}: not a readable checkpoint ({type(err).__name__})") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CrackSegError(f"{path}: not a crackseg checkpoint (no '{FORMAT}' marker)")
    return ckpt


def model_payload(model: nn.Module) -> dict[str, Any]:
    """What `load_model` needs: the preset name, its overrides, and the weights."""
    module = getattr(model, "module", model)  # unwrap DDP
    return {"model": dict(module.preset), "state_dict": module.state_dict()}


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model stored in a checkpoint (no model flags needed), in eval mode.

    The checkpoint's config (normalisation, image size, threshold) is attached as `model.config`.
    """
    ckpt = read_checkpoint(path)
    spec = ckpt["model"]
    model = build_model(spec["name"], **spec["overrides"])
    weights = ckpt.get("ema") or ckpt["state_dict"]  # EMA weights are the ones evaluated
    model.load_state_dict(weights)
    model.config = ckpt.get("config", {})
    return model.to(device).eval()


def rng_state() -> dict[str, Any]:
    """Every RNG a training step draws from, in a weights_only-loadable form."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
