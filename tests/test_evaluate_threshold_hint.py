"""`crackseg evaluate` says when another threshold is clearly better on the user's data (datasets
draw cracks at different widths, so the best threshold moves with them), and stays quiet when the
threshold in use is already the best or no score is defined."""

from __future__ import annotations

import json

from bench_scripts import tiny_checkpoint
from cli_contract import run_cli

from crackseg.cli.evaluate import threshold_hint


def test_the_hint_names_the_better_threshold_and_both_scores():
    hint = threshold_hint({"ods_threshold": 0.83, "ods_f1": 0.6824, "crack_f1": 0.6601}, 0.6)
    assert hint == (
        "best-F1 threshold on this data: 0.83 (F1 0.682 against 0.660 at 0.60); "
        "pass --threshold 0.83 to predict or serve for photos like these"
    )


def test_no_hint_when_the_gain_is_small_or_a_score_is_undefined():
    assert (
        threshold_hint({"ods_threshold": 0.62, "ods_f1": 0.7630, "crack_f1": 0.7610}, 0.6) is None
    )
    assert threshold_hint({"ods_threshold": None, "ods_f1": None, "crack_f1": None}, 0.5) is None
    assert threshold_hint({"ods_threshold": 0.3, "ods_f1": 0.4, "crack_f1": None}, 0.5) is None


def test_evaluate_prints_the_hint_in_its_table_and_not_in_json(tmp_path, capsys, synth_yaml):
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    argv = ["evaluate", "--checkpoint", ckpt, "--data", synth_yaml, "--out", tmp_path / "e"]
    result = run_cli(capsys, *argv, "--threshold", "1.0")  # nothing predicted: F1 0
    assert result.code == 0, result.err
    assert "best-F1 threshold on this data:" in result.out
    scores = json.loads(run_cli(capsys, *argv, "--threshold", "1.0", "--json").out)["metrics"]
    assert scores["crack_f1"] == 0.0 and scores["ods_f1"] > 0.005
    best = f"{scores['ods_threshold']:.2f}"
    assert f"pass --threshold {best} to predict" in result.out
    again = run_cli(capsys, *argv, "--threshold", best)
    assert again.code == 0, again.err
    assert "best-F1 threshold" not in again.out
