"""`crackseg models` end to end through the real entry point."""

import json

from crackseg.cli import main


def test_models_json_reports_measured_rows(capsys):
    assert main(["models", "--filter", "unet_small", "--image-size", "64", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "unet_small" and row["output"] == [1, 2, 64, 64]
    assert 1.9 < row["params_m"] < 2.0 and row["gflops"] > 0 and row["cpu_ms"] > 0


def test_unknown_command_is_an_error(capsys):
    assert main([]) == 2
