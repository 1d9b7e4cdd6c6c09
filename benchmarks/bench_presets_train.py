"""Training-step cost (forward + backward + AdamW) of the model-search presets against unet_small.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_presets_train.py --size 256 --batch 8

bf16 autocast + channels_last (the training recipe's CPU settings), after one warm-up step: the
fastest wall time of a step and the median process CPU time of a step (all threads). On a shared,
loaded machine the wall time swings 2x between runs; CPU time is the steadier measure of cost.
Ratios are to unet_small in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import crackseg
from crackseg.losses import build_loss

PRESETS = [
    "unet_small",
    "unet_res_small",
    "unet_cnn16_small",
    "unet_vit_small",
    "segmenter_vit_tiny_patch8_linear",
    "segmenter_vit_tiny_convstem8_linear",
    "segmenter_vit_tiny_convstem8_skip",
]


def step_ms(
    name: str, images: torch.Tensor, targets: torch.Tensor, steps: int
) -> tuple[float, float]:
    """(fastest wall ms, median CPU ms) of one training step (bf16 autocast, channels_last)."""
    torch.manual_seed(0)
    model = crackseg.build_model(name, image_size=images.shape[-1]).train()
    model = model.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = build_loss("ce+dice")
    walls, cpus = [], []
    for i in range(steps + 1):
        t, c = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(images)  # (B, K, H, W)
        loss_fn(logits.float(), targets).backward()
        opt.step()
        opt.zero_grad()
        if i:  # the first step warms up
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
    return min(walls) * 1e3, statistics.median(cpus) * 1e3


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", nargs="+", default=PRESETS)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args()
    images = torch.randn(args.batch, 3, args.size, args.size)
    targets = (torch.rand(args.batch, args.size, args.size) < 0.03).long()
    print(f"threads {torch.get_num_threads()}, batch {args.batch}, {args.size}x{args.size}, "
          "bf16 autocast + channels_last, fwd+bwd+AdamW")  # fmt: skip
    names = ["unet_small"] + [n for n in args.models if n != "unet_small"]
    print(f"{'preset':38} {'wall ms':>8} {'ratio':>6} {'CPU ms':>8} {'ratio':>6}")
    base = None
    for name in names:
        wall, cpu = step_ms(name, images, targets, args.steps)
        base = base or (wall, cpu)
        print(f"{name:38} {wall:8.0f} {wall / base[0]:5.2f}x {cpu:8.0f} {cpu / base[1]:5.2f}x",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
