"""Data loading speed: images/s for load + default training augmentations at 416x416.

    .venv/bin/python benchmarks/bench_data.py                 # ../shared/data/crack-seg if present
    .venv/bin/python benchmarks/bench_data.py --data DIR --n 600 --workers 0 1 2

`workers 0` is one process doing everything (what each DataLoader worker does); 1 and 2 go through
a DataLoader, so they include batching and inter-process transfer. The load average is printed
because a busy machine lowers every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from crackseg.data import build_dataset, load_index, synthesize

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crack-seg"


def measure(ds, n: int, workers: int, batch_size: int) -> float:
    """images/s over the first n images (after one warm-up batch)."""
    subset = torch.utils.data.Subset(ds, range(min(n, len(ds))))
    if workers == 0:
        torch.set_num_threads(1)  # what a DataLoader worker gets
        for i in range(batch_size):
            ds[i]
        start = time.perf_counter()
        for i in range(len(subset)):
            subset[i]
        return len(subset) / (time.perf_counter() - start)
    loader = torch.utils.data.DataLoader(
        subset, batch_size=batch_size, num_workers=workers, prefetch_factor=4
    )
    it = iter(loader)
    next(it)  # workers started and warm
    start, count = time.perf_counter(), 0
    for batch in it:
        count += len(batch["path"])
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", default="train")
    parser.add_argument("--n", type=int, default=800, help="images per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--augment", default="default")
    parser.add_argument("--image-size", type=int, default=416)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--compact", action="store_true", help="uint8 samples (batch_to_float)")
    args = parser.parse_args(argv)
    data = args.data
    if not data.exists():
        data = synthesize(Path(tempfile.mkdtemp()) / "synth", 400, image_size=args.image_size)
        print(f"{args.data} not found: using {data.parent} (synthetic)", file=sys.stderr)
    t0 = time.perf_counter()
    index = load_index(data)
    index_s = time.perf_counter() - t0
    ds = build_dataset(
        index, args.split, image_size=args.image_size, augment=args.augment, compact=args.compact
    )
    results = {
        "data": str(data),
        "images": len(ds),
        "index_seconds": round(index_s, 2),
        "augment": args.augment,
        "compact": args.compact,
        "image_size": args.image_size,
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "images_per_second": {},
    }
    for workers in args.workers:
        best = max(measure(ds, args.n, workers, args.batch_size) for _ in range(args.repeats))
        key = "one process (no DataLoader)" if workers == 0 else f"DataLoader num_workers={workers}"
        results["images_per_second"][key] = round(best, 1)
        print(f"{key:<30} {best:7.1f} images/s", file=sys.stderr)
    results["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
