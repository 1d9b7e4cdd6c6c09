"""Large photos end to end: time per stage and peak memory of `crackseg predict` by photo size.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/large_photo.py [--sizes 2000x1500 4000x3000 8000x6000]

Photos are crack-seg val images in a 2x2 mosaic, upscaled to each size and saved as JPEG (q 90).
Each size runs twice in a fresh process: `crackseg predict photo.jpg --out d` as a user runs it
(wall time and peak RSS, from os.wait4), and an instrumented copy of the same steps that times
each stage (read, model forward, the rest of predict_probs: resize, tiling, blend, upsampling;
mask, overlay and the three PNGs). Memory claim: peak RSS minus the photo and its output maps
(uint8 image 3 B/px + float32 probabilities 4 + mask 1 + prob 1 + overlay 3 = 12 B/px) stays flat
as the photo grows. Issue 9 target: 4000x3000 in < 10 s end to end on 2 cores.
Writes benchmarks/results/large_photo.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

VAL = Path(__file__).resolve().parents[2] / "shared/data/crack-seg/images/val"
RESULTS = Path(__file__).resolve().parent / "results"
MAP_BYTES_PER_PX = 12


def make_photo(path: Path, width: int, height: int) -> None:
    tiles = [np.asarray(Image.open(p).convert("RGB").resize((416, 416)))
             for p in sorted(VAL.glob("*.jpg"))[:4]]  # fmt: skip
    mosaic = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)
    Image.fromarray(mosaic).resize((width, height), Image.BILINEAR).save(path, quality=90)


def run_child(argv: list[str], env: dict) -> tuple[float, int, str]:
    """(wall s, peak RSS bytes, stdout) of a child process (its own rusage, from os.wait4)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, rusage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{err.read()}")
        return wall, rusage.ru_maxrss * 1024, out.read()


def stages(photo: str, out: str, scale: str, precision: str) -> None:
    """Child: the steps of `crackseg predict` on one photo, timed; prints JSON."""
    t0 = time.perf_counter()
    import torch

    from crackseg.cli.predict import precision_amp, scale_settings
    from crackseg.engine.checkpoint import resolve_model_ref
    from crackseg.engine.setup import resolve_amp
    from crackseg.inference import Predictor
    from crackseg.predict import _read, mask_and_prob8, write_outputs
    from crackseg.weights import resolve_checkpoint

    times = {}
    checkpoint = resolve_model_ref(resolve_checkpoint(None)[0])
    amp = resolve_amp(precision_amp(precision), torch.device("cpu"))
    predictor = Predictor.from_checkpoint(checkpoint, amp_dtype=amp, **scale_settings(scale))
    times["load"] = time.perf_counter() - t0
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    forward, clock = predictor._forward, {"forward": 0.0, "tiles": 0}

    def timed_forward(images):
        start = time.perf_counter()
        logits = forward(images)
        clock["forward"] += time.perf_counter() - start
        clock["tiles"] += images.shape[0]
        return logits

    predictor._forward = timed_forward
    start = time.perf_counter()
    image = _read(Path(photo))
    times["read"] = time.perf_counter() - start
    start = time.perf_counter()
    probs = predictor.predict_probs(image)
    times["forward"] = clock["forward"]
    times["resize_tile_blend_upsample"] = time.perf_counter() - start - clock["forward"]
    tiles = clock["tiles"]
    start = time.perf_counter()
    preds, prob8 = mask_and_prob8(probs, 0.5)
    del probs
    write_outputs(image, preds, prob8, Path(out) / "photo")
    times["mask_overlay_pngs"] = time.perf_counter() - start
    h, w = Image.open(photo).size[::-1]
    print(json.dumps({"times": times, "tiles": tiles, "model_input": [
        round(h * predictor.scale_for(h, w)), round(w * predictor.scale_for(h, w))],
        "rss_after_load": base_rss}))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", default=["2000x1500", "4000x3000", "8000x6000"])
    p.add_argument("--scales", nargs="+", default=["auto"], help="--scale values to run")
    p.add_argument("--precision", default="auto")
    p.add_argument("--out", default=str(RESULTS / "large_photo"))
    p.add_argument("--stages", nargs=4, metavar=("PHOTO", "OUT", "SCALE", "PRECISION"),
                   help=argparse.SUPPRESS)  # fmt: skip
    args = p.parse_args()
    if args.stages:
        return stages(*args.stages)
    env = dict(os.environ)
    rows = []
    sizes = args.sizes
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            for size in sizes:
                width, height = (int(v) for v in size.split("x"))
                photo = Path(tmp) / f"photo_{size}.jpg"
                if not photo.exists():
                    make_photo(photo, width, height)
                cli = [sys.executable, "-m", "crackseg", "predict", str(photo), "--out",
                       f"{tmp}/cli", "--scale", scale, "--precision", args.precision]  # fmt: skip
                wall, peak, _ = run_child(cli, env)
                child = [sys.executable, __file__, "--stages", str(photo), f"{tmp}/st", scale,
                         args.precision]  # fmt: skip
                _, _, out = run_child(child, env)
                staged = json.loads(out.strip().splitlines()[-1])
                maps = MAP_BYTES_PER_PX * width * height
                rows.append({"size": size, "scale": scale, "end_to_end_s": wall, "peak_rss": peak,
                             "maps_bytes": maps, "peak_minus_maps": peak - maps, **staged})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    result = {"threads": os.environ.get("OMP_NUM_THREADS", "default"), "precision": args.precision,
              "machine": platform.processor() or platform.machine(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rows": rows}  # fmt: skip
    write(result, Path(args.out))


def write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    mb = 2**20
    lines = [f"# Large photos end to end (bundled model, precision {result['precision']}, "
             f"OMP_NUM_THREADS={result['threads']}, {result['date']})", "",
             "| photo | --scale | model input | tiles | end to end s | imports+model load s "
             "| read s | forward s | resize+tile+blend+upsample s | mask+overlay+PNGs s "
             "| peak RSS MB | photo+maps MB | peak - maps MB | RSS after load MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in result["rows"]:
        t = r["times"]
        lines.append(f"| {r['size']} | {r['scale']} | {r['model_input'][1]}x{r['model_input'][0]} "
                     f"| {r['tiles']} | {r['end_to_end_s']:.1f} | {t['load']:.1f} | {t['read']:.2f} "
                     f"| {t['forward']:.2f} | {t['resize_tile_blend_upsample']:.2f} "
                     f"| {t['mask_overlay_pngs']:.2f} "
                     f"| {r['peak_rss'] / mb:.0f} | {r['maps_bytes'] / mb:.0f} | "
                     f"{r['peak_minus_maps'] / mb:.0f} | {r['rss_after_load'] / mb:.0f} |")  # fmt: skip
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
