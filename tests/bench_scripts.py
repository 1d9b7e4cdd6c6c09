"""Shared by tests: a tiny checkpoint (benchmark scripts, CLI input handling) and a run of a
benchmark script."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import torch

from crackseg import build_model
from crackseg.conventions import IMAGENET_MEAN, IMAGENET_STD
from crackseg.engine.checkpoint import model_payload, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def tiny_checkpoint(path: Path, seed: int = 0, threshold: float = 0.5) -> Path:
    """A 2-level unet_small with 4 base channels, untrained, saved as crackseg saves one."""
    config = {"image_size": 64, "threshold": threshold, "mean": list(IMAGENET_MEAN),
              "std": list(IMAGENET_STD)}  # fmt: skip
    torch.manual_seed(seed)
    model = build_model("unet_small", base_channels=4, depth=2)
    return save_checkpoint({**model_payload(model), "config": config}, path)


def run_script(script: Path, *args) -> subprocess.CompletedProcess:
    """Run a benchmark script on one thread from the repository root."""
    return subprocess.run([sys.executable, str(script), "--threads", "1", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip


def load_script(script: Path) -> ModuleType:
    """A benchmark script imported as a module (its functions, without running main); a script
    that imports a sibling script finds it."""
    sys.path.insert(0, str(script.parent))
    try:
        spec = importlib.util.spec_from_file_location(script.stem, script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(script.parent))
    return module
