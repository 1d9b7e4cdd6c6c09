"""`crackseg models`: the bundled weights, then every preset with parameters, GFLOPs, output
shape and CPU forward time; `crackseg models bundle` turns a checkpoint into bundled weights."""

from __future__ import annotations

import argparse
import json

SIDE_STEP = 16  # plain ViT presets need a multiple of their patch size (16 or 8)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list bundled weights and model presets; bundle a checkpoint",
        description="List the bundled weights (used when --checkpoint is not given) and every "
        "model preset: parameters, GFLOPs and output shape for one image, and the measured "
        "forward time on this machine's CPU. `crackseg models bundle --help`: ship a checkpoint.",
    )
    p.add_argument("--bundled", action="store_true", help="only the bundled weights")
    p.add_argument("--image-size", type=int, default=416, help="square input side (default 416)")
    p.add_argument("--filter", default="", help="only presets whose name contains this text")
    p.add_argument("--no-time", action="store_true", help="skip the (slow) forward timing")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
    register_bundle(p.add_subparsers(dest="models_command", metavar="bundle"))


def register_bundle(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bundle",
        help="calibrate, convert and bundle a checkpoint as package weights",
        description="Evaluate a checkpoint on a labelled split at native size, store its best-F1 "
        "(ODS) threshold, convert the weights to fp16/bf16 (kept only when val crack IoU stays "
        "within 0.005 of float32), and write NAME.safetensors + NAME.json into the package's "
        "weights folder ($CRACKSEG_WEIGHTS_DIR overrides it). Refuses weights over 20 MB.",
    )
    p.add_argument("--checkpoint", required=True,
                   help="a .ckpt written by crackseg train, or a bundled model (name or "
                   ".safetensors file) to recalibrate on your own labelled photos")  # fmt: skip
    p.add_argument("--data", required=True, help="dataset folder or .yaml to calibrate on")
    p.add_argument("--split", default="val", help="labelled split to calibrate on (default val)")
    p.add_argument("--name", required=True, help="bundle name, e.g. crackseg-unet-v1")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), default="fp16")
    p.add_argument("--ood", help="out-of-domain dataset, never trained on, scored and recorded")
    p.add_argument("--ood-split", default="train", help="split of --ood to score (default train)")
    p.add_argument("--description", default="", help="one line for the model listing")
    p.add_argument("--not-default", action="store_true",
                   help="do not mark this bundle as the default model (without it, this "
                   "bundle becomes the default: the newest bundle marked default wins)")  # fmt: skip
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run_bundle)


def run_bundle(args: argparse.Namespace) -> int:
    import shlex

    from crackseg.weights.bundle import bundle_checkpoint

    argv = ["crackseg", "models", "bundle", "--checkpoint", args.checkpoint, "--data", args.data,
            "--split", args.split, "--name", args.name, "--dtype", args.dtype]  # fmt: skip
    argv += ["--ood", args.ood, "--ood-split", args.ood_split] if args.ood else []
    argv += ["--description", args.description] if args.description else []
    argv += ["--not-default"] if args.not_default else []
    bundle_checkpoint(args.checkpoint, args.data, args.name, split=args.split, dtype=args.dtype,
                      ood=args.ood, ood_split=args.ood_split, device=args.device,
                      description=args.description, default=not args.not_default,
                      command=shlex.join(argv))  # fmt: skip
    return 0


def bundled_rows() -> list[dict]:
    """One row per bundled model: name, preset, size, dtype, val crack IoU, threshold."""
    from crackseg.weights import bundled_models

    return [{"name": m.name, "preset": m.preset, "size_mb": round(m.size_bytes / 2**20, 2),
             "dtype": m.dtype, "crack_iou": m.crack_iou, "split": m.metrics.get("split"),
             "threshold": m.threshold, "default": m.default, "file": str(m.file),
             "description": m.description} for m in bundled_models()]  # fmt: skip


def format_bundled(rows: list[dict]) -> str:
    from crackseg.weights import weights_dir

    if not rows:
        return f"Bundled weights: none in {weights_dir()} (pass --checkpoint to every command)"
    head = f"{'bundled model':26} {'preset':22} {'size MB':>8} {'dtype':>5} {'crack IoU':>10} {'thr':>5}"
    lines = [f"Bundled weights in {weights_dir()} (first = default)", head, "-" * len(head)]
    for r in rows:
        iou = f"{r['crack_iou']:.3f}" if r["crack_iou"] is not None else "-"
        iou = f"{iou} {r['split'] or ''}".strip()
        lines.append(f"{r['name']:26} {r['preset']:22} {r['size_mb']:8.2f} {r['dtype']:>5} "
                     f"{iou:>10} {r['threshold']:5.2f}")  # fmt: skip
    return "\n".join(lines)


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

    if args.bundled:
        rows = bundled_rows()
        print(json.dumps(rows, indent=2) if args.json else format_bundled(rows))
        return 0

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
    if not args.json:  # the JSON stays the preset list (--bundled --json for the weights)
        print(format_bundled(bundled_rows()) + "\n")
    print(json.dumps(rows, indent=2) if args.json else format_rows(rows, args.image_size))
    return 0
