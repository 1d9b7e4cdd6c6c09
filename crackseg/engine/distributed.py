"""torchrun support: process-group setup, rank helpers, and a non-padding evaluation shard."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); returns (rank, world)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def local_device(device: torch.device, world: int) -> torch.device:
    """Under torchrun each process drives the GPU of its LOCAL_RANK; CPU processes share the CPU."""
    if world <= 1 or device.type != "cuda":
        return device
    local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.cuda.set_device(local)
    return local


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shard(n: int, rank: int, world: int) -> list[int]:
    """Evaluation indices of one rank: every sample exactly once across ranks (no padding)."""
    return list(range(rank, n, world))


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
