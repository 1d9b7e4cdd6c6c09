"""ONNX Runtime vs eager PyTorch on the same threads: ms/image of the bundled model (or
--checkpoint) at 416x416, batch 1 and 8, fp32; bf16 autocast eager for reference where the CPU
has native bf16. Issue 9 asks for >= 1.5x from ONNX Runtime on the default model.

Both sides run one forward pass on the same input; each repeat round runs every variant once, in
a rotating order (interleaved), and a variant's figure is the median over rounds. ONNX Runtime
gets torch's thread count (intra-op) and is tried with each graph optimisation level and with a
fixed-size export, as those are the session options that could change the verdict.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/onnx_speed.py            # ~10 min on 2 cores
    .venv/bin/python benchmarks/onnx_speed.py --quick                       # smoke run

Writes benchmarks/results/onnx_speed.md and .json (every sample, machine, versions).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from crackseg.deploy.onnx_export import export_onnx
from crackseg.deploy.onnx_runtime import open_session
from crackseg.engine.checkpoint import load_model
from crackseg.engine.setup import cpu_has_fast_bf16

RESULTS = Path(__file__).parent / "results"
TARGET = 1.5  # issue 9: ONNX Runtime >= 1.5x eager fp32 on the default model
REFERENCE = "eager fp32"


def cpu_name() -> str:
    for line in (
        Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    ):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def eager(model, images, *, channels_last=False, bf16=False):
    """A no-argument callable: one eager forward pass as `Predictor` runs it."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    def run():
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            return model(images).float()

    return run


def ort(session, images):
    array = images.numpy()
    return lambda: torch.from_numpy(session.run(None, {"images": array})[0])


def variants(model, files: dict, images, batch: int, *, bf16: bool, explore: bool) -> dict:
    """name -> callable for one batch; ORT option variants only where `explore`."""
    out = {REFERENCE: eager(model, images),
           "eager fp32 channels_last": eager(model, images, channels_last=True)}  # fmt: skip
    if bf16:
        out["eager bf16 autocast channels_last"] = eager(model, images, channels_last=True,
                                                         bf16=True)  # fmt: skip
    out["ORT dynamic, level all"] = ort(open_session(files["dynamic"]), images)
    out["ORT fixed 416, level all"] = ort(open_session(files["fixed"]), images)
    if explore:
        for level in ("extended", "basic", "disable"):
            session = open_session(files["dynamic"], level=level)
            out[f"ORT dynamic, level {level}"] = ort(session, images)
    return out


def measure(fns: dict, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call per variant; round r starts at variant r (rotating, interleaved)."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    samples = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="default: the bundled model")
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="2 repeats, batch 1 only")
    parser.add_argument("--out", default=str(RESULTS / "onnx_speed"), help="path without suffix")
    parser.add_argument(
        "--note", default="", help="a line for the report, e.g. how quiet the machine was"
    )
    parser.add_argument("--render", metavar="JSON", help="only re-render the .md of a .json report")
    args = parser.parse_args()
    if args.render:
        path = Path(args.render)
        path.with_suffix(".md").write_text(render(json.loads(path.read_text())))
        return
    repeats, batches = (2, [1]) if args.quick else (args.repeats, args.batches)
    model = load_model(args.checkpoint)
    name = model.config.get("bundle") or args.checkpoint
    threads = torch.get_num_threads()
    bf16 = cpu_has_fast_bf16()
    rows, checks = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {"dynamic": Path(tmp) / "dynamic.onnx", "fixed": Path(tmp) / "fixed.onnx"}
        export_onnx(model, files["dynamic"], dynamic=True, image_size=args.size)
        export_onnx(model, files["fixed"], dynamic=False, image_size=args.size)
        for batch in batches:
            images = torch.randn(
                batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)
            )
            fns = variants(model, files, images, batch, bf16=bf16, explore=batch == batches[0])
            reference = fns[REFERENCE]()
            checks[batch] = {
                k: float((f() - reference).abs().max())
                for k, f in fns.items()
                if k.startswith("ORT")
            }
            samples = measure(fns, repeats, warmup=1)
            ref_ms = statistics.median(samples[REFERENCE]) * 1000 / batch
            for variant, secs in samples.items():
                ms = statistics.median(secs) * 1000 / batch
                rows.append({"batch": batch, "variant": variant, "ms_per_image": round(ms, 2),
                             "speedup_vs_eager_fp32": round(ref_ms / ms, 3),
                             "samples_s": [round(s, 5) for s in secs]})  # fmt: skip
                print(f"b{batch} {variant:36} {ms:8.1f} ms/image  {ref_ms / ms:5.2f}x", flush=True)
    write(args, rows, checks, name=name, threads=threads, repeats=repeats, bf16=bf16)


def write(args, rows, checks, *, name, threads, repeats, bf16) -> None:
    """The JSON (every sample), then the markdown rendered from it."""
    import onnxruntime

    meta = {"note": args.note, "model": name, "size": args.size, "threads": threads,
            "repeats": repeats, "cpu": cpu_name(), "bf16_native": bf16,
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {**meta, "max_abs_logit_diff": checks, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(render(report))
    print(f"wrote {out.with_suffix('.md')} and .json")


def render(report: dict) -> str:
    """The markdown table and the verdict against the target, from the JSON report."""
    rows, size = report["rows"], report["size"]
    table = [f"| {r['batch']} | {r['variant']} | {r['ms_per_image']:.1f} | "
             f"{r['speedup_vs_eager_fp32']:.2f}x |" for r in rows]  # fmt: skip
    verdict = []
    for batch in sorted({r["batch"] for r in rows}):
        mine = [r for r in rows if r["batch"] == batch]
        best = max((r for r in mine if r["variant"].startswith("ORT")),
                   key=lambda r: r["speedup_vs_eager_fp32"])  # fmt: skip
        x = best["speedup_vs_eager_fp32"]
        line = (f"- batch {batch}: best ONNX Runtime variant `{best['variant']}` {x:.2f}x eager "
                f"fp32: {'meets' if x >= TARGET else 'misses'} the target")  # fmt: skip
        bf16 = [r for r in mine if "bf16" in r["variant"]]
        if bf16:
            ratio = bf16[0]["ms_per_image"] / best["ms_per_image"]
            line += (
                f"; ORT at {ratio:.2f}x the speed of bf16 autocast eager (predict's default here)"
            )
        verdict.append(line)
    worst = max(max(c.values()) for c in report["max_abs_logit_diff"].values())
    return "\n".join([
        "# ONNX Runtime vs eager PyTorch",
        "",
        f"`benchmarks/onnx_speed.py`: {report['model']} at {size}x{size}, {report['threads']} "
        f"thread(s) for both, median of {report['repeats']} interleaved repeats; {report['cpu']}; "
        f"torch {report['torch']}, onnxruntime {report['onnxruntime']}; {report['date']}.",
        *(["", report["note"]] if report.get("note") else []),
        "",
        "| batch | variant | ms/image | vs eager fp32 |",
        "| ---: | --- | ---: | ---: |",
        *table,
        "",
        f"Target (issue 9): ONNX Runtime >= {TARGET}x eager fp32 on the default model.",
        *verdict,
        f"- max |ORT - eager fp32| logit: {worst:.1e}",
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
