"""crackseg next to its peers (timm ViTs, segmentation-models-pytorch) under one torch, in one process.

    make bench                                  # .venv-peers when it exists, else .venv
    .venv-peers/bin/python benchmarks/bench.py --quick
    .venv-peers/bin/python benchmarks/bench.py --models unet_small "smp Unet(resnet18)" --threads 2

For each model at SIZE x SIZE (default 416): parameters, forward GFLOPs, inference and training-step
ms/image at batch 1 and, for the pairs the issue's targets judge (or all with --all-batches), 8;
in fp32 and bf16 autocast (where the CPU has native bf16); and the peak memory of one inference
call and one training step in a fresh process (fp32, the largest batch timed). The models' calls
are interleaved (warm-up each, then round-robin repeats, each peer next to the models judged
against it and each fp32 call next to its bf16 one: a load change hits both sides of a ratio
alike) and the median is kept. Writes OUT/bench.json and
OUT/bench.md with the ratios ours/peer and the targets, each with its status computed from the
numbers. Default run: about 15 minutes on 2 cores (--quick: about 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import bench_models as bm
import bench_report
import bench_timing as bt
import torch

HERE = Path(__file__).resolve()
MODES = ("infer", "train")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help="entries to run (default: those --list marks default)")  # fmt: skip
    p.add_argument("--all", action="store_true", help="every entry, the optional ones too")
    p.add_argument("--list", action="store_true", help="print the entry names and exit")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: one pair per target, batch 1, 2 repeats, no memory probe")  # fmt: skip
    p.add_argument("--no-peers", action="store_true", help="only crackseg's models")
    p.add_argument("--size", type=int, default=416, help="square input side (default 416)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--all-batches", action="store_true",
                   help="every model at every batch (default: the larger batches only for the "
                   "target pairs; it doubles the run)")  # fmt: skip
    p.add_argument("--dtypes", nargs="+", choices=list(bt.DTYPES), default=list(bt.DTYPES))
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--repeats", type=int, default=5, help="timed calls per model and setting")
    p.add_argument("--cell-budget", type=float, default=6.0, metavar="S",
                   help="fewer repeats (at least --min-repeats) for a model whose call is slow: "
                   "about S seconds of timed calls per model and setting")  # fmt: skip
    p.add_argument("--min-repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="torch threads (default: the CPUs this process may use)")  # fmt: skip
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    p.add_argument("--out", type=Path, default=HERE.parent / "results")
    p.add_argument("--memory-probe", metavar="NAME", help=argparse.SUPPRESS)  # child process mode
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.min_repeats, args.no_memory = 2, 2, True
        args.batches = [1] if args.batches == [1, 8] else args.batches
    for name in args.models or []:
        if name not in bm.ENTRIES:
            p.error(f"--models: unknown entry {name!r}; --list shows the names")
    if args.size < 32 or args.size % 32:
        p.error(f"--size {args.size}: give a multiple of 32 (smp U-Nets need it), e.g. 416")
    if min(args.batches) < 1 or min(args.threads, args.repeats, args.min_repeats) < 1:
        p.error("--batches, --threads, --repeats and --min-repeats must be >= 1")
    return args


def select(args: argparse.Namespace, peers_missing: str | None) -> list[str]:
    if args.models or args.all:
        names = args.models or list(bm.ENTRIES)
    else:
        names = bm.QUICK if args.quick else bm.DEFAULT
    if peers_missing or args.no_peers:
        names = [n for n in names if bm.ENTRIES[n].side == "ours"]
    return by_peer(names)


def by_peer(names: list[str]) -> list[str]:
    """Each peer followed by the models judged against it, so that the calls a ratio compares
    lie close together in every round-robin pass."""
    groups: dict[str, list[str]] = {}
    for name in names:
        peer = bm.ENTRIES[name].peer
        key = peer if peer in names else name
        groups.setdefault(key, [])
        if name != key:
            groups[key].append(name)
    return [n for key, members in groups.items() for n in [key, *members]]


def timed_at(name: str, batch: int, args: argparse.Namespace) -> bool:
    """The smallest batch for every model, the larger ones for the target pairs (or all)."""
    return batch == min(args.batches) or args.all_batches or name in bm.TARGET_PAIRS


def time_setting(runners: dict, mode: str, dtypes: list[str], args: argparse.Namespace) -> tuple:
    """Warm up every (model, dtype), then round-robin timed calls over all of them, so that both
    ours/peer and bf16/fp32 ratios compare calls made seconds apart.

    Returns ({(name, dtype): [seconds]}, {(name, dtype): error}): a model that cannot run a
    setting (e.g. BatchNorm on a 1x1 map when training at batch 1) is left out with its error."""
    warm, errors = {}, {}
    for name, runner in runners.items():
        for dtype in dtypes:
            try:
                warm[(name, dtype)] = runner.seconds(mode, dtype)
            except (RuntimeError, ValueError) as err:
                errors[(name, dtype)] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    want = {key: max(args.min_repeats, min(args.repeats, int(args.cell_budget / w)))
            for key, w in warm.items()}  # fmt: skip
    times: dict[tuple, list[float]] = {key: [] for key in warm}
    for _ in range(max(want.values(), default=0)):
        for name, dtype in warm:
            if len(times[(name, dtype)]) < want[(name, dtype)]:
                times[(name, dtype)].append(runners[name].seconds(mode, dtype))
    return times, errors


def run(args: argparse.Namespace) -> dict:
    peers_missing = None if args.no_peers else bm.peers_available()
    names = select(args, peers_missing)
    probe = bt.bf16_probe()
    dtypes = [d for d in args.dtypes if d != "bf16" or probe["native"]]
    memory = "fp32, the largest batch timed, fresh process, VmHWM"
    memory = "skipped" if args.no_memory else memory
    report = {
        "machine": bt.machine(),
        "versions": bm.versions(),
        "settings": {
            "size": args.size,
            "batches": args.batches,
            "dtypes": dtypes,
            "modes": args.modes,
            "repeats": args.repeats,
            "min_repeats": args.min_repeats,
            "cell_budget_s": args.cell_budget,
            "quick": args.quick,
            "all_batches": args.all_batches,
            "peers": "skipped (--no-peers)" if args.no_peers else peers_missing or "installed",
            "bf16": probe,
            "memory": memory,
        },
        "models": {},
        "timings": [],
        "errors": [],
    }
    built = {}
    for name in names:
        entry = bm.ENTRIES[name]
        torch.manual_seed(0)
        built[name] = entry.build(args.size)
        report["models"][name] = {"side": entry.side, "kind": entry.kind, "peer": entry.peer,
                                  "channels_last": entry.channels_last, "note": entry.note,
                                  **bt.model_cost(built[name], args.size)}  # fmt: skip
        cost = report["models"][name]
        print(f"built {name}: {cost['params_m']:.2f} M parameters, {cost['gflops']:.1f} GFLOPs",
              file=sys.stderr, flush=True)  # fmt: skip
    for batch in args.batches:
        at_batch = [n for n in names if timed_at(n, batch, args)]
        runners = {n: bt.Runner(built[n], bm.ENTRIES[n].kind, batch=batch, size=args.size,
                                channels_last=bm.ENTRIES[n].channels_last) for n in at_batch}  # fmt: skip
        for mode in args.modes:
            times, errors = time_setting(runners, mode, dtypes, args)
            for (name, dtype), error in errors.items():
                report["errors"].append({"model": name, "mode": mode, "dtype": dtype,
                                         "batch": batch, "error": error})  # fmt: skip
            for (name, dtype), ts in times.items():
                ms = statistics.median(ts) * 1e3 / batch
                print(f"  {name:45} {dtype} {ms:9.1f} ms/image ({len(ts)} runs)",
                      file=sys.stderr, flush=True)  # fmt: skip
                report["timings"].append({"model": name, "mode": mode, "dtype": dtype,
                                          "batch": batch, "ms_per_image": ms, "runs": len(ts),
                                          "times_ms": [t * 1e3 for t in ts]})  # fmt: skip
            print(f"timed {mode} batch {batch}", file=sys.stderr, flush=True)
    if not args.no_memory:
        for name in names:
            batch = max(b for b in args.batches if timed_at(name, b, args))
            memory = bt.measure_memory(HERE, name, size=args.size, batch=batch, dtype="fp32")
            report["models"][name]["memory"] = {"batch": batch, **memory}
    report["ratios"] = bench_report.ratios(report)
    report["targets"] = bench_report.targets(report)
    return report


def memory_probe(args: argparse.Namespace) -> None:
    """Child process: build one model, print its memory figures as one JSON line."""
    entry = bm.ENTRIES[args.memory_probe]
    torch.manual_seed(0)
    runner = bt.Runner(entry.build(args.size), entry.kind, batch=args.batches[0], size=args.size,
                       channels_last=entry.channels_last)  # fmt: skip
    print(json.dumps(bt.memory_probe(runner, args.dtypes[0])))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.list:
        for name, e in bm.ENTRIES.items():
            run_by = "default" if name in bm.DEFAULT else "optional"
            batches = "every batch" if name in bm.TARGET_PAIRS else "smallest batch"
            print(f"{name:45} {e.side:5} {e.kind:13} {run_by:9} {batches}")
        return 0
    if args.memory_probe:
        memory_probe(args)
        return 0
    start = time.perf_counter()
    report = run(args)
    report["settings"]["wall_s"] = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(report, indent=1) + "\n")
    markdown = bench_report.markdown(report)
    (args.out / "bench.md").write_text(markdown)
    print(markdown)
    print(f"wrote {args.out / 'bench.md'} and bench.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
