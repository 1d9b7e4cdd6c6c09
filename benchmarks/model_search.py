"""Model search at equal wall-clock budgets: train a candidate, evaluate its final weights, record.

    python benchmarks/model_search.py run NAME --config configs/search/NAME.yaml --minutes 25 \
        [--threads 1 --cpu 0] [--resume] [--peers]
    python benchmarks/model_search.py soup NAME --from RUN_A/last.ckpt RUN_B/last.ckpt
    python benchmarks/model_search.py table       # benchmarks/results/model_search.md from the JSONs

`run` trains with `--time-limit M --budget-schedule` (the LR decays over the budget, training stops
when it is spent), then evaluates the FINAL weights (last.ckpt: no checkpoint picked on val) on
crack-seg val at native 416 and on two sets it never trains on: masonry walls (240 patches) and
pavement val (CRACK500, GAPs384, ShadowCrack, AigleRN crops). Threads are fixed per run
(OMP_NUM_THREADS, and `taskset` when --cpu is given), so two runs side by side each own a core.
`soup` averages the weights of runs fine-tuned from the same start (a "model soup", Wortsman et
al. 2022: no training, one more candidate) and scores it the same way, under the runs' budget.
`--peers` runs every crackseg command through benchmarks/peer_presets.py, so a config may name a
segmentation_models_pytorch peer (e.g. `model: smp_unet_resnet18`; run it with .venv-peers/bin/python).
Every run's command, config and summary go to benchmarks/results/model_search/NAME-Mm.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CRACK_SEG = DATA / "crack-seg" / "crack-seg.yaml"
EVALS = {  # name: (dataset, split)
    "val": (CRACK_SEG, "val"),
    "masonry": (DATA / "masonry", "train"),  # no splits: all 240 patches, never trained on
    "pavement": (DATA / "pavement", "val"),
}
RESULTS = ROOT / "benchmarks" / "results" / "model_search"
TABLE = ROOT / "benchmarks" / "results" / "model_search.md"
PEER_ENTRY = ROOT / "benchmarks" / "peer_presets.py"


def crackseg_cmd(args: list[str], threads: int, cpu: int | None, peers: bool = False) -> list[str]:
    prefix = ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []
    entry = [str(PEER_ENTRY)] if peers else ["-m", "crackseg"]
    return [*prefix, sys.executable, *entry, *args]


def thread_env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def evaluate(ckpt: Path, name: str, threads: int, cpu: int | None, peers: bool = False) -> dict:
    data, split = EVALS[name]
    out = ckpt.parent / f"eval_{name}"
    cmd = crackseg_cmd(["evaluate", "--checkpoint", str(ckpt), "--data", str(data), "--split",
                        split, "--json", "--out", str(out), "--workers", "0"], threads, cpu,
                       peers)  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=thread_env(threads))
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    metrics = json.loads(proc.stdout)["metrics"]
    keys = ("crack_iou", "crack_f1", "precision", "recall", "tol_f1", "ods_f1", "ods_threshold")
    return {k: metrics.get(k) for k in keys} | {"images": metrics.get("images")}


def inference_ms(ckpt: Path, threads: int) -> float:
    """Median ms per 416x416 image, batch 1, as `crackseg predict` runs it (bf16 where it wins;
    resized by the checkpoint's predict_scale, e.g. 624x624 for a model trained at 1.5x)."""
    import torch

    from crackseg.engine.checkpoint import load_model
    from crackseg.engine.setup import resolve_amp
    from crackseg.tensors import autocast

    torch.set_num_threads(threads)
    model = load_model(ckpt).eval()
    amp = resolve_amp("auto", torch.device("cpu"))
    side = round(416 * (model.config.get("predict_scale") or 1.0))
    x = torch.randn(1, 3, side, side)
    times = []
    with torch.inference_mode(), autocast(torch.device("cpu"), amp):
        for i in range(12):
            start = time.perf_counter()
            model(x)
            if i >= 2:
                times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def run(args: argparse.Namespace) -> None:
    tag = f"{args.name}-{args.minutes:g}m"
    out = ROOT / "runs" / "search" / tag
    train = ["train", "--config", str(args.config), "--data", str(CRACK_SEG), "--out", str(out),
             "--time-limit", str(args.minutes), "--budget-schedule", "--epochs", "1000"]  # fmt: skip
    if args.resume:
        train.append("--resume")
    cmd = crackseg_cmd(train, args.threads, args.cpu, args.peers)
    if args.peers:
        sys.path.insert(0, str(PEER_ENTRY.parent))
        import peer_presets  # the peers' presets, for inference_ms's load_model below

        peer_presets.register()
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(out.parent / f"{tag}.log", "a") as log:
        code = subprocess.run(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=thread_env(args.threads)
        ).returncode
    wall = time.perf_counter() - started
    if code != 0:
        sys.exit(f"training {tag} failed (exit {code}); see {out.parent / f'{tag}.log'}")
    ckpt = out / "last.ckpt"
    summary = json.loads((out / "summary.json").read_text())
    history = summary_history(ckpt)
    record = {
        "name": args.name,
        "budget_minutes": args.minutes,
        "threads": args.threads,
        "cpu": args.cpu,
        "torch": torch_version(),
        "command": " ".join(cmd),
        "config_file": str(args.config),
        "config": Path(args.config).read_text(),
        "wall_seconds": wall,
        "epochs": summary["epochs"],
        "steps": history[-1]["step"],
        "train_images_per_s": statistics.mean(r["images_per_s"] for r in history),
        "train_images": sum(r["images_per_s"] * r["epoch_seconds"] for r in history),
        "inference_ms_416": inference_ms(ckpt, args.threads),
        "eval": {name: evaluate(ckpt, name, args.threads, args.cpu, args.peers) for name in EVALS},
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{tag}.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record["eval"], indent=2))
    write_table()


