"""`crackseg measure MASK...`: length, width and orientation of every crack in binary masks."""

from __future__ import annotations

import argparse

EPILOG = """\
Masks: any image where nonzero = crack: {0,1}, {0,255}, palette or black-and-colour RGB
({0,1,255} masks: 255 = ignore, not measured; anti-aliased or JPEG masks are thresholded at 128,
with a note on stderr). Per crack: centreline length (skeleton with short spurs pruned; round or blunt ends add
nothing, a crack that runs out of the image is measured to the edge), mean and max width (local
width from a distance transform along the skeleton, junctions left out), orientation in degrees
(0 = horizontal, counter-clockwise on screen positive, in (-90, 90]) and bounding box (x, y, w, h).
Per image: count, total length, max width, crack area fraction, specks below --min-area and
slivers shorter than --min-length (dropped and counted). Pieces whose tips face each other across
a gap of at most --gap-px are one crack (the gap adds length, not area; counted as bridged_gaps).

examples:
  crackseg measure runs/pred/*.png
  crackseg measure mask.png --mm-per-px 0.1 --json > mask.json
  crackseg measure masks/*.png --csv cracks.csv --summary-csv images.csv --overlay-dir overlays
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "measure",
        help="measure cracks (length, width, orientation) in binary masks",
        description="Measure the length, width and orientation of every crack in binary masks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("masks", nargs="+", metavar="MASK", help="mask image files")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.add_argument("--csv", metavar="FILE", help="write one row per crack to FILE")
    parser.add_argument("--summary-csv", metavar="FILE", help="write one row per mask to FILE")
    parser.add_argument(
        "--overlay-dir",
        metavar="DIR",
        help="write <mask name>_width.png overlays coloured by width",
    )
    parser.add_argument(
        "--photo-dir",
        metavar="DIR",
        help="draw overlays on the photo with the mask's file name stem from DIR (.jpg/.png/...)",
    )
    parser.add_argument(
        "--mm-per-px", type=float, metavar="F", help="pixel size in mm: adds _mm figures"
    )
    parser.add_argument(
        "--min-area",
        type=int,
        default=10,
        metavar="N",
        help="ignore (and count) cracks under N pixels (default: 10)",
    )
    add_counting_options(parser)
    parser.set_defaults(func=run)


def add_counting_options(parser) -> None:
    """--gap-px and --min-length: how pieces of a crack are joined and slivers dropped."""
    from crackseg.measure.core import GAP_PX, MIN_LENGTH_PX

    parser.add_argument("--gap-px", type=float, default=GAP_PX, metavar="PX",
                        help="join crack pieces whose facing tips are at most PX apart "
                        f"(0 = never; default: {GAP_PX:g})")  # fmt: skip
    parser.add_argument("--min-length", type=float, default=MIN_LENGTH_PX, metavar="PX",
                        help="drop (and count) slivers shorter than PX; a crack of length 0 "
                        f"is never reported (default: {MIN_LENGTH_PX:g})")  # fmt: skip


def check_counting_options(args) -> None:
    """--gap-px and --min-length are finite numbers >= 0, or one CrackSegError line."""
    import math

    from crackseg.errors import CrackSegError

    for flag, value in (("--gap-px", args.gap_px), ("--min-length", args.min_length)):
        if not (math.isfinite(value) and value >= 0):
            raise CrackSegError(f"{flag} must be a number of pixels >= 0, got {value}")


def _find_photo(photo_dir, stem: str):
    """The photo named `stem` in `photo_dir`, read as (H, W, 3) uint8."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from crackseg.errors import CrackSegError

    for path in sorted(Path(photo_dir).glob(f"{stem}.*")):
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB"))
        except OSError:
            continue
    raise CrackSegError(f"{photo_dir}: no readable photo named {stem}.* for the overlay")


def _table(reports) -> str:
    """One human-readable line per mask."""
    lines = []
    for r in reports:
        mm = f" ({r.total_length_px * r.mm_per_px:.1f} mm)" if r.mm_per_px else ""
        lines.append(
            f"{r.source}: {r.count} crack(s), total length {r.total_length_px:.1f} px{mm}, "
            f"max width {r.max_width_px:.1f} px, area {100 * r.area_fraction:.2f}%"
            + (
                f", {r.ignored_count} speck(s) under {r.min_area_px} px ignored"
                if r.ignored_count
                else ""
            )
            + (
                f", {r.dropped_slivers} sliver(s) under {r.min_length_px:g} px long dropped"
                if r.dropped_slivers
                else ""
            )
            + (f", {r.bridged_gaps} gap(s) bridged" if r.bridged_gaps else "")
        )
    return "\n".join(lines)


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from PIL import Image

    from crackseg.cli.checks import check_count, check_positive
    from crackseg.errors import CrackSegError
    from crackseg.measure import CrackReport, measure_cracks, width_overlay
    from crackseg.measure.io import read_binary_mask, write_csv

    check_positive(args.mm_per_px, "--mm-per-px", "millimetres per pixel")
    check_count(args.min_area, "--min-area", minimum=0)
    check_counting_options(args)
    stems = [Path(m).stem for m in args.masks]
    if args.overlay_dir and len(set(stems)) < len(stems):
        twice = sorted({s for s in stems if stems.count(s) > 1})
        raise CrackSegError(f"masks share a file name ({', '.join(twice)}): overlays would clash")
    if args.photo_dir and not args.overlay_dir:
        raise CrackSegError("--photo-dir only sets the overlay background: add --overlay-dir DIR")

    reports = []
    for path in args.masks:
        mask, note = read_binary_mask(path)
        if note:
            print(f"crackseg measure: note: {path}: {note}", file=sys.stderr)
        report = measure_cracks(
            mask,
            mm_per_px=args.mm_per_px,
            min_area_px=args.min_area,
            gap_px=args.gap_px,
            min_length_px=args.min_length,
            source=str(path),
        )
        reports.append(report)
        if args.overlay_dir:
            stem = Path(path).stem
            photo = _find_photo(args.photo_dir, stem) if args.photo_dir else None
            if photo is not None and photo.shape[:2] != mask.shape:
                raise CrackSegError(
                    f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} px but its photo in "
                    f"{args.photo_dir} is {photo.shape[1]}x{photo.shape[0]} px"
                )
            out = Path(args.overlay_dir) / f"{stem}_width.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(width_overlay(photo, mask, report)).save(out)

    crack_cols, image_cols = CrackReport.columns(args.mm_per_px)
    if args.csv:
        write_csv(args.csv, [row for r in reports for row in r.to_rows()], crack_cols)
    if args.summary_csv:
        write_csv(args.summary_csv, [r.summary() for r in reports], image_cols)
    if args.json:
        print(json.dumps({"images": [r.to_dict() for r in reports]}, indent=2))
    else:
        print(_table(reports))
    return 0
