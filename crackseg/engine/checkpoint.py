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
from torch import Tensor, nn

from crackseg import weights as bundles
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
    """Load safely (`weights_only=True`); one clear CrackSegError line for missing, empty,
    truncated, corrupt or foreign files, naming the file and what to do."""
    path = Path(path)
    if path.is_dir():
        raise CrackSegError(f"{path}: is a folder, not a checkpoint; give a .ckpt file in it")
    if not path.is_file():
        raise CrackSegError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise CrackSegError(f"{path}: empty file (0 bytes), not a checkpoint; was it copied fully?")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CrackSegError(
            f"{path}: not a readable checkpoint ({type(err).__name__}: truncated, corrupt or "
            "not written by crackseg train)"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CrackSegError(f"{path}: not a crackseg checkpoint (no '{FORMAT}' marker)")
    return ckpt


def model_payload(model: nn.Module) -> dict[str, Any]:
    """What `load_model` needs: the preset name, its overrides, and the weights."""
    module = getattr(model, "module", model)  # unwrap DDP
    return {"model": dict(module.preset), "state_dict": module.state_dict()}


def _model_spec(ckpt: dict[str, Any], path: Path) -> tuple[str, dict[str, Any]]:
    """The preset name and overrides stored under "model", checked."""
    spec = ckpt.get("model")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise CrackSegError(
            f"{path}: damaged checkpoint: no 'model' entry with a preset name; "
            "use a checkpoint written by crackseg train"
        )
    overrides = spec.get("overrides", {})
    if not isinstance(overrides, dict):
        raise CrackSegError(f"{path}: damaged checkpoint: model 'overrides' is not a mapping")
    return spec["name"], overrides


def _weights(ckpt: dict[str, Any], path: Path) -> dict[str, Tensor]:
    """The weights to evaluate (EMA when stored), checked to be a finite name -> tensor mapping."""
    key = "ema" if ckpt.get("ema") is not None else "state_dict"
    weights = ckpt.get(key)
    if not isinstance(weights, dict) or not weights:
        raise CrackSegError(f"{path}: damaged checkpoint: no '{key}' weights")
    for name, value in weights.items():
        if not isinstance(value, Tensor):
            raise CrackSegError(f"{path}: damaged checkpoint: weight {name!r} is not a tensor")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CrackSegError(
                f"{path}: non-finite weights (NaN or inf) in {name!r}: training diverged; "
                "use an earlier checkpoint or retrain with a lower --lr"
            )
    return weights


def _misfit(model: nn.Module, weights: dict[str, Tensor]) -> str | None:
    """How `weights` fail to fit `model`, in one phrase (None when they fit): counts of missing,
    unexpected and mis-shaped entries, each with a first example."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    shapes = [f"{k!r} is {tuple(weights[k].shape)}, the model needs {tuple(v.shape)}"
              for k, v in expected.items() if k in weights and weights[k].shape != v.shape]  # fmt: skip
    parts = [f"{len(missing)} missing (e.g. {missing[0]!r})"] if missing else []
    parts += [f"{len(unexpected)} unexpected (e.g. {unexpected[0]!r})"] if unexpected else []
    parts += [f"{len(shapes)} of another shape (e.g. {shapes[0]})"] if shapes else []
    return ", ".join(parts) or None


def _build(name: str, overrides: dict, weights: dict[str, Tensor], path: Path) -> nn.Module:
    """The preset with `weights` loaded, refusing weights that do not fit (named counts)."""
    try:
        model = build_model(name, **overrides)
    except CrackSegError as err:
        raise CrackSegError(f"{path}: cannot rebuild the model: {err}") from err
    problem = _misfit(model, weights)
    if problem:
        raise CrackSegError(
            f"{path}: weights do not fit model {name!r}: {problem}; the file holds another "
            "model's weights or was edited"
        )
    model.load_state_dict(weights)
    return model


def _load_checkpoint(path: Path) -> nn.Module:
    ckpt = read_checkpoint(path)
    name, overrides = _model_spec(ckpt, path)
    config = ckpt.get("config")
    if not isinstance(config, dict):
        raise CrackSegError(
            f"{path}: damaged checkpoint: no 'config' entry (normalisation, image size); "
            "use a checkpoint written by crackseg train"
        )
    model = _build(name, overrides, _weights(ckpt, path), path)
    model.config = config
    return model


def _load_bundle(path: Path) -> nn.Module:
    """A bundled model (NAME.safetensors + NAME.json): fp16/bf16 weights upcast to float32."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CrackSegError(f"{path}: bundled weights not found")
    meta = bundles.read_metadata(path)
    try:
        tensors = load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CrackSegError(
            f"{path}: not readable safetensors ({err}): truncated or corrupt; reinstall crackseg "
            "or rewrite the bundle with crackseg models bundle"
        ) from err
    weights = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    name, overrides = _model_spec(meta, path)
    model = _build(name, overrides, _weights({"state_dict": weights}, path), path)
    model.config = {**meta["config"], "threshold": meta.get("threshold"), "bundle": path.stem}
    return model


def resolve_model_ref(ref: str | Path | None) -> Path:
    """A checkpoint/bundle path, a bundled model's name, or None (the default bundled model)."""
    if ref is None:
        return bundles.default_model().file
    path = Path(ref)
    if not path.exists() and isinstance(ref, str) and not path.suffix and "/" not in ref:
        found = bundles.find_bundled(ref)
        if found is None:
            names = ", ".join(m.name for m in bundles.bundled_models()) or "none installed"
            raise CrackSegError(
                f"{ref}: neither a checkpoint file nor a bundled model (bundled: {names})"
            )
        return found.file
    return path


def model_spec(ref: str | Path) -> tuple[str, dict[str, Any]]:
    """The preset name and overrides a checkpoint or bundled model was built with, read without
    building the model (what `train --init` starts when no --model is given)."""
    path = resolve_model_ref(ref)
    if path.suffix == bundles.WEIGHTS_SUFFIX:
        return _model_spec(bundles.read_metadata(path), path)
    return _model_spec(read_checkpoint(path), path)


def load_model(path: str | Path | None = None, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model in eval mode (float32, no model flags needed) from a checkpoint path, a
    bundled model's `.safetensors` path or name, or, with no argument, the default bundled model.

    The config (normalisation, image size, threshold) is attached as `model.config`. A file with
    the wrong structure (no model spec or config, another model's weights, renamed keys, wrong
    shapes, non-finite values) is a CrackSegError naming the file and the problem.
    """
    path = resolve_model_ref(path)
    if path.suffix.lower() == ".onnx":  # explain, evaluate, Python users: say what it is
        raise CrackSegError(
            f"{path}: an exported ONNX model, which PyTorch cannot load; predict and serve run it "
            "with --backend onnxruntime"
        )
    is_bundle = path.suffix == bundles.WEIGHTS_SUFFIX
    model = _load_bundle(path) if is_bundle else _load_checkpoint(path)
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
