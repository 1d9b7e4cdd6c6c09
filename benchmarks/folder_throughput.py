"""Folder throughput of `crackseg predict`: images/s with 1 and N processes, same outputs.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/folder_throughput.py [--images 1000] [--processes 1 2]

A folder of `--images` JPEGs (the crack-seg val images, repeated under new names) is predicted by
`crackseg predict FOLDER --out D --processes P` for each P, as a user runs it; the images/s line
it prints is collected, and every run's PNGs are compared byte for byte with the first run's.
Writes benchmarks/results/folder_throughput.md and .json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VAL = Path(__file__).resolve().parents[2] / "shared/data/crack-seg/images/val"
RESULTS = Path(__file__).resolve().parent / "results"


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.png"))}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--precision", default="auto")
    p.add_argument("--out", default=str(RESULTS / "folder_throughput"))
    args = p.parse_args()
    sources = sorted(VAL.glob("*.jpg"))
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for i in range(args.images):
            shutil.copy(sources[i % len(sources)], folder / f"{i:05d}.jpg")
        for n in args.processes:
            out = Path(tmp) / f"out{n}"
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "crackseg", "predict", str(folder),
                                   "--out", str(out), "--processes", str(n),
                                   "--precision", args.precision],
                                  capture_output=True, text=True, env=dict(os.environ))  # fmt: skip
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            said = re.search(
                r"predicted (\d+) images in ([\d.]+) s \(([\d.]+) images/s\)", proc.stdout
            )
            hashes = digests(out)
            reference = reference or hashes
            rows.append({"processes": n, "images": int(said[1]), "predict_s": float(said[2]),
                         "images_per_s": float(said[3]), "wall_s_incl_startup": wall,
                         "same_outputs_as_first": hashes == reference})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    result = {"threads": os.environ.get("OMP_NUM_THREADS", "default"), "precision": args.precision,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [f"# Folder throughput ({args.images} images of 416 px, precision {args.precision}, "
             f"OMP_NUM_THREADS={result['threads']}, {result['date']})", "",
             "| processes | images/s (as printed) | predict s | wall s incl. start-up "
             "| same PNG bytes as 1st run |", "|---|---|---|---|---|"]  # fmt: skip
    lines += [
        f"| {r['processes']} | {r['images_per_s']:.2f} | {r['predict_s']:.1f} | "
        f"{r['wall_s_incl_startup']:.1f} | {r['same_outputs_as_first']} |"
        for r in rows
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
