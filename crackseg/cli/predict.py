"""`crackseg predict`: binary mask, probability and overlay PNGs for images of any size."""

from __future__ import annotations

import argparse
import sys

OVERLAPS = ("none", "quarter", "half")  # crackseg.inference.OVERLAPS (not imported: fast --help)
DEFAULT_OVERLAP = "quarter"  # crackseg.inference.DEFAULT_OVERLAP

EPILOG = """\
Exit status: 0 when every image was predicted; 1 when some images could not be read (each is
reported on its own line and skipped, the others are written, predictions.json lists them);
2 for a bad option, checkpoint or input path, or when no image could be read (nothing written).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="segment cracks in images, folders or globs",
        description="Images larger than the training size are tiled with overlap and blended; "
        "smaller ones go through one forward pass. Writes <name>_mask.png (0/255), "
        "<name>_prob.png, <name>_overlay.png and predictions.json, and says how many images "
        "per second it predicted.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("--checkpoint", help="a .ckpt from crackseg train, a bundle file or name "
                   "(default: the bundled model, said in one line)")  # fmt: skip
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--threshold", type=float,
                   help="crack probability threshold in [0, 1] (default: the run's)")  # fmt: skip
    p.add_argument("--tta", action="store_true", help="average with a horizontally flipped pass")
    p.add_argument("--overlap", default=DEFAULT_OVERLAP, metavar="none|quarter|half",
                   help="how much of a window neighbouring tiles share on a large image "
                   f"(default {DEFAULT_OVERLAP}; half: ~2x the windows of quarter; see "
                   "benchmarks/tiling_overlap.py)")  # fmt: skip
    p.add_argument("--no-overlap", action="store_true", help="same as --overlap none")
    p.add_argument("--measure", action="store_true", help="also measure length/width of each crack")
    p.add_argument("--mm-per-px", type=float, help="physical scale for --measure (> 0)")
    add_scale_option(p)
    from crackseg.cli.measure import add_counting_options

    add_counting_options(p)
    p.add_argument("--device", default="auto")
    add_precision_option(p)
    from crackseg.cli.backend import add_backend_option

    add_backend_option(p)
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="predict with N processes sharing the torch threads (default 1); the "
                   "outputs are the same")  # fmt: skip
    p.set_defaults(func=run)


def add_precision_option(p: argparse.ArgumentParser) -> None:
    """--precision: shared with evaluate."""
    p.add_argument("--precision", default="auto", metavar="auto|fp32|bf16",
                   help="auto (default): bf16 autocast on a CPU with native bf16 (AVX512-BF16 "
                   "or AMX; measured 1.6-1.8x faster at the same crack IoU: "
                   "benchmarks/bf16_inference.py) or a "
                   "CUDA GPU with bf16, else fp32")  # fmt: skip


def precision_amp(value: str) -> str:
    """--precision as an `amp` spec of `resolve_amp` (auto, none, bf16); CrackSegError if bad."""
    from crackseg.errors import CrackSegError

    specs = {"auto": "auto", "fp32": "none", "bf16": "bf16"}
    if value not in specs:
        raise CrackSegError(f"--precision must be auto, fp32 or bf16, got {value!r}")
    return specs[value]


def add_scale_option(p: argparse.ArgumentParser) -> None:
    """--scale: a factor, or `auto` (the default) for large photos; shared with serve."""
    p.add_argument("--scale", default="auto", metavar="F|auto",
                   help="resize each image by F for the model (masks come back at full size); "
                   "auto (default): the run's own scale, and a photo whose short side is over "
                   "2 training windows (832 px at 416) is downscaled to that, as its cracks are "
                   "wider than the training images' ones")  # fmt: skip


def model_to_load(checkpoint: str | None, command: str):
    """--checkpoint as a path: given, a bundled model's name, or none (the bundled model, with
    one line on stderr saying so); shared with serve."""
    from crackseg.engine.checkpoint import resolve_model_ref
    from crackseg.weights import resolve_checkpoint

    resolved, note = resolve_checkpoint(checkpoint)
    if note:
        print(f"crackseg {command}: {note}", file=sys.stderr, flush=True)
    return resolve_model_ref(resolved)


def check_options(args: argparse.Namespace) -> None:
    """Every option, before any work: one CrackSegError line for the first bad one."""
    from crackseg.cli.checks import check_positive, check_threshold
    from crackseg.cli.measure import check_counting_options
    from crackseg.errors import CrackSegError
    from crackseg.inference import scale_settings

    check_threshold(args.threshold)
    check_positive(args.mm_per_px, "--mm-per-px", "millimetres per pixel")
    scale_settings(args.scale)
    check_counting_options(args)
    precision_amp(args.precision)
    from crackseg.deploy.backends import check_backend

    check_backend(args.checkpoint, args.backend)
    if args.backend == "onnxruntime" and args.precision == "bf16":
        raise CrackSegError(
            "--precision bf16 is for the PyTorch backend: an exported .onnx file "
            "runs in float32 in ONNX Runtime; drop --precision or use --backend torch"
        )
    if args.overlap not in OVERLAPS:
        raise CrackSegError(f"--overlap must be none, quarter or half, got {args.overlap!r}")
    if args.no_overlap and args.overlap not in ("none", DEFAULT_OVERLAP):
        raise CrackSegError(f"--no-overlap contradicts --overlap {args.overlap}: give one")
    if args.processes < 1:
        raise CrackSegError(f"--processes must be a whole number >= 1, got {args.processes}")
    if args.mm_per_px is not None and not args.measure:
        raise CrackSegError("--mm-per-px sets the scale of measurements: add --measure")


def run(args: argparse.Namespace) -> int:
    import time

    from crackseg.engine.setup import resolve_amp, resolve_device
    from crackseg.errors import CrackSegError
    from crackseg.inference import Predictor, scale_settings
    from crackseg.inputs import find_inputs
    from crackseg.outputs import check_writable
    from crackseg.predict import predict_files, threshold_for

    check_options(args)
    # a bad path fails before the model loads
    paths, left_out_note = find_inputs(args.inputs, exclude=args.out)
    total = len(paths)
    if left_out_note:
        print(f"crackseg predict: {left_out_note}", file=sys.stderr)
    check_writable(args.out)
    checkpoint = model_to_load(args.checkpoint, "predict")
    device = resolve_device(args.device)
    amp_dtype = resolve_amp(precision_amp(args.precision), device)
    overlap = "none" if args.no_overlap else args.overlap
    predictor = Predictor.from_checkpoint(checkpoint, device=device, tta=args.tta,
                                          overlap=overlap, amp_dtype=amp_dtype,
                                          backend=args.backend,
                                          **scale_settings(args.scale))  # fmt: skip
    threshold = threshold_for(predictor, args.threshold, checkpoint)
    skipped = []

    def skip(path, message: str) -> None:
        skipped.append(path)
        print(f"crackseg predict: skipped {message}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    results = predict_files(predictor, args.inputs, args.out, threshold=threshold,
                            measure=args.measure, mm_per_px=args.mm_per_px,
                            gap_px=args.gap_px, min_length_px=args.min_length,
                            on_skip=skip, processes=args.processes)  # fmt: skip
    seconds = time.perf_counter() - start
    for r in results:
        line = f"{r['image']}: {r['crack_fraction']:.2%} crack pixels"
        if "measurements" in r:
            m = r["measurements"]
            unit = "mm" if args.mm_per_px else "px"
            length = m.get(f"total_length_{unit}")
            line += f", {m['count']} cracks, total length {length} {unit}"
        print(line)
    if results:
        print(f"predicted {len(results)} images in {seconds:.1f} s "
              f"({len(results) / max(seconds, 1e-9):.2f} images/s)")  # fmt: skip
    if not skipped:
        print(f"wrote {len(results)} x (mask, prob, overlay) PNGs to {args.out}")
        return 0
    failed = f"{len(skipped)} of {total} images could not be read (listed above)"
    if not results:
        raise CrackSegError(f"{failed}; nothing was written. Fix or remove them.")
    print(f"wrote {len(results)} x (mask, prob, overlay) PNGs to {args.out}")
    print(f"crackseg predict: error: {failed}; the other {len(results)} were written to "
          f"{args.out}", file=sys.stderr)  # fmt: skip
    return 1
