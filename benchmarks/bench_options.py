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
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import bench_timing as bt
import torch

import crackseg
import crackseg.models.attention as attention_module

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


def experiments(model, args: argparse.Namespace, dtypes: list[str]) -> list[dict]:
    """(option, setting, {variant: call}) triples, the baseline first in each."""
    size, b_inf, b_tr, n_all = args.size, args.infer_batch, args.train_batch, args.threads
    nhwc_i, nchw_i = (runner(model, batch=b_inf, size=size, channels_last=c) for c in (True, False))
    nhwc_t, nchw_t = (runner(model, batch=b_tr, size=size, channels_last=c) for c in (True, False))
    out = []
    for dtype in dtypes:
        out.append(("attention: explicit formula vs fused SDPA", f"inference {dtype} b{b_inf}",
                    {"fused SDPA": infer_call(nhwc_i, dtype),
                     "explicit": infer_call(nhwc_i, dtype, context=formula_attention)}))  # fmt: skip
        out.append(("memory format: NCHW vs channels_last", f"inference {dtype} b{b_inf}",
                    {"channels_last": infer_call(nhwc_i, dtype), "NCHW": infer_call(nchw_i, dtype)}))  # fmt: skip
        out.append(("grad mode: inference_mode vs no_grad", f"inference {dtype} b{b_inf}",
                    {"no_grad": infer_call(nhwc_i, dtype),
                     "inference_mode": infer_call(nhwc_i, dtype, grad_mode=torch.inference_mode)}))  # fmt: skip
        if not args.quick:
            out.append(("attention: explicit formula vs fused SDPA", f"training {dtype} b{b_tr}",
                        {"fused SDPA": train_call(nhwc_t, dtype),
                         "explicit": train_call(nhwc_t, dtype, context=formula_attention)}))  # fmt: skip
            out.append(("memory format: NCHW vs channels_last", f"training {dtype} b{b_tr}",
                        {"channels_last": train_call(nhwc_t, dtype), "NCHW": train_call(nchw_t, dtype)}))  # fmt: skip
        if n_all > 1:
            one = partial(threads, 1)
            out.append(("threads: 1 vs all", f"inference {dtype} b{b_inf}",
                        {f"{n_all} threads": infer_call(nhwc_i, dtype),
                         "1 thread": infer_call(nhwc_i, dtype, context=one)}))  # fmt: skip
    return [{"option": o, "setting": s, "variants": v} for o, s, v in out]


def compiled(model, args: argparse.Namespace, dtype: str) -> dict:
    """torch.compile of the inference forward: compile time (first call minus an eager call)
    and the speed-up of later calls, or the error when compiling fails on this build."""
    r = runner(model, batch=args.infer_batch, size=args.size, channels_last=True)
    eager = infer_call(r, dtype)
    try:
        compiled_model = torch.compile(r.model)
        compiled_r = copy.copy(r)
        compiled_r.model = compiled_model
        start = time.perf_counter()
        infer_call(compiled_r, dtype)()
        first = time.perf_counter() - start
    except Exception as err:  # any backend failure is the finding to report
        return {"option": "torch.compile", "setting": f"inference {dtype} b{args.infer_batch}",
                "error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}  # fmt: skip
    times = compare({"eager": eager, "compiled": infer_call(compiled_r, dtype)}, args.repeats)
    eager_s = statistics.median(times["eager"])
    return {"option": "torch.compile", "setting": f"inference {dtype} b{args.infer_batch}",
            "compile_s": first - eager_s, "times_ms": {k: [t * 1e3 for t in v] for k, v in times.items()},
            "speedup": eager_s / statistics.median(times["compiled"])}  # fmt: skip


def markdown(report: dict) -> str:
    mc, s = report["machine"], report["settings"]
    lines = ["# CPU options for the bundled model, A/B in one process", "",
             f"{mc['date']} on {mc['cpu_model']} ({mc['threads']} torch threads), torch "
             f"{report['versions']['torch']}, commit {mc['git_commit']}; {s['size']}x{s['size']}, "
             f"median of {s['repeats']} interleaved calls after a warm-up"
             + (", QUICK (smoke test, not for quoting)" if s["quick"] else "") + ".",
             "Baseline: as `crackseg predict` runs it (channels_last, no_grad, all threads, "
             "fused SDPA). Speed-up = baseline time / variant time (> 1: the variant is faster).",
             "", "| option | setting | baseline ms | variant | variant ms | speed-up |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in report["results"]:
        if r["option"] == "torch.compile":
            continue
        (base, tb), (var, tv) = r["median_ms"].items()
        lines.append(f"| {r['option']} | {r['setting']} | {tb:.1f} | {var} | {tv:.1f} | "
                     f"{tb / tv:.2f}x |")  # fmt: skip
    for c in report["compile"]:
        if "error" in c:
            lines.append(f"| torch.compile | {c['setting']} | - | compiled | failed: "
                         f"{c['error']} | - |")  # fmt: skip
        else:
            e, v = (statistics.median(c["times_ms"][k]) for k in ("eager", "compiled"))
            lines.append(f"| torch.compile (compile {c['compile_s']:.0f} s) | {c['setting']} | "
                         f"{e:.1f} | compiled | {v:.1f} | {c['speedup']:.2f}x |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: 2 repeats, no training rows")
    p.add_argument("--size", type=int, default=416)
    p.add_argument("--infer-batch", type=int, default=1)
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--out", type=Path, default=HERE.parent / "results")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 2
    torch.set_num_threads(args.threads)
    probe = bt.bf16_probe()
    dtypes = ["fp32", "bf16"] if probe["native"] else ["fp32"]
    model = crackseg.load_model()
    results = []
    for exp in experiments(model, args, dtypes):
        times = compare(exp.pop("variants"), args.repeats)
        exp["median_ms"] = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        exp["times_ms"] = {k: [t * 1e3 for t in v] for k, v in times.items()}
        results.append(exp)
        print(f"{exp['option']}, {exp['setting']}: {exp['median_ms']}", file=sys.stderr, flush=True)
    compile_rows = [] if args.no_compile else [compiled(model, args, d) for d in dtypes]
    report = {"machine": bt.machine(), "versions": {"torch": torch.__version__},
              "settings": {"size": args.size, "repeats": args.repeats, "quick": args.quick,
                           "infer_batch": args.infer_batch, "train_batch": args.train_batch,
                           "bf16": probe},
              "results": results, "compile": compile_rows}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_options.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (args.out / "bench_options.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
