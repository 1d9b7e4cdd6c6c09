"""What a loss term costs in a training step: ms per step (forward + loss + backward + AdamW) for
each loss spec, steps of the specs interleaved so that the machine's load hits them alike.

    .venv/bin/python benchmarks/bench_loss_cost.py                  # ce+dice vs +0.5*cldice
    .venv/bin/python benchmarks/bench_loss_cost.py --iterations 10 5 --steps 6

Also times the loss alone (forward + backward on fixed logits), which is what the term adds.
Each figure is the fastest of its repeats: on a shared machine the load only ever adds time.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from crackseg.engine.setup import create_model
from crackseg.losses import build_loss


def step_ms(model, opt, loss_fn, images, targets, amp: bool) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        logits = model(images)  # (B, K, H, W)
        loss = loss_fn(logits, targets)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return 1000 * (time.perf_counter() - start)


def loss_only_ms(loss_fn, logits, targets, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        leaf = logits.detach().requires_grad_()
        start = time.perf_counter()
        loss_fn(leaf, targets).backward()
        times.append(1000 * (time.perf_counter() - start))
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, nargs="+", default=[10], help="cldice iterations")
    p.add_argument("--model", default="unet_small")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    args = p.parse_args()
    g = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, args.size, args.size, generator=g)
    targets = torch.zeros(args.batch, args.size, args.size, dtype=torch.long)
    targets[:, args.size // 2 - 2 : args.size // 2 + 2, :] = 1  # a 4-px crack per image
    torch.manual_seed(0)
    model = create_model(args.model, image_size=args.size, model_args={}).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    losses = {"ce+dice": build_loss("ce+dice")}
    for k in args.iterations:
        spec = {"ce": 1, "dice": 1, "cldice": {"weight": 0.5, "iterations": k}}
        losses[f"ce+dice+0.5*cldice (it {k})"] = build_loss(spec)
    times: dict[str, list[float]] = {name: [] for name in losses}
    for i in range(args.steps + 1):
        for spec, loss_fn in losses.items():
            ms = step_ms(model, opt, loss_fn, images, targets, amp=not args.fp32)
            if i:  # the first round warms up
                times[spec].append(ms)
    logits = torch.randn(args.batch, 2, args.size, args.size, generator=g)
    print(
        f"{args.model} {args.size}x{args.size} batch {args.batch}, "
        f"{'fp32' if args.fp32 else 'bf16 autocast'}, threads {torch.get_num_threads()}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    base = min(times["ce+dice"])
    for name, loss_fn in losses.items():
        step, alone = min(times[name]), loss_only_ms(loss_fn, logits, targets)
        print(f"  {name:30s} step {step:7.1f} ms (x{step / base:.2f})   loss alone {alone:6.1f} ms")


if __name__ == "__main__":
    main()
