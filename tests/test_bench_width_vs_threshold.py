"""benchmarks/width_vs_threshold.py: a bar of known width measures at that width, the per-image
ratio is only taken where both masks hold a crack, a higher threshold on a ridge of probability
measures a narrower crack, and the script prints its table end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bench_scripts import ROOT, load_script, run_script, tiny_checkpoint

SCRIPT = ROOT / "benchmarks" / "width_vs_threshold.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT)


def test_a_bar_measures_its_width_and_nothing_measures_nothing(bench):
    mask = np.zeros((64, 96), bool)
    mask[30:35, 10:80] = True  # 5 px wide, 70 px long
    n, length, width = bench.widths(mask)
    assert n == 1
    assert length == pytest.approx(70, abs=6)
    assert width == pytest.approx(5, abs=1)
    n, length, width = bench.widths(np.zeros((64, 96), bool))
    assert (n, length) == (0, 0) and math.isnan(width)


def test_a_higher_threshold_on_a_ridge_measures_a_narrower_crack(bench):
    y = np.arange(64)[:, None] - 32.0
    probs = np.broadcast_to(np.exp(-(y**2) / 18.0), (64, 96))  # a ridge along x, peak 1.0
    low, high = (bench.widths(probs >= t)[2] for t in (0.2, 0.8))
    assert high < low


def test_the_tally_takes_ratios_only_where_both_masks_hold_a_crack(bench):
    tally = bench.Tally()
    tally.add((1, 10.0, 6.0), 3.0)  # ratio 2
    tally.add((0, 0.0, float("nan")), 3.0)  # the model found nothing: no ratio
    tally.add((1, 30.0, 2.0), float("nan"))  # nothing labelled: no ratio
    assert tally.ratios == [2.0]
    assert tally.row("m") == "| m | 2 | 40 | 3.00 | 2.00 / 2.00 / 2.00 |"  # (60 + 60) / 40


def test_end_to_end_table(synth_yaml, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    proc = run_script(SCRIPT, "--checkpoint", ckpt, "--data", synth_yaml, "--split", "val",
                      "--thresholds", "0.3", "0.7")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "val: 4 of 4 images" in proc.stdout
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| labels")
            or line.startswith("| model at threshold")]  # fmt: skip
    assert [r.split(" |")[0] for r in rows] == [
        "| labels",
        "| model at threshold 0.3",
        "| model at threshold 0.7",
    ]
    assert int(rows[0].split("|")[2]) > 0  # the synthetic labels hold cracks


def test_a_threshold_outside_zero_one_is_a_usage_error(tmp_path):
    proc = run_script(SCRIPT, "--checkpoint", tmp_path / "missing.ckpt", "--thresholds", "1.5")
    assert proc.returncode == 2
    assert "--thresholds values in (0, 1)" in proc.stderr.splitlines()[-1]
