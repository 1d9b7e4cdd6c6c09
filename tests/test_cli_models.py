"""`crackseg models` end to end through the real entry point, and the CLI's own flag checks."""

import json

from cli_contract import assert_user_error, run_cli

from crackseg.cli import main


def test_models_json_reports_measured_rows(capsys):
    assert main(["models", "--filter", "unet_small", "--image-size", "64", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "unet_small" and row["output"] == [1, 2, 64, 64]
    assert 1.9 < row["params_m"] < 2.0 and row["gflops"] > 0 and row["cpu_ms"] > 0


def test_unknown_command_is_a_one_line_error(capsys):
    result = run_cli(capsys, "nosuchcommand")
    assert_user_error(result, "invalid choice", "'nosuchcommand'")


def test_no_command_prints_the_commands_and_exits_2(capsys):
    assert main([]) == 2
    assert "train" in capsys.readouterr().out


def test_models_bad_flags_are_one_line(capsys):
    for argv, words in [
        (["--image-size", "0"], ["--image-size 0", "multiple of 16"]),
        (["--image-size", "31"], ["--image-size 31"]),
        (["--filter", "nothing"], ["--filter 'nothing'", "no preset"]),
    ]:
        assert_user_error(run_cli(capsys, "models", "--no-time", *argv), *words)


def test_data_inspect_bad_counts_are_one_line(synth_yaml, capsys):
    for flag in ("--samples", "--workers"):
        result = run_cli(capsys, "data", "inspect", synth_yaml, "--grid", "none", flag, "-1")
        assert_user_error(result, f"{flag} -1", ">= 0")


def test_models_without_bundled_weights_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CRACKSEG_WEIGHTS_DIR", str(tmp_path))
    assert main(["models", "--bundled"]) == 0
    assert capsys.readouterr().out.startswith(f"Bundled weights: none in {tmp_path}")
    assert main(["models", "--bundled", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
