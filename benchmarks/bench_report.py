"""Ratios, the issue's targets (each with a status computed from the numbers) and bench.md."""

from __future__ import annotations

from bench_models import BUNDLED, SMP_UNET18

VIT_PAIRS = ["vit_tiny_patch16", "vit_small_patch16", "segmenter_vit_tiny_patch16_linear",
             "segmenter_vit_small_patch16_linear", "vit_tiny_patch8", "vit_small_patch8",
             "segmenter_vit_tiny_patch8_linear", "segmenter_vit_small_patch8_linear"]  # fmt: skip
MODE_NAMES = {"infer": "inference", "train": "training step"}


def _ms(report: dict) -> dict:
    return {(t["model"], t["mode"], t["dtype"], t["batch"]): t["ms_per_image"]
            for t in report["timings"]}  # fmt: skip


def ratios(report: dict) -> list[dict]:
    """Time ratio ours / peer (< 1: ours is faster) for every measured ours-peer pair and setting."""
    ms, out = _ms(report), []
    for (name, mode, dtype, batch), ours in ms.items():
        peer = report["models"][name]["peer"]
        if (peer, mode, dtype, batch) in ms:
            out.append({"model": name, "peer": peer, "mode": mode, "dtype": dtype, "batch": batch,
                        "ratio": ours / ms[(peer, mode, dtype, batch)]})  # fmt: skip
    return out


def _status(values: list[float], ok) -> str:
    return "met" if all(ok(v) for v in values) else "not met"


def targets(report: dict) -> list[dict]:
    """The issue's speed targets; a target whose models were not run says so."""
    ms, batches = _ms(report), report["settings"]["batches"]
    rows = []

    def row(target: str, model: str, mode: str, values: dict, ok, bar: str):
        if not values:
            rows.append({"target": target, "model": model, "mode": mode, "values": {},
                         "bar": bar, "status": "not measured"})  # fmt: skip
            return
        rows.append({"target": target, "model": model, "mode": mode, "values": values,
                     "bar": bar, "status": _status(list(values.values()), ok)})  # fmt: skip

    for name in VIT_PAIRS:
        peer = report["models"].get(name, {}).get("peer")
        for mode in ("infer", "train"):
            values = {f"b{b}": ms[(name, mode, "fp32", b)] / ms[(peer, mode, "fp32", b)]
                      for b in batches if (peer, mode, "fp32", b) in ms and (name, mode, "fp32", b) in ms}  # fmt: skip
            if name in report["models"]:
                row("time / timm, fp32", name, mode, values, lambda v: v <= 1.00, "<= 1.00")
    for mode in ("infer", "train"):
        for dtype in report["settings"]["dtypes"]:
            values = {f"b{b}": ms[(SMP_UNET18, mode, dtype, b)] / ms[(BUNDLED, mode, dtype, b)]
                      for b in batches if (BUNDLED, mode, dtype, b) in ms and (SMP_UNET18, mode, dtype, b) in ms}  # fmt: skip
            row(f"images/s / smp Unet(resnet18), {dtype}", BUNDLED, mode, values,
                lambda v: v >= 2.0, ">= 2.00")  # fmt: skip
    for mode in ("infer", "train"):
        values = {f"b{b}": ms[(BUNDLED, mode, "fp32", b)] / ms[(BUNDLED, mode, "bf16", b)]
                  for b in batches if (BUNDLED, mode, "bf16", b) in ms and (BUNDLED, mode, "fp32", b) in ms}  # fmt: skip
        bar = ">= 1.50 (speed part; the IoU part is measured elsewhere)"
        row("bf16 speed-up over fp32", BUNDLED, mode, values, lambda v: v >= 1.5, bar)
    return rows