def soup(args: argparse.Namespace) -> None:
    """Average the weights `load_model` evaluates (EMA when stored) of runs of one preset; score."""
    import torch

    from crackseg.engine.checkpoint import load_model, model_payload, save_checkpoint
    from crackseg.errors import CrackSegError

    records = [RESULTS / f"{Path(p).parent.name}.json" for p in args.sources]
    missing = [str(r) for r in records if not r.exists()]
    if missing:
        sys.exit(f"soup: no model-search record {missing}: average runs made with `run`")
    sources = [json.loads(r.read_text()) for r in records]
    minutes = max(r["budget_minutes"] for r in sources)
    try:
        models = [load_model(p) for p in args.sources]
    except CrackSegError as err:
        sys.exit(f"soup: {err}")
    if len({repr(m.preset) for m in models}) != 1:
        presets = ", ".join(
            f"{p}: {m.preset['name']} {m.preset['overrides']}" for p, m in zip(args.sources, models)
        )
        sys.exit(f"soup: average runs of one preset ({presets})")
    states = [m.state_dict() for m in models]
    mean = {
        k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype)
        if v.is_floating_point() else v  # e.g. BatchNorm's num_batches_tracked
        for k, v in states[0].items()
    }  # fmt: skip
    tag = f"{args.name}-{minutes:g}m"
    out = ROOT / "runs" / "search" / tag
    # the preset and the first run's training config; no epoch, step or history of its own
    payload = model_payload(models[0]) | {"config": models[0].config, "state_dict": mean}
    save_checkpoint(payload | {"soup": [str(p) for p in args.sources]}, out / "last.ckpt")
    record = {
        "name": args.name,
        "budget_minutes": minutes,
        "threads": " + ".join(str(r["threads"]) for r in sources),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "soup_of": [r["name"] for r in sources],
        "epochs": "soup",
        "steps": sum(r["steps"] for r in sources),
        "train_images_per_s": statistics.mean(r["train_images_per_s"] for r in sources),
        "inference_ms_416": inference_ms(out / "last.ckpt", args.threads),
        "eval": {name: evaluate(out / "last.ckpt", name, args.threads, None) for name in EVALS},
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    (RESULTS / f"{tag}.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record["eval"], indent=2))
    write_table()


def torch_version() -> str:
    import torch

    return torch.__version__


def summary_history(ckpt: Path) -> list[dict]:
    import torch

    return torch.load(ckpt, map_location="cpu", weights_only=True)["history"]


def fmt(value, digits: int = 3) -> str:
    return "undefined" if value is None else f"{value:.{digits}f}"


def write_table() -> None:
    rows = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    rows.sort(key=lambda r: (r["budget_minutes"], -(r["eval"]["val"].get("crack_iou") or 0)))
    lines = [
        "| candidate | budget | threads | epochs (steps) | train img/s | infer ms (416, b1) "
        "| val IoU | val F1 | val tol-F1 (2 px) | val ODS F1 | masonry IoU / F1 | pavement IoU / F1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        v, m, p = r["eval"]["val"], r["eval"]["masonry"], r["eval"]["pavement"]
        lines.append(
            f"| {r['name']} | {r['budget_minutes']:g} min | {r['threads']} "
            f"| {r['epochs']} ({r['steps']}) | {r['train_images_per_s']:.1f} "
            f"| {r['inference_ms_416']:.0f} | {fmt(v.get('crack_iou'))} | {fmt(v.get('crack_f1'))} "
            f"| {fmt(v.get('tol_f1'))} | {fmt(v.get('ods_f1'))} "
            f"| {fmt(m.get('crack_iou'))} / {fmt(m.get('crack_f1'))} "
            f"| {fmt(p.get('crack_iou'))} / {fmt(p.get('crack_f1'))} |"
        )
    header = (
        TABLE.read_text().split("<!-- table -->")[0] if TABLE.exists() else "# Model search\n\n"
    )
    TABLE.write_text(header + "<!-- table -->\n" + "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("name")
    r.add_argument("--config", required=True, type=Path)
    r.add_argument("--minutes", type=float, required=True)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--cpu", type=int, help="pin to this core (taskset)")
    r.add_argument("--resume", action="store_true")
    r.add_argument("--peers", action="store_true",
                   help="run through benchmarks/peer_presets.py (configs naming an smp peer)")  # fmt: skip
    s = sub.add_parser("soup")
    s.add_argument("name")
    s.add_argument("--from", dest="sources", nargs="+", required=True, type=Path)
    s.add_argument("--threads", type=int, default=2)
    sub.add_parser("table")
    args = parser.parse_args()
    {"run": run, "soup": soup, "table": lambda _: write_table()}[args.cmd](args)


if __name__ == "__main__":
    main()
