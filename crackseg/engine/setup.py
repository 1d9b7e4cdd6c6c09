"""Builders used by the entry points: device, precision, model, optimizer and data loaders."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from crackseg.engine.distributed import shard
from crackseg.errors import CrackSegError
from crackseg.models import build_model

NO_DECAY_NAMES = ("pos_embed", "cls_token", "cls_emb")
AMP_MODES = ("auto", "none", "bf16", "fp16")


def resolve_device(spec: str = "auto") -> torch.device:
    """auto -> cuda when available, else cpu; an unavailable cuda request is a user error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise CrackSegError(
            f"--device {spec}: CUDA is not available on this machine; use cpu or auto"
        )
    try:
        return torch.device(spec)
    except RuntimeError as err:
        raise CrackSegError(f"--device {spec!r}: {err}") from err


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matmul instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_amp(spec: str, device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype. auto = bf16 on CUDA that supports it (else fp16); on CPU bf16 where
    the CPU has native bf16 instructions (`cpu_has_fast_bf16`; benchmarks/bench_train_step.py
    measured 2.4x faster training steps for unet_small here), else full precision."""
    if spec == "none":
        return None
    if spec == "auto":
        if device.type != "cuda":
            return torch.bfloat16 if cpu_has_fast_bf16() else None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if spec in ("bf16", "fp16"):
        if spec == "fp16" and device.type == "cpu":
            raise CrackSegError("--amp fp16 needs CUDA; on CPU use --amp bf16 or none")
        return torch.bfloat16 if spec == "bf16" else torch.float16
    raise CrackSegError(f"--amp {spec!r}: expected auto, none, bf16 or fp16")


def create_model(
    name: str, *, image_size: int, model_args: dict, pretrained: str | None = None
) -> nn.Module:
    """A preset at the training image size (every preset accepts it: ViT-based ones size their
    position grid by it, size-agnostic ones ignore it), so no preset needs a name test here."""
    args = {"image_size": image_size, **model_args}
    return build_model(name, pretrained=pretrained, **args)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on biases, norms, position/class embeddings."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim < 2 or any(n in name for n in NO_DECAY_NAMES)
        (no_decay if skip else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def collate_by_size(samples: list[dict]) -> list[dict]:
    """Batch samples of equal size together; returns a list of batches (one per distinct size)."""
    groups: dict[tuple, list[dict]] = {}
    for s in samples:
        groups.setdefault(tuple(s["image"].shape), []).append(s)
    return [
        {
            "image": torch.stack([s["image"] for s in g]),
            "mask": torch.stack([s["mask"] for s in g]),
            "path": [s["path"] for s in g],
        }
        for g in groups.values()
    ]


def train_loader(dataset, *, batch_size: int, workers: int, seed: int, rank: int, world: int):
    """Shuffled by a DistributedSampler in every case, so 1 process and N processes draw the same
    permutation per epoch (call `loader.sampler.set_epoch(e)`)."""
    if len(dataset) < batch_size * world:
        raise CrackSegError(
            f"the training split has {len(dataset)} images, fewer than one batch "
            f"({batch_size} x {world} processes); lower --batch-size"
        )
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                 drop_last=True)  # fmt: skip
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      drop_last=True, persistent_workers=workers > 0)  # fmt: skip


def eval_loader(dataset, *, batch_size: int, workers: int, rank: int = 0, world: int = 1):
    """Every sample exactly once across ranks, in order; batches grouped by image size."""
    subset = Subset(dataset, shard(len(dataset), rank, world))
    return DataLoader(subset, batch_size=batch_size, num_workers=workers,
                      collate_fn=collate_by_size)  # fmt: skip
