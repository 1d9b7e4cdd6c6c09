"""Ctrl-C in `crackseg predict`: exit 130 and one line saying how far it got; what was written
stays listed in predictions.json (nothing written is lost from the record)."""

from __future__ import annotations

import json

import pytest
from bench_scripts import tiny_checkpoint
from cli_contract import run_cli

import crackseg.predict


@pytest.mark.parametrize("stop_at", [0, 2])
def test_ctrl_c_keeps_the_record_of_what_was_written(capsys, monkeypatch, tmp_path, photos,
                                                     stop_at):  # fmt: skip
    (photos / "2.png").write_bytes((photos / "0.png").read_bytes())
    real, calls = crackseg.predict.predict_one, []

    def interrupted(*args, **kwargs):
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(crackseg.predict, "predict_one", interrupted)
    checkpoint = tiny_checkpoint(tmp_path / "tiny.ckpt")
    out = tmp_path / "preds"
    result = run_cli(capsys, "predict", "--checkpoint", checkpoint, photos, "--out", out)
    assert result.code == 130
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    if stop_at:
        assert f"interrupted after 2 of 3 images; {out / 'predictions.json'} lists them" in (
            result.err
        )
        rows = json.loads((out / "predictions.json").read_text())
        assert [row["image"] for row in rows] == [str(photos / "0.png"), str(photos / "1.png")]
    else:
        assert "interrupted before any image was written" in result.err
        assert not (out / "predictions.json").exists()
