"""benchmarks/bench.py: its quick mode on one tiny model without peers writes well-formed results,
the memory probe reports, and target statuses follow the numbers (structure, never timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench.py"
TINY = ["--models", "unet_small", "--size", "64", "--threads", "1", "--no-peers"]


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)  # fmt: skip


def test_quick_run_writes_json_and_markdown(tmp_path):
    proc = run_bench("--quick", *TINY, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    keys = {"machine", "versions", "settings", "models", "timings", "ratios", "targets"}
    assert keys <= set(report)
    assert report["machine"]["threads"] == 1 and report["settings"]["batches"] == [1]
    assert report["settings"]["peers"] == "skipped (--no-peers)"
    model = report["models"]["unet_small"]
    assert model["side"] == "ours" and model["params_m"] > 0 and model["gflops"] > 0
    cells = {(t["mode"], t["dtype"], t["batch"]) for t in report["timings"]}
    dtypes = report["settings"]["dtypes"]
    assert cells == {(m, d, 1) for m in ("infer", "train") for d in dtypes}
    for t in report["timings"]:
        assert t["model"] == "unet_small" and t["runs"] == len(t["times_ms"]) == 2
        assert t["ms_per_image"] > 0
    assert report["ratios"] == []  # no peer ran
    assert report["targets"] and all(t["status"] == "not measured" for t in report["targets"])
    markdown = (tmp_path / "bench.md").read_text()
    assert "## Targets" in markdown and "| unet_small |" in markdown
    assert "QUICK" in markdown


def test_memory_probe_reports_its_own_peaks_not_its_parents():
    ballast = b"\x01" * (1 << 30)  # 1 GiB resident in this (parent) process
    proc = run_bench("--memory-probe", "unet_small", "--size", "64", "--batches", "2",
                     "--dtypes", "fp32", "--threads", "1")  # fmt: skip
    del ballast
    assert proc.returncode == 0, proc.stderr
    mem = json.loads(proc.stdout.strip().splitlines()[-1])
    assert 0 < mem["base_mib"] <= min(mem["infer_peak_mib"], mem["train_peak_mib"])
    assert mem["train_peak_mib"] < 1024  # a tiny U-Net: well under the parent's 1 GiB


def test_unknown_model_is_a_one_line_usage_error():
    proc = run_bench("--models", "no_such_model", "--out", "/nonexistent")
    assert proc.returncode == 2
    assert "--models: unknown entry 'no_such_model'" in proc.stderr.splitlines()[-1]


@pytest.fixture
def report_module(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_report

    return bench_report


def test_target_status_follows_the_numbers(report_module):
    bundled, smp = report_module.BUNDLED, report_module.SMP_UNET18
    ms = {(bundled, "infer", "fp32"): 50.0, (smp, "infer", "fp32"): 120.0,  # 2.4x: met
          (bundled, "train", "fp32"): 80.0, (smp, "train", "fp32"): 100.0,  # 1.25x: not met
          (bundled, "infer", "bf16"): 40.0, (bundled, "train", "bf16"): 40.0,
          ("vit_tiny_patch16", "infer", "fp32"): 99.0, ("timm vit", "infer", "fp32"): 100.0,
          ("vit_tiny_patch16", "train", "fp32"): 101.0, ("timm vit", "train", "fp32"): 100.0}  # fmt: skip
    report = {
        "settings": {"batches": [1], "dtypes": ["fp32", "bf16"]},
        "models": {
            bundled: {"peer": smp},
            smp: {"peer": None},
            "vit_tiny_patch16": {"peer": "timm vit"},
            "timm vit": {"peer": None},
        },
        "timings": [
            {"model": m, "mode": mode, "dtype": d, "batch": 1, "ms_per_image": v}
            for (m, mode, d), v in ms.items()
        ],
    }
    status = {(t["target"], t["model"], t["mode"]): (t["status"], t["values"])
              for t in report_module.targets(report)}  # fmt: skip
    assert status[("time / timm, fp32", "vit_tiny_patch16", "infer")] == ("met", {"b1": 0.99})
    assert status[("time / timm, fp32", "vit_tiny_patch16", "train")][0] == "not met"
    assert status[("images/s / smp Unet(resnet18), fp32", bundled, "infer")] == ("met", {"b1": 2.4})
    assert status[("images/s / smp Unet(resnet18), fp32", bundled, "train")][0] == "not met"
    assert status[("bf16 speed-up over fp32", bundled, "infer")] == ("not met", {"b1": 1.25})
    assert status[("bf16 speed-up over fp32", bundled, "train")] == ("met", {"b1": 2.0})
    ratios = report_module.ratios(report)
    assert {(r["model"], r["mode"], r["dtype"]) for r in ratios} == {
        (bundled, "infer", "fp32"), (bundled, "train", "fp32"),
        ("vit_tiny_patch16", "infer", "fp32"), ("vit_tiny_patch16", "train", "fp32")}  # fmt: skip


def test_options_quick_run_compares_each_option_with_the_baseline(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_options.py"), "--quick",
                           "--no-compile", "--size", "64", "--threads", "1", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "bench_options.json").read_text())
    dtypes = ["fp32", "bf16"] if report["settings"]["bf16"]["native"] else ["fp32"]
    assert [r["setting"] for r in report["results"]] == [f"inference {d} b1" for d in dtypes]
    for r in report["results"]:
        assert list(r["median_ms"]) == ["baseline", "explicit attention", "NCHW", "inference_mode"]
        assert all(len(t) == 2 for t in r["times_ms"].values())
    markdown = (tmp_path / "bench_options.md").read_text()
    assert (
        "| inference fp32 b1 |" in markdown
        and "not measured (this process may use 1 CPU)" in markdown
    )


def test_formula_attention_swaps_the_path_and_restores_it(monkeypatch):
    import torch

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_options

    from crackseg.models.attention import MultiHeadAttention

    module = bench_options.attention_module
    fused = module.attention
    attn = MultiHeadAttention(32, num_heads=4).eval()
    x = torch.randn(2, 10, 32)  # (B, T, D)
    with torch.no_grad():
        expected = attn(x)
        with bench_options.formula_attention():
            assert module.attention is bench_options.explicit_attention
            explicit = attn(x)
    assert module.attention is fused
    torch.testing.assert_close(explicit, expected, atol=1e-5, rtol=1e-5)
