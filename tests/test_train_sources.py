"""Training from more than one dataset (--extra-data) and from another run's weights (--init)."""

import json
from pathlib import Path

import torch
from test_train import TINY

from crackseg import weights
from crackseg.cli import main
from crackseg.config import resolve_config
from crackseg.data import synthesize
from crackseg.engine.checkpoint import model_spec, read_checkpoint


def test_extra_data_joins_the_train_split_and_validates_on_data_alone(synth_yaml, tmp_path, capsys):
    extra = synthesize(tmp_path / "extra", 12, seed=5, image_size=64, splits=(1.0, 0.0, 0.0))
    alone, joined = tmp_path / "alone", tmp_path / "joined"
    args = ["train", "--data", str(synth_yaml), "--epochs", "1", *TINY]
    assert main([*args, "--out", str(alone)]) == 0
    assert main([*args, "--out", str(joined), "--extra-data", str(extra)]) == 0
    out = capsys.readouterr().out
    assert "training on 28 items from 2 datasets" in out  # 16 synth train + 12 extra
    steps = [json.loads((r / "summary.json").read_text())["last"]["step"] for r in (alone, joined)]
    assert steps == [4, 7]  # batches of 4: 16 items, then 28
    ckpt = read_checkpoint(joined / "last.ckpt")
    assert ckpt["config"]["extra_data"] == [str(extra)]


def test_init_starts_from_the_given_weights(synth_yaml, tmp_path):
    first, frozen, fresh = tmp_path / "first", tmp_path / "frozen", tmp_path / "fresh"
    args = ["train", "--data", str(synth_yaml), "--epochs", "1", *TINY]
    assert main([*args, "--out", str(first)]) == 0
    start = str(first / "last.ckpt")
    # a learning rate of ~0 leaves the --init weights as they were; without --init they differ
    assert main([*args, "--out", str(frozen), "--init", start, "--lr", "1e-12"]) == 0
    assert main([*args, "--out", str(fresh), "--lr", "1e-12", "--seed", "1"]) == 0
    weights = {r: read_checkpoint(r / "last.ckpt")["state_dict"] for r in (first, frozen, fresh)}
    key = next(k for k in weights[first] if k.endswith("weight") and weights[first][k].ndim == 4)
    assert torch.allclose(weights[frozen][key], weights[first][key], atol=1e-6)
    assert not torch.allclose(weights[fresh][key], weights[first][key], atol=1e-3)


def test_init_without_model_trains_the_preset_of_its_weights(synth_yaml, tmp_path):
    first, again = tmp_path / "first", tmp_path / "again"
    args = ["train", "--data", str(synth_yaml), "--epochs", "1"]
    assert main([*args, *TINY, "--out", str(first)]) == 0  # unet_small, base 4, depth 2
    no_model = TINY[TINY.index("--image-size") :]  # TINY without --model and --model-arg
    assert main([*args, *no_model, "--out", str(again), "--init", str(first / "last.ckpt")]) == 0
    config = read_checkpoint(again / "last.ckpt")["config"]
    assert (config["model"], config["model_args"]) == (
        "unet_small",
        {"base_channels": 4, "depth": 2},
    )


def test_init_of_a_bundled_model_picks_its_preset_unless_model_is_given(
    synth_yaml, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the default run folder is runs/<model> under the working folder
    bundle = weights.default_model()
    name, overrides = model_spec(bundle.name)
    config = resolve_config(overrides={"data": str(synth_yaml), "init": bundle.name})
    assert (config.model, config.model_args) == (name, {k: v for k, v in overrides.items()
                                                         if k != "image_size"})  # fmt: skip
    assert name != "unet_small"  # the default preset: the test would not show the choice
    assert config.out == str(Path("runs") / name)
    (tmp_path / "runs" / name).mkdir(parents=True)  # a finished run is never overwritten
    assert resolve_config(overrides={"data": str(synth_yaml), "init": bundle.name}).out == str(
        Path("runs") / f"{name}2"
    )
    chosen = resolve_config(overrides={"data": str(synth_yaml), "init": bundle.name,
                                       "model": "unet_small"})  # fmt: skip
    assert chosen.model == "unet_small"
