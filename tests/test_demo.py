"""`crackseg demo` end to end on a tiny budget: every stage runs and the report is complete."""

from cli_contract import assert_user_error, run_cli

from crackseg.cli import main


def test_demo_writes_a_complete_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--out", str(out), "--images", "30", "--epochs", "1", "--min-iou", "0"]) == 0
    )
    text = capsys.readouterr().out
    assert f"report: {out / 'README.md'}" in text
    for name in ("README.md", "metrics.json", "curves.png", "samples.png", "pr_curve.png",
                 "run/best.ckpt", "predictions/predictions.json"):  # fmt: skip
        assert (out / name).is_file(), name
    assert len(list((out / "predictions").glob("*_width.png"))) == 4
    assert "| synth_" in (out / "README.md").read_text()  # the measurement table


def test_demo_checks_its_options_before_writing_anything(tmp_path, capsys):
    out = tmp_path / "demo"
    for argv, words in [(["--epochs", "0"], ["--epochs 0"]), (["--min-iou", "2"], ["--min-iou"])]:
        assert_user_error(run_cli(capsys, "demo", "--out", out, *argv), *words)
        assert not out.exists()
