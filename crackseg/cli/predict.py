"""`crackseg predict`: binary mask, probability and overlay PNGs for images of any size."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="segment cracks in images, folders or globs",
        description="Images larger than the training size are tiled with overlap and blended; "
        "smaller ones go through one forward pass. Writes <name>_mask.png (0/255), "
        "<name>_prob.png, <name>_overlay.png and predictions.json.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--threshold", type=float, help="crack probability threshold (default: the run's)"
    )
    p.add_argument("--tta", action="store_true", help="average with a horizontally flipped pass")
    p.add_argument("--no-overlap", action="store_true", help="tile without overlap (faster)")
    p.add_argument("--measure", action="store_true", help="also measure length/width of each crack")
    p.add_argument("--mm-per-px", type=float, help="physical scale for --measure")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crackseg.engine.setup import resolve_device
    from crackseg.inference import Predictor
    from crackseg.predict import predict_files

    predictor = Predictor.from_checkpoint(args.checkpoint, device=resolve_device(args.device),
                                          tta=args.tta, overlap=not args.no_overlap)  # fmt: skip
    threshold = args.threshold
    if threshold is None:  # --threshold 0 is a valid request, not "unset"
        threshold = predictor.model.config.get("threshold", 0.5)
    results = predict_files(predictor, args.inputs, args.out, threshold=threshold,
                            measure=args.measure, mm_per_px=args.mm_per_px)  # fmt: skip
    for r in results:
        line = f"{r['image']}: {r['crack_fraction']:.2%} crack pixels"
        if "measurements" in r:
            m = r["measurements"]
            unit = "mm" if args.mm_per_px else "px"
            length = m.get(f"total_length_{unit}")
            line += f", {m['count']} cracks, total length {length} {unit}"
        print(line)
    print(f"wrote {len(results)} x (mask, prob, overlay) PNGs to {args.out}")
    return 0
