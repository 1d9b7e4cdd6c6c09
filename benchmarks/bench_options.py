"""What each CPU speed option buys the bundled model, measured A/B in one process.

    make bench                     # runs this after bench.py
    .venv-peers/bin/python benchmarks/bench_options.py --quick

Starting from the way `crackseg predict` runs the default model (channels_last, fp32, no_grad, all
CPUs), one option is flipped at a time: fused SDPA vs the explicit softmax(q k^T / sqrt(d)) v
path of `crackseg.models.attention`, channels_last vs NCHW, `torch.inference_mode` vs `no_grad`,
1 thread vs all, and `torch.compile` (with its compile time). Variants are interleaved (warm-up,
then round-robin timed calls) and the medians compared: speed-up = baseline time / variant time,
> 1 means the variant is faster. Writes OUT/bench_options.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import bench_timing as bt
import torch

import crackseg

# the module itself: `crackseg.models.attention` as an attribute is the function it re-exports
attention_module = importlib.import_module("crackseg.models.attention")

HERE = Path(__file__).resolve()


_fused_or_formula = attention_module.attention  # fused SDPA unless weights are asked for


def explicit_attention(q, k, v, *, return_weights: bool = False, dropout_p: float = 0.0):
    """The formula path of `crackseg.models.attention.attention` for every call (no fused SDPA)."""
    out, weights = _fused_or_formula(q, k, v, return_weights=True, dropout_p=dropout_p)
    return (out, weights) if return_weights else out


@contextlib.contextmanager
def formula_attention():
    attention_module.attention = explicit_attention
    try:
        yield
    finally:
        attention_module.attention = _fused_or_formula


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def compare(variants: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """Warm up each variant, then `repeats` round-robin timed calls; {name: [seconds]}."""
    for call in variants.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, call in variants.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return times


def runner(model, *, batch: int, size: int, channels_last: bool) -> bt.Runner:
    return bt.Runner(copy.deepcopy(model), "segmentation", batch=batch, size=size,
                     channels_last=channels_last)  # fmt: skip


def infer_call(
    r: bt.Runner, dtype: str, *, grad_mode=torch.no_grad, context=contextlib.nullcontext
):
    def call():
        r.model.eval()
        with context(), grad_mode(), bt.autocast(dtype):
            r.model(r.images)

    return call


def train_call(r: bt.Runner, dtype: str, *, context=contextlib.nullcontext):
    def call():
        with context():
            r.train_step(dtype)

    return call


def compile_variant(r: bt.Runner, dtype: str) -> tuple[dict, Callable[[], None] | None]:
    """torch.compile of the inference forward: its compile time (first call minus an eager
    call) and the compiled call, or the error when compiling fails on this build."""
    eager = infer_call(r, dtype)
    eager()
    start = time.perf_counter()
    eager()
    eager_s = time.perf_counter() - start
    compiled_r = copy.copy(r)
    compiled_r.model = torch.compile(r.model)
    call = infer_call(compiled_r, dtype)
    try:
        start = time.perf_counter()
        call()
    except Exception as err:  # any backend failure is the finding to report
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}, None
    return {"compile_s": time.perf_counter() - start - eager_s}, call


def settings(model, args: argparse.Namespace, dtypes: list[str]) -> list[dict]:
    """Per setting, the baseline and one variant per option, to be timed interleaved."""
    size, b_inf, b_tr, n_all = args.size, args.infer_batch, args.train_batch, args.threads
    nhwc_i, nchw_i = (runner(model, batch=b_inf, size=size, channels_last=c) for c in (True, False))
    out = []
    for dtype in dtypes:
        variants = {"baseline": infer_call(nhwc_i, dtype),
                    "explicit attention": infer_call(nhwc_i, dtype, context=formula_attention),
                    "NCHW": infer_call(nchw_i, dtype),
                    "inference_mode": infer_call(nhwc_i, dtype, grad_mode=torch.inference_mode)}  # fmt: skip
        if n_all > 1:
            variants["1 thread"] = infer_call(nhwc_i, dtype, context=partial(threads, 1))
        compiled = {}
        if not args.no_compile:
            compiled, call = compile_variant(nhwc_i, dtype)
            if call is not None:
                variants["torch.compile"] = call
        out.append({"setting": f"inference {dtype} b{b_inf}", "variants": variants,
                    "compile": compiled})  # fmt: skip
    if args.quick:
        return out
    nhwc_t, nchw_t = (runner(model, batch=b_tr, size=size, channels_last=c) for c in (True, False))
    for dtype in dtypes:
        variants = {"baseline": train_call(nhwc_t, dtype),
                    "explicit attention": train_call(nhwc_t, dtype, context=formula_attention),
                    "NCHW": train_call(nchw_t, dtype)}  # fmt: skip
        out.append({"setting": f"training {dtype} b{b_tr}", "variants": variants})
    return out


def markdown(report: dict) -> str:
    mc, s = report["machine"], report["settings"]
    lines = ["# CPU options for the bundled model, A/B in one process", "",
             f"{mc['date']} on {mc['cpu_model']} ({mc['threads']} torch threads), torch "
             f"{report['versions']['torch']}, commit {mc['git_commit']}; {s['size']}x{s['size']}, "
             f"median of {s['repeats']} interleaved calls (training: {s['train_repeats']}) after a "
             "warm-up" + (", QUICK (smoke test, not for quoting)" if s["quick"] else "") + ".",
             "Baseline: as `crackseg predict` runs it (channels_last, no_grad, all threads, "
             "fused SDPA); each variant changes one of these. Speed-up = baseline time / variant "
             "time (> 1: the variant is faster).",
             "", "| setting | baseline ms | variant | variant ms | speed-up |",
             "|---|---|---|---|---|"]  # fmt: skip
    for r in report["results"]:
        base = r["median_ms"]["baseline"]
        for name, ms in r["median_ms"].items():
            if name != "baseline":
                lines.append(f"| {r['setting']} | {base:.1f} | {name} | {ms:.1f} | "
                             f"{base / ms:.2f}x |")  # fmt: skip
    for r in report["results"]:
        if "compile_s" in r.get("compile", {}):
            lines.append(f"\ntorch.compile, {r['setting']}: compile time {r['compile']['compile_s']:.0f} s "
                         "(first call minus an eager call, cold cache).")  # fmt: skip
        elif "error" in r.get("compile", {}):
            lines.append(f"\ntorch.compile, {r['setting']}: failed: {r['compile']['error']}")
    if s["threads"] < 2:
        lines.append("\n1 thread vs all: not measured (this process may use 1 CPU).")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> dict:
    probe = bt.bf16_probe()
    dtypes = ["fp32", "bf16"] if probe["native"] else ["fp32"]
    model = crackseg.load_model()
    results = []
    for exp in settings(model, args, dtypes):
        repeats = args.train_repeats if exp["setting"].startswith("training") else args.repeats
        times = compare(exp.pop("variants"), repeats)
        exp["median_ms"] = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        exp["times_ms"] = {k: [t * 1e3 for t in v] for k, v in times.items()}
        results.append(exp)
        print(f"{exp['setting']}: {exp['median_ms']}", file=sys.stderr, flush=True)
    settings_used = {"size": args.size, "repeats": args.repeats, "quick": args.quick,
                     "train_repeats": args.train_repeats, "threads": args.threads,
                     "infer_batch": args.infer_batch, "train_batch": args.train_batch, "bf16": probe}  # fmt: skip
    return {"machine": bt.machine(), "versions": {"torch": torch.__version__},
            "settings": settings_used, "results": results}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: 2 repeats, no training rows")
    p.add_argument("--size", type=int, default=416)
    p.add_argument("--infer-batch", type=int, default=1)
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5, help="timed inference calls per variant")
    p.add_argument("--train-repeats", type=int, default=3, help="timed training steps per variant")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--out", type=Path, default=HERE.parent / "results")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = args.train_repeats = 2
    torch.set_num_threads(args.threads)
    # a cold inductor cache, so the compile time is what a first run pays
    with tempfile.TemporaryDirectory(prefix="bench-options-inductor-") as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        report = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_options.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (args.out / "bench_options.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
