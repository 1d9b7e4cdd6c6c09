"""`crackseg evaluate`: metrics table (and JSON) for a checkpoint on a dataset split."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from crackseg.cli.predict import add_precision_option, add_scale_option

    p = sub.add_parser(
        "evaluate",
        help="measure a checkpoint on a dataset split",
        description="Crack IoU, F1 (Dice), precision, recall, mIoU, pixel accuracy, ODS/OIS F1 "
        "and tolerance F1, accumulated over the whole split at the labels' native resolution.",
    )
    p.add_argument("--checkpoint", help="a .ckpt written by crackseg train, or a bundled model's "
                   "name (default: the bundled model; see crackseg models)")  # fmt: skip
    p.add_argument("--data", required=True, help="dataset folder or .yaml")
    p.add_argument("--split", default="test", help="train, val or test (default test)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--out", help="folder for metrics.json and pr_curve.png "
                   "(default: eval_<split> next to the checkpoint; ./eval_<name>_<split> for a "
                   "bundled model)")  # fmt: skip
    p.add_argument(
        "--threshold", type=float, help="crack probability threshold (default: the run's)"
    )
    p.add_argument("--tolerance", type=int, default=2, help="pixel tolerance of tol_f1 (default 2)")
    p.add_argument("--tta", action="store_true", help="average with a horizontally flipped pass")
    add_scale_option(p)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=4)
    add_precision_option(p)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from crackseg.cli.predict import precision_amp
    from crackseg.engine.checkpoint import resolve_model_ref
    from crackseg.evaluate import evaluate_checkpoint
    from crackseg.inference import scale_settings
    from crackseg.metrics.report import format_table, threshold_hint
    from crackseg.outputs import check_writable
    from crackseg.weights import resolve_checkpoint

    amp = precision_amp(args.precision)  # a bad value fails before any work
    scale = scale_settings(args.scale).get("scale", "auto")
    checkpoint, note = resolve_checkpoint(args.checkpoint)
    if note:
        print(f"crackseg evaluate: {note}", file=sys.stderr)
    checkpoint = resolve_model_ref(checkpoint)  # a bundled model's name -> its file
    bundled = checkpoint.suffix == ".safetensors"
    default_out = f"eval_{checkpoint.stem}_{args.split}" if bundled else None
    out = args.out or default_out or checkpoint.parent / f"eval_{args.split}"
    check_writable(out)  # before the evaluation, not after it
    result = evaluate_checkpoint(checkpoint, args.data, split=args.split, device=args.device,
                                 batch_size=args.batch_size, workers=args.workers, tta=args.tta,
                                 threshold=args.threshold, tolerance_px=args.tolerance, out=out,
                                 amp=amp, scale=scale)  # fmt: skip
    for warning in result["warnings"]:
        print(f"crackseg evaluate: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        n = int(result["metrics"]["images"])
        at = "" if scale == "auto" else f", scale {scale:g}"
        title = f"{checkpoint} on {args.data} [{args.split}, {n} images{at}]"
        print(format_table(result["metrics"], title=title))
        print(f"wrote {', '.join(result['files'])}")
        if hint := threshold_hint(result["metrics"], result["threshold"]):
            print(hint)
    return 0
