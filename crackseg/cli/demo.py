"""`crackseg demo`: the main job on the embedded default, no download needed.

Synthesize a crack dataset, train a light U-Net for about two minutes, evaluate it on the held-out
test split, predict (tiled) and measure cracks on larger unseen images, compare with the bundled
model on crack photos (when one is installed), and write a report folder.
"""

from __future__ import annotations

import argparse

TARGET_IOU = 0.5
REAL_PHOTOS = "../shared/data/crack-seg"  # used when present, else synthetic test images


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="synthesize data, train, evaluate, predict and report (about 2-3 minutes)",
        description="The whole job on built-in synthetic cracks: data -> train -> evaluate -> "
        "predict -> report. Prints the report folder.",
    )
    p.add_argument("--out", default="reports/demo", help="report folder (default reports/demo)")
    p.add_argument("--images", type=int, default=800, help="synthetic images (default 800)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--device", default="auto")
    p.add_argument("--min-iou", type=float, default=TARGET_IOU,
                   help=f"exit 1 when test crack IoU is below this (default {TARGET_IOU})")  # fmt: skip
    p.add_argument("--photos", default=REAL_PHOTOS,
                   help="dataset whose val photos show the bundled model (default "
                   f"{REAL_PHOTOS}; synthetic images when absent)")  # fmt: skip
    p.add_argument("--photo-count", type=int, default=4,
                   help="photos in the bundled-model comparison (default 4)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import shutil
    import time
    from importlib import resources
    from pathlib import Path

    from crackseg.cli.demo_bundled import bundled_section
    from crackseg.config import resolve_config
    from crackseg.data import synthesize
    from crackseg.errors import CrackSegError
    from crackseg.evaluate import evaluate_checkpoint
    from crackseg.inference import Predictor
    from crackseg.metrics import format_table
    from crackseg.outputs import check_writable, mark_output
    from crackseg.predict import predict_files
    from crackseg.train import train

    start = time.perf_counter()
    out = Path(args.out)
    if not 0 <= args.min_iou <= 1:
        raise CrackSegError(f"--min-iou {args.min_iou}: give a crack IoU in [0, 1]")
    if args.photo_count < 1:
        raise CrackSegError(f"--photo-count {args.photo_count}: give a number of photos >= 1")
    recipe = resources.files("crackseg") / "configs" / "demo.yaml"
    config = resolve_config(recipe, {"data": str(out / "data"), "out": str(out / "run"),
                                     "device": args.device, "epochs": args.epochs})  # fmt: skip
    check_writable(out)
    if out.exists():  # only once every option is known to be good
        shutil.rmtree(out)
    mark_output(out, "demo")  # its synthetic photos and panels are not the user's photos
    size = config.image_size
    print(f"[1/5] synthesizing {args.images} crack images ({size}x{size}) in {out / 'data'}")
    data = synthesize(out / "data", args.images, seed=0, image_size=size)
    config = dataclasses.replace(config, data=str(data))
    print(f"[2/5] training {config.model} for {config.epochs} epochs (stops early after "
          f"{config.time_limit} min)")  # fmt: skip
    train(config)
    best = out / "run" / "best.ckpt"
    if not best.is_file():  # every validation score was undefined: nothing to evaluate
        raise CrackSegError(f"{out / 'run'}: training wrote no best.ckpt; see the warning above")
    print("[3/5] evaluating the best checkpoint on the held-out test split")
    result = evaluate_checkpoint(best, data, split="test", device=args.device, out=out)
    metrics = result["metrics"]
    print(format_table(metrics, title=f"Synthetic test split ({int(metrics['images'])} images)"))
    print("[4/5] predicting and measuring cracks on unseen, larger synthetic photos (tiled)")
    unseen = synthesize(out / "unseen", 4, seed=2024, image_size=3 * size, splits=(0, 0, 1))
    predictor = Predictor.from_checkpoint(best, device="cpu")
    preds = predict_files(predictor, [str(unseen.parent / "images" / "test")],
                          out / "predictions", measure=True)  # fmt: skip
    shutil.copy(out / "run" / "curves.png", out / "curves.png")
    last_samples = sorted((out / "run" / "samples").glob("*.png"))[-1]
    shutil.copy(last_samples, out / "samples.png")
    extra = bundled_section(best, out, photos=args.photos, synthetic=data, count=args.photo_count,
                            log=print)  # fmt: skip
    write_report(out, config, metrics, preds, time.perf_counter() - start, extra=extra)
    iou = metrics["crack_iou"]  # None when undefined: never a pass
    passed = iou is not None and iou >= args.min_iou
    shown = "undefined" if iou is None else f"{iou:.3f}"
    print(f"\ncrack IoU on the synthetic test split: {shown} "
          f"({'meets' if passed else 'BELOW'} the {args.min_iou} target)")  # fmt: skip
    print(f"report: {out / 'README.md'}")
    return 0 if passed else 1


def write_report(
    out, config, metrics: dict, preds: list[dict], seconds: float, *, extra: list[str] = ()
) -> None:
    """A Markdown page tying the figures together (metrics table, curves, overlays, cracks)."""
    from crackseg.metrics import format_table

    lines = [
        "# crackseg demo report",
        "",
        f"Model `{config.model}`, {config.epochs} epochs at {config.image_size}x{config.image_size}"
        f" on synthetic cracks; whole demo {seconds / 60:.1f} min.",
        "",
        "## Test split metrics",
        "",
        "```",
        format_table(metrics),
        "```",
        "",
        "![training curves](curves.png)",
        "",
        "Validation samples (image | ground truth | prediction): ![samples](samples.png)",
        "",
        "PR curve: ![pr](pr_curve.png)",
        "",
        "## Unseen images (tiled prediction + crack measurement)",
        "",
        "| image | cracks | total length px | max width px | overlay |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in preds:
        m = p["measurements"]
        stem = p["mask"].rsplit("/", 1)[-1].removesuffix("_mask.png")
        lines.append(f"| {stem} | {m['count']} | {m['total_length_px']} | {m['max_width_px']} | "
                     f"![](predictions/{stem}_width.png) |")  # fmt: skip
    lines += ["", *extra] if extra else []
    (out / "README.md").write_text("\n".join(lines) + "\n")
