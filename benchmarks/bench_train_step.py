"""Training-step throughput (forward + backward + AdamW) per model, fp32 vs bf16 autocast on CPU.

    .venv/bin/python benchmarks/bench_train_step.py --models unet_small unet --size 256 --batch 8

Reports images/s and the bf16/fp32 ratio measured in the same run (the machine's load cancels out
of the ratio, not of the absolute figures).
"""

from __future__ import annotations

import argparse
import time

import torch

from crackseg.engine.setup import create_model
from crackseg.losses import build_loss


def images_per_s(model, images, targets, dtype, steps: int, channels_last: bool = False) -> float:
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = build_loss("ce+dice")
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            logits = model(images)
        loss = loss_fn(logits.float(), targets)
        loss.backward()
        opt.step()
        opt.zero_grad()
        if i:  # the first step warms up
            times.append(time.perf_counter() - t)
    return len(images) / sorted(times)[len(times) // 2]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", nargs="+", default=["unet_small"])
    p.add_argument("--model-arg", action="append", default=[])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--channels-last", action="store_true", help="also time NHWC memory format")
    args = p.parse_args()
    extra = {k: eval(v) for k, v in (a.split("=") for a in args.model_arg)}  # noqa: S307
    images = torch.randn(args.batch, 3, args.size, args.size)
    targets = (torch.rand(args.batch, args.size, args.size) < 0.03).long()
    print(f"threads {torch.get_num_threads()}, batch {args.batch}, {args.size}x{args.size}")
    for name in args.models:
        row = []
        variants = [(None, False), (torch.bfloat16, False)]
        variants += [(torch.bfloat16, True)] if args.channels_last else []
        for dtype, nhwc in variants:
            torch.manual_seed(0)
            model = create_model(name, image_size=args.size, model_args=extra).train()
            row.append(images_per_s(model, images, targets, dtype, args.steps, nhwc))
        line = f"{name:32} fp32 {row[0]:6.1f} img/s  bf16 {row[1]:6.1f} ({row[1] / row[0]:.2f}x)"
        if args.channels_last:
            line += f"  bf16+channels_last {row[2]:6.1f} ({row[2] / row[0]:.2f}x)"
        print(line)


if __name__ == "__main__":
    main()
