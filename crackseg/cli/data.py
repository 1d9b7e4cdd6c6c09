"""`crackseg data inspect PATH` and `crackseg data synth --out DIR`: look at data, or make some."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="inspect a crack dataset, or write a synthetic one",
        description="Inspect a crack dataset (any supported format), or write a synthetic one.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    inspect = sub.add_parser(
        "inspect",
        help="formats, counts, crack pixels, duplicates, problems, a sample grid",
        description="Detect a dataset's format and report what is in it and what is wrong.",
    )
    inspect.add_argument("path", help="dataset folder, dataset .yaml, or COCO .json")
    inspect.add_argument("--json", action="store_true", help="print the summary as JSON")
    inspect.add_argument("--strict", action="store_true", help="any problem is an error")
    inspect.add_argument(
        "--grid",
        default=None,
        help="sample grid PNG to write (default: reports/data-<name>.png; 'none' to skip)",
    )
    inspect.add_argument("--samples", type=int, default=16, help="images in the grid (16)")
    inspect.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="processes (all cores, max 4)",
    )
    inspect.set_defaults(func=run_inspect)

    synth = sub.add_parser(
        "synth",
        help="write synthetic cracks in the Ultralytics layout (exact masks, no download)",
        description="Write synthetic crack photos with exact labels and true crack lengths/widths.",
    )
    synth.add_argument("--out", required=True, type=Path, help="output folder (new or empty)")
    synth.add_argument("--n", type=int, default=200, help="number of images (200)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (0)")
    synth.add_argument("--size", type=int, default=256, help="image side in px (256)")
    synth.add_argument(
        "--splits",
        type=float,
        nargs=3,
        default=(0.7, 0.15, 0.15),
        metavar=("TRAIN", "VAL", "TEST"),
        help="split fractions (0.7 0.15 0.15)",
    )
    synth.set_defaults(func=run_synth)


def run_inspect(args: argparse.Namespace) -> int:
    import json

    from crackseg.data.inspector import format_report, inspect_dataset
    from crackseg.errors import CrackSegError

    for flag, value in (("--samples", args.samples), ("--workers", args.workers)):
        if value < 0:
            raise CrackSegError(f"{flag} {value}: give a whole number >= 0")
    grid = args.grid
    if grid is None:
        name = Path(args.path).resolve()
        name = name.parent.name if name.is_file() else name.name
        grid = Path("reports") / f"data-{name}.png"
    elif grid.lower() == "none":
        grid = None
    summary = inspect_dataset(
        args.path, strict=args.strict, workers=args.workers, grid=grid, samples=args.samples
    )
    print(json.dumps(summary, indent=1) if args.json else format_report(summary))
    return 0


def run_synth(args: argparse.Namespace) -> int:
    import time

    from crackseg.data.synth_dataset import synthesize
    from crackseg.outputs import check_writable

    check_writable(args.out)
    start = time.perf_counter()
    yaml_path = synthesize(
        args.out, args.n, seed=args.seed, image_size=args.size, splits=tuple(args.splits)
    )
    took = time.perf_counter() - start
    print(f"wrote {args.n} synthetic images ({args.size} px) in {took:.1f} s: {yaml_path}")
    print(f"  true crack lengths/widths: {yaml_path.parent / 'cracks.json'}")
    print(f"  next: crackseg data inspect {yaml_path}")
    return 0