def _fmt(v: float | None, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def _timing_table(report: dict, mode: str) -> list[str]:
    ms, s = _ms(report), report["settings"]
    cols = [(d, b) for d in s["dtypes"] for b in s["batches"]]
    ratio = {(r["model"], r["dtype"], r["batch"]): r["ratio"]
             for r in report["ratios"] if r["mode"] == mode}  # fmt: skip
    head = ["model", "params M", "GFLOPs"] + [f"{d} b{b} ms/img (ours/peer)" for d, b in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in report["models"].items():
        cells = [
            name + (" *" if m["channels_last"] else ""),
            f"{m['params_m']:.2f}",
            f"{m['gflops']:.1f}",
        ]
        for d, b in cols:
            t = ms.get((name, mode, d, b))
            r = ratio.get((name, d, b))
            cells.append(_fmt(t, ".1f") + (f" ({r:.2f}x)" if r is not None else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _memory_table(report: dict) -> list[str]:
    lines = ["| model | batch | RSS, model built | inference peak (+ over built) | "
             "training step peak (+ over built) |", "|---|---|---|---|---|"]  # fmt: skip
    for name, m in report["models"].items():
        mem = m.get("memory")
        if not mem:
            continue
        if "error" in mem:
            lines.append(f"| {name} | {mem['batch']} | {mem['error']} | | |")
            continue
        base, infer, train = mem["base_mib"], mem["infer_peak_mib"], mem["train_peak_mib"]
        lines.append(f"| {name} | {mem['batch']} | {base:.0f} | {infer:.0f} (+{infer - base:.0f}) | "
                     f"{train:.0f} (+{train - base:.0f}) |")  # fmt: skip
    return lines


def markdown(report: dict) -> str:
    mc, v, s = report["machine"], report["versions"], report["settings"]
    bf16 = s["bf16"]
    lines = [
        "# crackseg vs peers: one torch, one process, interleaved",
        "",
        f"{mc['date']} on {mc['cpu_model']} ({mc['cpus_allowed']} of {mc['cpu_count']} CPUs, "
        f"{mc['threads']} torch threads, {mc['cpu_capability']}), {mc['platform']}, "
        f"Python {mc['python']}, commit {mc['git_commit']}.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Settings: {s['size']}x{s['size']}, batches {s['batches']}, {s['dtypes']}, "
        f"median of up to {s['repeats']} interleaved timed calls (at least {s['min_repeats']}; "
        f"about {s['cell_budget_s']} s per model and setting) after one warm-up each"
        + (
            ""
            if s["all_batches"] or len(s["batches"]) < 2
            else f"; batches above {min(s['batches'])} for the target pairs only (--all-batches for all)"
        )
        + (", QUICK (smoke test, not for quoting)" if s["quick"] else "")
        + f"; the run took {s.get('wall_s', 0):.0f} s ({s.get('wall_s', 0) / 60:.1f} min).",
        f"Peers: {s['peers']}. bf16: native (AVX512-BF16/AMX, as `--amp auto` decides) "
        f"{'yes' if bf16['native'] else 'NO'}, oneDNN bf16 {'yes' if bf16['onednn_bf16'] else 'no'}, "
        f"1024^2 matmul bf16/fp32 speed-up {bf16['matmul_speedup']:.2f}x"
        + ("" if bf16["native"] else " (bf16 not timed: this CPU has no native bf16)")
        + ".",
        "",
        "## Targets",
        "",
        "| target | model | mode | values | bar | status |",
        "|---|---|---|---|---|---|",
    ]
    for t in report["targets"]:
        vals = ", ".join(f"{k} {val:.2f}" for k, val in t["values"].items()) or "-"
        status = t["status"]
        if status == "not measured" and s["peers"] != "installed":
            status += f" (peers {s['peers'].split(' (')[0]})"
        lines.append(f"| {t['target']} | {t['model']} | {MODE_NAMES[t['mode']]} | {vals} | "
                     f"{t['bar']} | {status} |")  # fmt: skip
    for mode in s["modes"]:
        lines += ["", f"## {MODE_NAMES[mode].capitalize()}, ms/image", ""]
        lines += _timing_table(report, mode)
    lines += ["", "(ours/peer): time ratio to the model's peer in the same setting, < 1 is faster. "
              "* runs channels_last (as `crackseg predict` runs the bundled model); the rest NCHW."]  # fmt: skip
    if report.get("errors"):
        lines += ["", "## Settings a model cannot run", ""]
        lines += [f"- {e['model']}, {MODE_NAMES[e['mode']]} {e['dtype']} batch {e['batch']}: "
                  f"{e['error']}" for e in report["errors"]]  # fmt: skip
    if s["memory"] != "skipped":
        lines += ["", f"## Peak memory ({s['memory']})", "",
                  "MiB of process RSS (torch and the libraries included) once the model and its "
                  "inputs are built, then the peak RSS (VmHWM, reset before each) of one "
                  "inference call and of one training step, in a fresh process per model.", ""]  # fmt: skip
        lines += _memory_table(report)
    lines += ["", "## Method", "",
              "Inference: `torch.no_grad()`; training step: forward, cross-entropy on the logits "
              "(mean square of the tokens for encoders), backward, AdamW, the same for both "
              "sides. Random init (the bundled model: its weights). GFLOPs: torch's "
              "FlopCounterMode, one 1-image forward, multiply-add = 2. timm ViTs at img_size "
              f"{s['size']}; '+ linear' is our Segmenter's linear decoder on timm's tokens, drop "
              "path 0.1 on both sides as our Segmenter presets. Ratios are taken within the run, "
              "so a machine's load cancels from them more than from the absolute figures.", ""]  # fmt: skip
    return "\n".join(lines)
