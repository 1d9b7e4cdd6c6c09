"""`crackseg demo`: the main job on the embedded default (no download needed)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on built-in synthetic data",
                       description="Print the model presets and segment a synthetic crack image.")  # fmt: skip
    p.add_argument("--image-size", type=int, default=416)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from crackseg.cli.models import format_rows, model_table
    from crackseg.models import build_model, list_models

    size = args.image_size
    print(format_rows(model_table(list_models(), size), size))
    torch.manual_seed(0)
    images = torch.rand(1, 3, size, size) * 0.2 + 0.5  # a grey slab ...
    images[..., size // 2 - 2 : size // 2 + 2, :] = 0.1  # ... with one dark horizontal crack
    model = build_model("unet_small").eval()
    start = time.perf_counter()
    with torch.no_grad():
        preds = model(images).argmax(1)
    ms = (time.perf_counter() - start) * 1e3
    print(f"\nunet_small (untrained) segmented a synthetic {size}x{size} image in {ms:.0f} ms: "
          f"masks {tuple(preds.shape)}, {preds.float().mean():.1%} pixels labelled crack")  # fmt: skip
    return 0
