"""The `crackseg` entry point itself: flag parsing rules shared by every command."""

import pytest

from crackseg.cli import main


def test_flags_are_never_matched_by_prefix(capsys):
    with pytest.raises(SystemExit) as exit_:  # `--epoch` is not silently read as `--epochs`
        main(["train", "--data", "x.yaml", "--epoch", "3"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --epoch 3" in capsys.readouterr().err
