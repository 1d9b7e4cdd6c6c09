"""The README's promise for bad input, as test helpers: exit status 2, one `error:` line that
names the file or option and the problem, no traceback, nothing written that claims a result."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from crackseg.cli import main


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(capsys, *argv) -> CliResult:
    """Run `crackseg ARGV` in this process (an uncaught exception fails the calling test)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse rejects a flag
        code = exit_.code if isinstance(exit_.code, int) else 2
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def run_cli_process(*argv, timeout: float = 300) -> CliResult:
    """Run `python -m crackseg ARGV` as a user would (a real process, real DataLoader workers)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "crackseg", *map(str, argv)], capture_output=True,
                          text=True, timeout=timeout, env=env)  # fmt: skip
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def assert_user_error(result: CliResult, *words: str, code: int = 2) -> str:
    """Exit `code`, no traceback, exactly one `error:` line containing every word; returns it."""
    assert "Traceback" not in result.err, result.err
    errors = [line for line in result.err.splitlines() if "error:" in line]
    assert result.code == code, f"exit {result.code}, stderr:\n{result.err}"
    assert len(errors) == 1, f"expected one error line, got:\n{result.err}"
    for word in words:
        assert word in errors[0], f"{word!r} not in {errors[0]!r}"
    return errors[0]


def written_results(folder: Path) -> list[Path]:
    """Files under `folder` that would claim a result (checkpoints, metrics, predictions)."""
    if not folder.exists():
        return []
    names = ("*.ckpt", "summary.json", "metrics.csv", "predictions.json", "*_mask.png")
    return sorted(p for pattern in names for p in folder.rglob(pattern))
