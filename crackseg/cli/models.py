"""`crackseg models`: every preset with parameters, GFLOPs, output shape and CPU forward time."""

from __future__ import annotations

import argparse
import json

SIDE_STEP = 16  # plain ViT presets need a multiple of their patch size (16 or 8)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list model presets with their size and cost",
        description="List every model preset: parameters, GFLOPs and output shape for one "
        "image, and the measured forward time on this machine's CPU.",
    )
    p.add_argument("--image-size", type=int, default=416, help="square input side (default 416)")
    p.add_argument("--filter", default="", help="only presets whose name contains this text")
    p.add_argument("--no-time", action="store_true", help="skip the (slow) forward timing")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def model_table(names: list[str], image_size: int, *, timed: bool = True) -> list[dict]:
    """One row per preset, measured now on this machine (batch 1, eval mode, float32)."""
    import torch

    from crackseg.engine.profile import count_flops, count_parameters, time_forward
    from crackseg.models import build_model

    rows = []
    images = torch.randn(1, 3, image_size, image_size)
    for name in names:
        model = build_model(name).eval()
        with torch.no_grad():
            out = model(images)
        rows.append(
            {
                "name": name,
                "params_m": count_parameters(model) / 1e6,
                "gflops": count_flops(model, images) / 1e9,
                "output": list(out.shape),
                "cpu_ms": time_forward(model, images, repeats=1) * 1e3 if timed else None,
            }
        )
    return rows


def format_rows(rows: list[dict], image_size: int) -> str:
    head = f"{'preset':38} {'params':>9} {'GFLOPs':>8}  {'output':18} {'CPU ms':>8}"
    lines = [f"Model presets at {image_size}x{image_size}, batch 1, float32", head, "-" * len(head)]
    for r in rows:
        ms = f"{r['cpu_ms']:8.0f}" if r["cpu_ms"] is not None else f"{'-':>8}"
        shape = "x".join(map(str, r["output"]))
        lines.append(f"{r['name']:38} {r['params_m']:8.2f}M {r['gflops']:8.1f}  {shape:18} {ms}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import torch

    from crackseg.errors import CrackSegError
    from crackseg.models import list_models

    if args.image_size < SIDE_STEP or args.image_size % SIDE_STEP:
        raise CrackSegError(
            f"--image-size {args.image_size}: give a multiple of {SIDE_STEP} (the largest patch "
            f"size), at least {SIDE_STEP}, e.g. 416"
        )
    names = [n for n in list_models() if args.filter in n]
    if not names:
        raise CrackSegError(
            f"--filter {args.filter!r}: no preset name contains it; try unet or vit"
        )
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = model_table(names, args.image_size, timed=not args.no_time)
    print(json.dumps(rows, indent=2) if args.json else format_rows(rows, args.image_size))
    return 0
