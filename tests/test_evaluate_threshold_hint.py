"""`crackseg evaluate` (and `train`'s closing table) says when another threshold is clearly better
on the user's data (datasets draw cracks at different widths, so the best threshold moves with
them), and stays quiet when the threshold in use is already the best or no score is defined."""

from __future__ import annotations

import json

from bench_scripts import tiny_checkpoint
from cli_contract import run_cli

from crackseg.metrics.report import threshold_hint


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


def test_train_ends_with_the_hint_when_val_wants_another_threshold(tmp_path, capsys):
    from crackseg.run_log import RunLog

    last = {"epoch": 3, "crack_iou": 0.61, "crack_f1": 0.7577, "ods_f1": 0.8412,
            "ods_threshold": 0.04}  # fmt: skip
    summary = {"run": str(tmp_path), "epochs": 3, "best_crack_iou": 0.61, "seconds": 36.0,
               "last": last, "threshold": 0.5}  # fmt: skip
    RunLog(tmp_path, enabled=False).close(summary)
    out = capsys.readouterr().out
    assert "best-F1 threshold on this data: 0.04 (F1 0.841 against 0.758 at 0.50)" in out
    assert out.rstrip().endswith("(val, epoch 3)")
    RunLog(tmp_path, enabled=False).close({**summary, "last": {**last, "ods_threshold": 0.5,
                                                               "ods_f1": 0.7577}})  # fmt: skip
    assert "best-F1 threshold" not in capsys.readouterr().out
