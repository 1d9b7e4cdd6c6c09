"""benchmarks/ensemble.py: one row per model plus their mean, on the same images; the mean of a
model with itself scores exactly what the model does; one model or a threshold outside (0, 1]
is a usage error."""

from __future__ import annotations

from bench_scripts import ROOT, run_script, tiny_checkpoint

SCRIPT = ROOT / "benchmarks" / "ensemble.py"


def table(stdout: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in stdout.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_rows_per_model_and_their_mean(synth_yaml, tmp_path):
    a = tiny_checkpoint(tmp_path / "a.ckpt", seed=0, threshold=0.4)
    b = tiny_checkpoint(tmp_path / "b.ckpt", seed=1, threshold=0.5)
    proc = run_script(SCRIPT, "--models", a, b, "--data", synth_yaml, "--split", "val")
    assert proc.returncode == 0, proc.stderr
    assert "| model | thr 0.4 | thr 0.5 |" in proc.stdout  # 0.5 and each stored threshold
    rows = table(proc.stdout)
    assert list(rows) == [str(a), str(b), "mean of all"]
    assert all(len(cells) == 2 for cells in rows.values())

    same = run_script(
        SCRIPT, "--models", a, a, "--data", synth_yaml, "--split", "val", "--thresholds", "0.5"
    )
    assert same.returncode == 0, same.stderr
    rows = table(same.stdout)
    assert rows["mean of all"] == rows[str(a)]


def test_bad_arguments_are_usage_errors(tmp_path):
    a = tiny_checkpoint(tmp_path / "a.ckpt", seed=0, threshold=0.5)
    proc = run_script(SCRIPT, "--models", a)
    assert proc.returncode == 2
    assert "--models needs at least two models" in proc.stderr.splitlines()[-1]
    proc = run_script(SCRIPT, "--models", a, a, "--thresholds", "0.5", "1.5")
    assert proc.returncode == 2
    assert "--thresholds: give probabilities in (0, 1]" in proc.stderr.splitlines()[-1]
