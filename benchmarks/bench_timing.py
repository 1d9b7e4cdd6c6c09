"""Timing pieces for `bench.py`: one inference call, one training step, a bf16 probe, peak memory
in a fresh process, and a description of the machine.

Inference is `torch.no_grad()` (as `crackseg predict` runs); a training step is forward +
cross-entropy (segmentation) or mean square of the tokens (encoders) + backward + AdamW, the same
loss for ours and the peer, so only the networks differ.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.engine.profile import count_flops, count_parameters
from crackseg.engine.setup import cpu_has_fast_bf16

DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def autocast(dtype: str):
    if DTYPES[dtype] is None:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=DTYPES[dtype])


class Runner:
    """A built model with its inputs and optimizer, ready to time one call of a given mode."""

    def __init__(self, model: nn.Module, kind: str, *, batch: int, size: int, channels_last: bool):
        torch.manual_seed(0)
        self.model, self.kind = model, kind
        self.images = torch.randn(batch, 3, size, size)  # (B, 3, H, W)
        self.targets = (torch.rand(batch, size, size) < 0.03).long()  # (B, H, W), ~3% crack
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)

    def loss(self, out: Tensor) -> Tensor:
        if self.kind == "encoder":  # tokens (B, T, D)
            return out.float().square().mean()
        return F.cross_entropy(out.float(), self.targets)  # logits (B, K, H, W)

    def infer(self, dtype: str) -> None:
        self.model.eval()
        with torch.no_grad(), autocast(dtype):
            self.model(self.images)

    def train_step(self, dtype: str) -> None:
        self.model.train()
        with autocast(dtype):
            out = self.model(self.images)
        self.loss(out).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def seconds(self, mode: str, dtype: str) -> float:
        """Wall time of one call of `mode` ("infer" | "train")."""
        start = time.perf_counter()
        (self.infer if mode == "infer" else self.train_step)(dtype)
        return time.perf_counter() - start


def model_cost(model: nn.Module, size: int) -> dict:
    """Parameters (M) and forward GFLOPs of one image (torch's FlopCounterMode, multiply-add = 2)."""
    model.eval()
    images = torch.randn(1, 3, size, size)
    return {"params_m": count_parameters(model) / 1e6, "gflops": count_flops(model, images) / 1e9}


def bf16_probe() -> dict:
    """Native bf16 as crackseg's `--amp auto` decides it (AVX512-BF16 or AMX in /proc/cpuinfo),
    whether oneDNN takes bf16 here at all, and a 1024^2 matmul's bf16/fp32 speed-up."""
    onednn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
    a = torch.randn(1024, 1024)
    speed = {}
    for name, x in (("fp32", a), ("bf16", a.bfloat16())):
        x @ x  # warm-up
        start = time.perf_counter()
        for _ in range(5):
            x @ x
        speed[name] = time.perf_counter() - start
    return {"native": cpu_has_fast_bf16(), "onednn_bf16": bool(onednn),
            "matmul_speedup": speed["fp32"] / speed["bf16"]}  # fmt: skip


def status_mib(key: str) -> float:
    """A memory line of /proc/self/status (VmRSS: now, VmHWM: the peak), MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(key)


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_probe(runner: Runner, dtype: str) -> dict:
    """In a fresh process (see `measure_memory`): RSS with the model built, then the peak RSS
    (VmHWM, reset before each phase) of one inference call and of one training step.

    Not ru_maxrss: a child keeps the high-water mark of the process it was forked from."""
    out = {"base_mib": status_mib("VmRSS")}
    for phase, call in (("infer", runner.infer), ("train", runner.train_step)):
        out["peak_reset"] = reset_peak()  # else the training figure is the peak of both
        call(dtype)
        out[f"{phase}_peak_mib"] = status_mib("VmHWM")
    return out


def measure_memory(script: Path, name: str, *, size: int, batch: int, dtype: str) -> dict:
    """Run `script --memory-probe` for one model in a child process and return its JSON line."""
    cmd = [sys.executable, str(script), "--memory-probe", name, "--size", str(size),
           "--batches", str(batch), "--dtypes", dtype, "--threads", str(torch.get_num_threads())]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"memory probe failed: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str | None:
    try:
        proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, timeout=10)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None


def machine() -> dict:
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "git_commit": git_commit(),
    }
