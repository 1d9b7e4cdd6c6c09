"""Output folders a command cannot write: one line naming the flag and the reason, before any
work (train, data synth, predict, explain, evaluate, demo); and an OS error mid-run (a full
disk) is one line naming the file, never a traceback."""

from __future__ import annotations

import errno

import pytest
from bench_scripts import tiny_checkpoint
from cli_contract import assert_user_error, run_cli

import crackseg.predict
from crackseg.errors import CrackSegError
from crackseg.outputs import check_writable


@pytest.fixture
def blocked(tmp_path):
    """A path no folder can be made at: it goes through a file."""
    (tmp_path / "a-file").write_text("x")
    return tmp_path / "a-file" / "out"


def test_check_writable_leaves_no_trace_and_names_the_reason(tmp_path, blocked):
    check_writable(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()  # the folders made for the probe are gone
    (tmp_path / "kept").mkdir()
    check_writable(tmp_path / "kept")
    assert list((tmp_path / "kept").iterdir()) == []
    with pytest.raises(CrackSegError, match=r"--out .*a-file/out: cannot write there \(Not a dir"):
        check_writable(blocked)
    with pytest.raises(CrackSegError, match="is a file, not a folder"):
        check_writable(tmp_path / "a-file")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


def test_each_command_refuses_an_unwritable_out_before_any_work(
    capsys, synth_yaml, checkpoint, photos, blocked
):
    commands = [
        ["train", "--data", synth_yaml, "--epochs", "1", "--out", blocked],
        ["data", "synth", "--n", "4", "--out", blocked],
        ["predict", "--checkpoint", checkpoint, photos, "--out", blocked],
        ["explain", "--checkpoint", checkpoint, photos, "--out", blocked],
        ["evaluate", "--checkpoint", checkpoint, "--data", synth_yaml, "--out", blocked],
        ["demo", "--out", blocked],
    ]
    for argv in commands:
        result = run_cli(capsys, *argv)
        assert_user_error(result, "--out", "cannot write there")
        assert "epoch" not in result.out and "wrote" not in result.out, argv


def test_a_full_disk_mid_run_is_one_line(capsys, monkeypatch, checkpoint, photos, tmp_path):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "o" / "0_mask.png"))

    monkeypatch.setattr(crackseg.predict, "predict_one", full)
    result = run_cli(capsys, "predict", "--checkpoint", checkpoint, photos, "--out", tmp_path / "o")
    assert_user_error(result, "0_mask.png: No space left on device", code=1)
