"""Training end to end on tiny synthetic data: CLI, run folder, resume after SIGKILL, NaN stop, DDP."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import crackseg
from crackseg.cli import main
from crackseg.config import resolve_config
from crackseg.engine.checkpoint import read_checkpoint
from crackseg.errors import CrackSegError

TINY = ["--model", "unet_small", "--model-arg", "base_channels=4", "--model-arg", "depth=2",
        "--image-size", "64", "--batch-size", "4", "--workers", "0", "--lr", "0.01"]  # fmt: skip


def run_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crackseg", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
                          timeout=timeout)  # fmt: skip


def test_train_evaluate_predict_through_the_cli(synth_yaml, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["train", "--data", str(synth_yaml), "--epochs", "2", "--out", str(out), *TINY]) == 0
    )
    for name in ("config.yaml", "last.ckpt", "best.ckpt", "metrics.csv", "curves.png",
                 "summary.json", "samples/epoch_002.png"):  # fmt: skip
        assert (out / name).is_file(), name
    assert any((out / "tensorboard").iterdir())
    assert len((out / "metrics.csv").read_text().splitlines()) == 3  # header + 2 epochs
    model = crackseg.load_model(out / "best.ckpt")
    assert model(torch.randn(1, 3, 40, 56)).shape == (1, 2, 40, 56)

    assert main(["evaluate", "--checkpoint", str(out / "best.ckpt"), "--data", str(synth_yaml),
                 "--split", "test", "--json"]) == 0  # fmt: skip
    assert '"crack_iou"' in capsys.readouterr().out
    assert (out / "eval_test" / "pr_curve.png").is_file()

    pred = tmp_path / "pred"
    images = str(Path(synth_yaml).parent / "images" / "test" / "*.jpg")
    assert main(["predict", "--checkpoint", str(out / "best.ckpt"), images, "--out", str(pred),
                 "--measure", "--tta"]) == 0  # fmt: skip
    assert len(list(pred.glob("*_mask.png"))) == 4 and len(list(pred.glob("*_overlay.png"))) == 4


def test_user_errors_are_one_line_with_exit_2(synth_yaml, tmp_path):
    cases = [
        (["train", "--data", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r")], "nope.yaml"),
        (["train", "--data", str(synth_yaml), "--model", "resnet", "--out", str(tmp_path / "r")],
         "unknown model 'resnet'"),
        (["evaluate", "--checkpoint", str(tmp_path / "x.ckpt"), "--data", str(synth_yaml)],
         "checkpoint not found"),
        (["train", "--resume", "--out", str(tmp_path / "empty")], "empty not found"),
    ]  # fmt: skip
    for args, expected in cases:
        result = run_cli(*args)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_killed_run_resumes_to_the_same_weights(synth_yaml, tmp_path):
    common = ["train", "--data", str(synth_yaml), "--epochs", "4", *TINY]
    assert run_cli(*common, "--out", str(tmp_path / "straight")).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "crackseg", *common, "--out", str(killed)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while not (killed / "last.ckpt").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    epoch_at_kill = read_checkpoint(killed / "last.ckpt")["epoch"]
    assert epoch_at_kill < 4 and not (killed / "summary.json").exists()

    resumed = run_cli("train", "--resume", "--out", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    a = read_checkpoint(tmp_path / "straight" / "last.ckpt")
    b = read_checkpoint(killed / "last.ckpt")
    assert b["epoch"] == 4
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0, msg=key)
    assert a["history"][-1]["crack_iou"] == b["history"][-1]["crack_iou"]


def test_ctrl_c_says_how_to_resume_in_one_line(synth_yaml, tmp_path):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) ends with exit 130 and one
    line naming the epoch, the checkpoint and the command that continues the run; it does."""
    out = tmp_path / "run"
    argv = ["train", "--data", str(synth_yaml), "--epochs", "30", *TINY, "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "crackseg", *argv],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 120
    while not (out / "last.ckpt").exists() and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = [line for line in err.replace("\r", "\n").splitlines() if line.strip()][-1]
    assert last.startswith("crackseg train: interrupted in epoch ") and " of 30; " in last
    assert f"continue with crackseg train --out {out} --resume" in last
    saved = read_checkpoint(out / "last.ckpt")["epoch"]
    assert saved < 30 and not (out / "summary.json").exists()

    resumed = run_cli("train", "--resume", "--out", str(out), "--epochs", str(saved + 1))
    assert resumed.returncode == 0, resumed.stderr
    assert read_checkpoint(out / "last.ckpt")["epoch"] == saved + 1


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(
    synth_yaml, tmp_path, monkeypatch
):
    import crackseg.train.build as build_module
    from crackseg.train import train

    real_build = build_module.build_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss = real_build(*args, **kwargs)

        def forward(logits, targets):
            calls["n"] += 1
            value = loss(logits, targets)
            return value * float("nan") if calls["n"] > 4 else value  # epoch 2 goes bad

        return forward

    monkeypatch.setattr(build_module, "build_loss", lambda *a, **k: _Wrap(poisoned(*a, **k)))
    config = resolve_config(None, dict(data=str(synth_yaml), epochs=3, out=str(tmp_path / "r"),
                                       model="unet_small", model_args={"base_channels": 4, "depth": 2},
                                       image_size=64, batch_size=4, workers=0))  # fmt: skip
    with pytest.raises(CrackSegError, match="loss is nan.*last good checkpoint is .*last.ckpt"):
        train(config)
    assert read_checkpoint(tmp_path / "r" / "last.ckpt")["epoch"] == 1


class _Wrap(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, logits, targets):
        return self.fn(logits, targets)


def test_ddp_two_processes_match_one_process_with_the_same_global_batch(synth_yaml, tmp_path):
    model = ["--model", "segmenter_vit_tiny_patch16_linear", "--image-size", "64", "--loss", "ce",
             "--workers", "0", "--augment", "none", "--epochs", "2", "--lr", "0.001",
             "--amp", "none"]  # fmt: skip
    for arg in ("embed_dim=32", "depth=1", "num_heads=2", "drop_path_rate=0.0"):
        model += ["--model-arg", arg]
    data = ["--data", str(synth_yaml), *model]
    single = run_cli("train", *data, "--batch-size", "4", "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
         "-m", "crackseg", "train", *data, "--batch-size", "2", "--out", str(tmp_path / "two")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = read_checkpoint(tmp_path / "one" / "last.ckpt")
    b = read_checkpoint(tmp_path / "two" / "last.ckpt")
    assert a["step"] == b["step"] == 8  # 16 images / global batch 4, 2 epochs
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, atol=1e-5, rtol=1e-4, msg=key)
    for key in ("crack_iou", "pixel_acc", "images"):
        assert b["history"][-1][key] == pytest.approx(a["history"][-1][key], abs=1e-4)


def test_an_undefined_val_score_is_never_a_best(synth_yaml, tmp_path, monkeypatch, capsys):
    import crackseg.train.run as run_module

    real = run_module.validate
    monkeypatch.setattr(run_module, "validate", lambda run: {**real(run), "crack_iou": None})
    out = tmp_path / "r"
    assert (
        main(["train", "--data", str(synth_yaml), "--epochs", "1", "--out", str(out), *TINY]) == 0
    )
    text = capsys.readouterr().out
    assert "val crack IoU undefined" in text and "best val crack IoU undefined" in text
    assert "warning: no best.ckpt" in text
    assert not (out / "best.ckpt").exists() and (out / "last.ckpt").exists()
    assert json.loads((out / "summary.json").read_text())["best_crack_iou"] is None


def test_progress_records_a_best_only_from_a_defined_higher_score():
    from crackseg.train.state import Progress

    progress = Progress()
    rows = [{"crack_iou": v} for v in (None, 0.3, None, 0.2, 0.3, 0.5)]
    rows.insert(1, {})  # an epoch without validation
    bests = [progress.record({"epoch": i + 1, "step": i, **r}) for i, r in enumerate(rows)]
    assert bests == [False, False, True, False, False, False, True]
    assert progress.best == 0.5 and progress.epoch == 7 and len(progress.history) == 7


def test_a_config_built_in_python_is_validated_too(tmp_path):
    from crackseg.config import TrainConfig
    from crackseg.train import train

    with pytest.raises(CrackSegError, match="option 'epochs': must be a whole number >= 1"):
        train(TrainConfig(data="x", epochs=0, out=str(tmp_path / "r")))
    assert not (tmp_path / "r").exists()


def test_budget_schedule_stops_mid_epoch_and_still_validates(synth_yaml, tmp_path, capsys):
    out = tmp_path / "budget"
    args = ["train", "--data", str(synth_yaml), "--epochs", "50", "--out", str(out), *TINY,
            "--batch-size", "2", "--time-limit", "0.001", "--budget-schedule"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 1  # 0.06 s: spent within the first epoch of 8 batches
    last = summary["last"]
    assert last["step"] < 8 and last["crack_iou"] is not None and last["elapsed_seconds"] > 0.06
    assert "time budget of 0.001 min spent in epoch 1" in capsys.readouterr().out
    assert main(["train", "--data", str(synth_yaml), "--out", str(tmp_path / "x"), *TINY,
                 "--budget-schedule"]) == 2  # fmt: skip
