"""`crackseg train` on bad input: every bad flag, YAML value and --resume case exits 2 with one
line naming the option (and the YAML file), no traceback, and nothing written: no run folder, no
checkpoint. Validation happens before any training, so each case takes well under a second."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_contract import assert_user_error, run_cli, run_cli_process, written_results
from torch.utils.data import DataLoader, Dataset

from crackseg import weights
from crackseg.cli import user_message
from crackseg.errors import CrackSegError

TINY = ["--image-size", "64", "--batch-size", "2", "--workers", "0", "--epochs", "1",
        "--model", "unet_small"]  # fmt: skip

BUNDLED = weights.default_model().name  # a hybrid: its weights cannot start a unet_small

# (extra flags, words the error line must contain)
BAD_FLAGS = [
    (["--batch-size", "0"], ["--batch-size 0", ">= 1"]),
    (["--batch-size", "-3"], ["--batch-size -3"]),
    (["--batch-size", "abc"], ["--batch-size", "invalid int"]),
    (["--lr", "-1"], ["--lr -1", "> 0"]),
    (["--lr", "nan"], ["--lr nan", "finite"]),
    (["--lr", "inf"], ["--lr inf", "finite"]),
    (["--workers", "-1"], ["--workers -1"]),
    (["--accum-steps", "0"], ["--accum-steps 0"]),
    (["--accum-steps", "100"], ["--accum-steps 100", "only 8 batches"]),
    (["--epochs", "0"], ["--epochs 0", ">= 1"]),
    (["--epochs", "-1"], ["--epochs -1"]),
    (["--ema-decay", "2"], ["--ema-decay 2", "[0, 1)"]),
    (["--ema-decay", "1"], ["--ema-decay 1"]),
    (["--grad-clip", "-5"], ["--grad-clip -5"]),
    (["--threshold", "2"], ["--threshold 2", "(0, 1]"]),
    (["--threshold", "0"], ["--threshold 0"]),
    (["--class-weights", "1", "-1"], ["--class-weights", ">= 0"]),
    (["--class-weights", "0", "0"], ["--class-weights", "not all 0"]),
    (["--class-weights", "1", "2", "3"], ["--class-weights", "3 values", "2 classes"]),
    (["--loss", "nosuch"], ["--loss nosuch", "unknown loss"]),
    (["--crop", "4096"], ["--crop 4096", "larger than the training images"]),
    (["--crop", "0"], ["--crop 0"]),
    (["--image-size", "4"], ["--image-size 4", ">= 8"]),
    (["--image-size", "30000"], ["--batch-size 2", "GB", "lower --batch-size"]),
    (["--warmup-epochs", "-1"], ["--warmup-epochs -1"]),
    (["--min-lr-ratio", "2"], ["--min-lr-ratio 2", "[0, 1]"]),
    (["--weight-decay", "nan"], ["--weight-decay nan"]),
    (["--time-limit", "0"], ["--time-limit 0"]),
    (["--max-steps-per-epoch", "0"], ["--max-steps-per-epoch 0"]),
    (["--eval-every", "0"], ["--eval-every 0"]),
    (["--num-samples", "-1"], ["--num-samples -1"]),
    (["--seed", "-1"], ["--seed -1"]),
    (["--mean", "0.5", "nan", "0.5"], ["--mean 0.5 nan 0.5"]),
    (["--std", "0", "1", "1"], ["--std 0.0 1.0 1.0", "> 0"]),
    (["--schedule", "linear"], ["--schedule linear", "cosine"]),
    (["--amp", "fp8"], ["--amp fp8", "bf16"]),
    (["--resize", "squash"], ["--resize squash", "letterbox"]),
    (["--augment", "max"], ["--augment max", "strong"]),
    (["--model", "resnet"], ["--model resnet", "unknown model 'resnet'"]),
    (["--pretrained", "missing.pth"], ["--pretrained missing.pth", "not found"]),
    (["--init", "missing.ckpt"], ["--init missing.ckpt", "no such checkpoint"]),
    (["--init", "nosuchmodel"], ["--init nosuchmodel", "neither a checkpoint file nor a bundled"]),
    (
        ["--init", BUNDLED],
        [f"--init {BUNDLED}", "do not fit --model unet_small", "--model unet_vit_small"],
    ),
    (["--extra-data", "missing_dir"], ["--extra-data missing_dir", "no such file or folder"]),
    (["--model-arg", "depth"], ["--model-arg 'depth'", "KEY=VALUE"]),
    (["--model-arg", "nosuch=1"], ["unet_small", "nosuch"]),
    (["--device", "tpu"], ["--device", "tpu"]),
]


@pytest.mark.parametrize("flags, words", BAD_FLAGS, ids=lambda v: " ".join(v))
def test_bad_flag_is_one_line_before_any_work(flags, words, synth_yaml, tmp_path, capsys):
    out = tmp_path / "run"
    result = run_cli(capsys, "train", "--data", synth_yaml, "--out", out, *TINY, *flags)
    assert_user_error(result, *words)
    assert not out.exists(), sorted(out.rglob("*"))  # no run folder, no best.ckpt from nothing


# (YAML text, words besides the file name)
BAD_YAML = [
    ("batch_size: 0\n", ["option 'batch_size'", ">= 1"]),
    ("lr: .nan\n", ["option 'lr'", "finite"]),
    ("lr: fast\n", ["option 'lr'", "expects float"]),
    ("epochs: 0\n", ["option 'epochs'"]),
    ("epochs: ten\n", ["option 'epochs'", "expects int"]),
    ("ema_decay: 1.5\n", ["option 'ema_decay'"]),
    ("threshold: 2\n", ["option 'threshold'"]),
    ("class_weights: [1, a]\n", ["option 'class_weights'", "list of float"]),
    ("class_weights: [1, -1]\n", ["option 'class_weights'", ">= 0"]),
    ("mean: [0.5, 0.5]\n", ["option 'mean'", "3 numbers"]),
    ("loss: nosuch\n", ["option 'loss'", "unknown loss"]),
    ("grad_clip: -5\n", ["option 'grad_clip'"]),
    ("accum_steps: 0\n", ["option 'accum_steps'"]),
    ("epoch: 3\n", ["unknown option 'epoch'"]),
    ("- lr: 1\n", ["expected a mapping"]),
    ("lr: [\n", ["not valid YAML"]),
]


@pytest.mark.parametrize("text, words", BAD_YAML, ids=[t.strip() for t, _ in BAD_YAML])
def test_bad_yaml_value_names_the_file_and_option(text, words, synth_yaml, tmp_path, capsys):
    recipe, out = tmp_path / "bad.yaml", tmp_path / "run"
    recipe.write_text(text)
    result = run_cli(capsys, "train", "--config", recipe, "--data", synth_yaml, "--out", out,
                     "--image-size", "64", "--workers", "0")  # fmt: skip
    assert_user_error(result, "bad.yaml", *words)
    assert not out.exists()


@pytest.fixture(scope="module")
def finished_run(synth_yaml, tmp_path_factory):
    """A real 1-epoch run folder (config.yaml, last.ckpt) to resume badly."""
    out = tmp_path_factory.mktemp("resume") / "run"
    args = ["train", "--data", synth_yaml, "--out", out, *TINY, "--model-arg", "base_channels=4",
            "--model-arg", "depth=2"]  # fmt: skip
    assert run_cli_process(*args).code == 0
    return out


def resume_cases(run: Path, tmp: Path) -> list[tuple[list, list[str]]]:
    """(argv after `train`, words) for runs broken in every way --resume can meet."""
    no_config, no_last, corrupt, edited = (tmp / n for n in ("a", "b", "c", "d"))
    for folder in (no_config, no_last, corrupt, edited):
        shutil.copytree(run, folder)
    (no_config / "config.yaml").unlink()
    (no_last / "last.ckpt").unlink()
    (corrupt / "last.ckpt").write_bytes(b"\x00" * 100)
    (edited / "config.yaml").write_text((edited / "config.yaml").read_text() + "lr: -1\n")
    return [
        (["--resume"], ["--resume needs --out"]),
        (["--resume", "--out", tmp / "missing"], ["--resume", "missing", "not found"]),
        (["--resume", "--out", no_config], ["--resume", str(no_config), "no config.yaml"]),
        (["--resume", "--out", no_last], ["--resume", "last.ckpt"]),
        (["--resume", "--out", corrupt], ["last.ckpt", "not a readable checkpoint"]),
        (["--resume", "--out", edited], ["config.yaml", "option 'lr'"]),
        (["--resume", "--out", run, "--model-arg", "base_channels=8"],
         ["--resume", "does not match", "config.yaml"]),
        (["--resume", "--out", run, "--batch-size", "0"], ["--batch-size 0"]),
        (["--data", "x", "--out", run], ["already holds a run", "--resume"]),
    ]  # fmt: skip


RESUME_CASES = 9


def test_bad_resume_is_one_line_and_writes_nothing(finished_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a run must never scan or write the current folder
    cases = resume_cases(finished_run, tmp_path)
    assert len(cases) == RESUME_CASES
    for argv, words in cases:
        before = {p: p.stat().st_mtime_ns for p in written_results(tmp_path)}
        before.update({p: p.stat().st_mtime_ns for p in written_results(finished_run)})
        assert_user_error(run_cli(capsys, "train", *argv), *words)
        after = {p: p.stat().st_mtime_ns for p in written_results(tmp_path)}
        after.update({p: p.stat().st_mtime_ns for p in written_results(finished_run)})
        assert after == before, argv
        assert not (tmp_path / "runs").exists()


class _Unreadable(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i):
        raise CrackSegError(f"img_{i}.jpg: corrupt or truncated image. Re-export or remove it.")


def test_an_error_from_a_dataloader_worker_is_the_same_one_line():
    with pytest.raises(CrackSegError) as caught:
        next(iter(DataLoader(_Unreadable(), num_workers=1)))
    assert "DataLoader worker process" in str(caught.value)  # torch's re-raise, as users got it
    assert user_message(caught.value) == (
        "img_0.jpg: corrupt or truncated image. Re-export or remove it."
    )
    assert user_message(CrackSegError("plain")) == "plain"


def test_truncated_image_read_in_a_worker_is_one_line(synth_yaml, tmp_path):
    """The header is fine (the preflight passes), the pixels are cut: found in a worker."""
    data = tmp_path / "data"
    shutil.copytree(Path(synth_yaml).parent, data)
    victim = sorted((data / "images" / "train").glob("*.jpg"))[-1]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    out = tmp_path / "run"
    # batch 1: no batch is dropped, so every training image is read in the worker
    argv = ["train", "--data", data / "data.yaml", "--out", out, *TINY, "--workers", "1",
            "--batch-size", "1"]  # fmt: skip
    result = run_cli_process(*argv)
    assert_user_error(result, victim.name, "truncated")
    assert written_results(out) == []
