"""benchmarks/label_boundary.py: grid counts agree with counting at one threshold; each image at its
own threshold is an upper bound that can beat any single threshold; runs follow file-name order;
the script prints its tables end to end and rejects a run count below one."""

from __future__ import annotations

import re

import pytest
import torch
from bench_scripts import ROOT, load_script, run_script, tiny_checkpoint

SCRIPT = ROOT / "benchmarks" / "label_boundary.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT)


def counts_at(probs, label, valid, threshold):
    pred = (probs >= threshold) & valid
    label = label & valid
    return [(pred & label).sum().item(), (pred & ~label).sum().item(), (~pred & label).sum().item()]


def test_grid_counts_match_direct_counts(bench):
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(32, 32, generator=gen)
    label = torch.rand(32, 32, generator=gen) > 0.7
    valid = torch.rand(32, 32, generator=gen) > 0.1
    grid = bench.grid_counts(probs, label, valid)  # (n, 3)
    assert grid.shape == (len(bench.GRID), 3)
    for threshold in (0.3, 0.8):
        k = int(round(threshold * 100)) - 1  # GRID[k] == threshold
        assert bench.GRID[k].item() == pytest.approx(threshold)
        assert grid[k].tolist() == counts_at(probs, label, valid, threshold)


def test_each_image_at_its_own_threshold_beats_one_global_threshold(bench):
    label = torch.zeros(4, 4, dtype=torch.bool)
    label[1] = True  # one crack row
    valid = torch.ones(4, 4, dtype=torch.bool)
    faint = torch.where(label, 0.3, 0.1)  # crack found only below 0.3
    wide = torch.where(label, 0.9, 0.0)
    wide[2] = 0.6  # a too-wide band that only a threshold above 0.6 drops
    blank = torch.full((4, 4), 0.2)  # no crack labelled: any threshold above 0.2 is right
    counts = torch.stack([bench.grid_counts(faint, label, valid),
                          bench.grid_counts(wide, label, valid),
                          bench.grid_counts(blank, torch.zeros_like(label), valid)])  # fmt: skip
    own_iou, thresholds = bench.own_threshold_iou(counts)
    assert own_iou == pytest.approx(1.0)
    assert thresholds[0] <= 0.3 < 0.6 < thresholds[1]
    assert thresholds[2] > 0.2  # the blank image takes a threshold with no false positive
    single = [bench.iou(*counts[:, k].sum(0).tolist()) for k in range(len(bench.GRID))]
    assert max(single) < 0.99  # no one threshold serves both crack images


def test_one_threshold_per_run_lies_between_one_for_all_and_one_per_image(bench):
    label = torch.zeros(4, 4, dtype=torch.bool)
    label[1] = True
    valid = torch.ones(4, 4, dtype=torch.bool)
    faint = torch.where(label, 0.3, 0.1)  # a run whose labels need a low threshold
    wide = torch.where(label, 0.9, 0.0)
    wide[2] = 0.6  # ... and one whose labels need a high one
    counts = torch.stack([bench.grid_counts(m, label, valid) for m in (faint, faint, wide, wide)])
    run_iou, thresholds = bench.run_threshold_iou(counts, 2)
    assert run_iou == pytest.approx(1.0)
    assert thresholds[0] <= 0.3 < 0.6 < thresholds[1]
    one_run, _ = bench.run_threshold_iou(counts, 1)  # one run: the best single threshold
    single = [bench.iou(*counts[:, k].sum(0).tolist()) for k in range(len(bench.GRID))]
    assert one_run == pytest.approx(max(single)) and one_run < run_iou


def test_untouched_finds_whole_cracks_only(bench):
    pred = torch.zeros(8, 8, dtype=torch.bool)
    pred[1, 1:4] = True  # overlaps the label
    pred[6, 5:8] = True  # a crack the label never draws
    label = torch.zeros(8, 8, dtype=torch.bool)
    label[1, 3:7] = True
    label[4, 0] = True  # a one-pixel crack no prediction touches
    invented = bench.untouched(pred, label)
    assert invented.sum() == 3 and invented[6, 5:8].all()
    missed = bench.untouched(label, pred)
    assert missed.sum() == 1 and missed[4, 0]
    blank = torch.zeros(8, 8, dtype=torch.bool)
    assert torch.equal(bench.untouched(pred, blank), pred)  # nothing labelled: all of it invented
    assert not bench.untouched(blank, pred).any()  # the background is never a crack


def test_iou_of_nothing_is_undefined(bench):
    assert bench.iou(0, 0, 0) is None
    assert bench.show(None).startswith("undefined")
    assert bench.iou(1, 1, 0) == pytest.approx(0.5)


def test_natural_order_and_roboflow_names(bench):
    names = ["10000.rf.a.jpg", "1604.rf.b.jpg", "999.rf.c.jpg"]
    assert sorted(names, key=bench.natural_key) == [
        "999.rf.c.jpg",
        "1604.rf.b.jpg",
        "10000.rf.a.jpg",
    ]
    assert bench.ROBOFLOW_HASH.sub("", "1604.rf." + "0f" * 16 + ".jpg") == "1604.jpg"


def cell(stdout: str, row_start: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith(row_start))
    return line.strip("|").split("|")[-1].strip()


def test_end_to_end_tables(synth_yaml, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    proc = run_script(
        SCRIPT, "--checkpoint", ckpt, "--data", synth_yaml, "--split", "val", "--groups", "2"
    )
    assert proc.returncode == 0, proc.stderr
    assert ": 4 of 4 images; model at threshold 0.5" in proc.stdout
    assert float(cell(proc.stdout, "| labels vs labels dilated by 1 px")) < 1.0
    for kind in ("invented", "missed"):
        share = cell(
            proc.stdout, f"| in {'predicted' if kind == 'invented' else 'labelled'} cracks"
        )
        assert share == "no wrong pixel" or 0.0 <= float(share) <= 1.0, (kind, share)
    runs = [line for line in proc.stdout.splitlines() if line.startswith("| ") and " .. " in line]
    assert len(runs) == 2 and all("(2)" in line for line in runs)
    oracle = next(line for line in proc.stdout.splitlines() if "own best threshold" in line)
    p10, p50, p90 = map(
        float, re.search(r"p10/p50/p90 ([\d.]+)/([\d.]+)/([\d.]+)", oracle).groups()
    )
    assert 0.0 < p10 <= p50 <= p90 < 1.0
    per_run = next(line for line in proc.stdout.splitlines() if "per upload batch" in line)
    assert "each of the 2 runs below" in per_run
    assert 0.0 <= float(per_run.strip("|").split("|")[-1]) <= 1.0
    first, second = re.search(r"thresholds ([\d.]+)/([\d.]+)\)", per_run).groups()
    assert 0.0 < float(first) < 1.0 and 0.0 < float(second) < 1.0


def test_groups_below_one_is_a_usage_error(tmp_path):
    proc = run_script(SCRIPT, "--checkpoint", tmp_path / "missing.ckpt", "--groups", "0")
    assert proc.returncode == 2
    assert "--every 1 --groups 0: give whole numbers >= 1" in proc.stderr.splitlines()[-1]
