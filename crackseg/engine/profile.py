"""Model cost: parameters, FLOPs (torch's FlopCounterMode, attention included) and forward time."""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


def _cpu_sdpa_flops(q_shape, k_shape, v_shape, *args, **kwargs) -> int:
    return sdpa_flop_count(q_shape, k_shape, v_shape)


# The CPU fused attention kernel has no FLOP formula in torch; it does the same work as the math path.
EXTRA_FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, images: torch.Tensor) -> int:
    """FLOPs of one forward pass (a multiply-add counts 2), as torch's FlopCounterMode counts them."""
    with FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as counter:
        model(images)
    return counter.get_total_flops()


@torch.no_grad()
def time_forward(model: nn.Module, images: torch.Tensor, *, repeats: int = 3) -> float:
    """Median wall time in seconds of a forward pass after one warm-up call."""
    model(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(images)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]
