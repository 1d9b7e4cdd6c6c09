"""Engine pieces: schedule, checkpoints, EMA, config layering, sliding-window inference."""

import pytest
import torch

import crackseg
from crackseg.config import FIELDS, TrainConfig, coerce, resolve_config, value_type
from crackseg.engine.checkpoint import load_model, read_checkpoint, save_checkpoint
from crackseg.engine.ema import ModelEMA
from crackseg.engine.schedule import TimeBudget, lr_at
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor


def test_lr_schedule_warms_up_then_decays():
    kw = dict(base_lr=1.0, total_steps=100, warmup_steps=10, min_lr_ratio=0.0)
    assert lr_at(0, **kw) == pytest.approx(0.1)
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(10, **kw) == pytest.approx(1.0)
    assert lr_at(55, **kw) == pytest.approx(0.5)  # cosine half way
    assert lr_at(100, **kw) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(55, **kw, schedule="poly", power=1.0) == pytest.approx(0.5)


def test_checkpoint_is_atomic_safe_and_self_describing(tmp_path):
    model = crackseg.build_model("unet_small", base_channels=4, depth=2)
    path = save_checkpoint({"model": dict(model.preset), "state_dict": model.state_dict(),
                            "config": {"image_size": 64}}, tmp_path / "run" / "a.ckpt")  # fmt: skip
    assert [p.name for p in path.parent.iterdir()] == ["a.ckpt"]  # no temporary left behind
    rebuilt = load_model(path)
    assert rebuilt.config == {"image_size": 64} and not rebuilt.training
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(rebuilt(x), model.eval()(x))
    (tmp_path / "junk.ckpt").write_bytes(b"\x00" * 10)
    with pytest.raises(CrackSegError, match="junk.ckpt: not a readable checkpoint"):
        read_checkpoint(tmp_path / "junk.ckpt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.ckpt")
    with pytest.raises(CrackSegError, match="not a crackseg checkpoint"):
        read_checkpoint(tmp_path / "other.ckpt")


def test_ema_follows_the_decay_formula_not_the_weights():
    """ema_n = d_n * ema_(n-1) + (1 - d_n) * w_n with d_n = min(decay, (1 + n) / (10 + n))."""
    model = torch.nn.Linear(2, 2)
    ema = ModelEMA(model, decay=0.9)
    expected = model.weight.detach().clone()  # the EMA starts as a copy
    for n in range(1, 104):  # weights jump after 100 updates: the EMA must lag behind them
        with torch.no_grad():
            model.weight.fill_(float(n > 100))
        ema.update(model)
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * model.weight.detach()
    assert ema.updates == 103
    torch.testing.assert_close(ema.module.weight, expected)
    torch.testing.assert_close(ema.module.weight, torch.full((2, 2), 1 - 0.9**3), atol=1e-4, rtol=0)


def test_config_layers_defaults_yaml_and_flags(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("epochs: 7\nlr: 0.01\nmodel: unet\n")
    cfg = resolve_config(recipe, {"lr": 0.5, "batch_size": None})
    assert (cfg.epochs, cfg.lr, cfg.model, cfg.batch_size) == (7, 0.5, "unet", 8)
    recipe.write_text("epoch: 7\n")
    with pytest.raises(CrackSegError, match="r.yaml: unknown option 'epoch'"):
        resolve_config(recipe)


def test_predictor_equals_plain_forward_when_no_tiling_is_needed():
    torch.manual_seed(0)
    model = crackseg.build_model("unet_small", base_channels=4, depth=2).eval()
    predictor = Predictor(model, window=64, mean=(0, 0, 0), std=(1, 1, 1))
    x = torch.randn(2, 3, 64, 50)
    torch.testing.assert_close(predictor.logits(x), model(x))


def test_tiled_prediction_blends_back_to_the_full_image():
    torch.manual_seed(0)
    pointwise = torch.nn.Conv2d(3, 2, 1).eval()  # no context: tiling must change nothing
    for overlap in (False, True):
        predictor = Predictor(pointwise, window=32, mean=(0, 0, 0), std=(1, 1, 1), overlap=overlap)
        x = torch.randn(1, 3, 100, 75)
        torch.testing.assert_close(predictor.logits(x), pointwise(x), atol=1e-5, rtol=0)


def test_tta_and_scale_keep_the_input_size():
    model = crackseg.build_model("unet_small", base_channels=4, depth=2).eval()
    predictor = Predictor(model, window=32, mean=(0, 0, 0), std=(1, 1, 1), tta=True, scale=0.5)
    assert predictor.logits(torch.randn(1, 3, 90, 70)).shape == (1, 2, 90, 70)


def test_config_coerces_yaml_strings_and_rejects_wrong_types(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("lr: 1e-3\nepochs: 3.0\nema: true\nmean: [0.5, 0.5, 0.5]\n")
    cfg = resolve_config(recipe)
    assert (cfg.lr, cfg.epochs, cfg.ema, cfg.mean) == (0.001, 3, True, (0.5, 0.5, 0.5))
    recipe.write_text("epochs: ten\n")
    with pytest.raises(CrackSegError, match="r.yaml: option 'epochs' expects int, got 'ten'"):
        resolve_config(recipe)


def test_config_validates_every_option_once_naming_its_source(tmp_path):
    with pytest.raises(CrackSegError, match=r"^--batch-size 0: must be a whole number >= 1$"):
        resolve_config(None, {"batch_size": 0})
    with pytest.raises(CrackSegError, match=r"^--lr nan: must be a finite number > 0$"):
        resolve_config(None, {"lr": float("nan")})
    recipe = tmp_path / "r.yaml"
    recipe.write_text("ema_decay: 2\n")
    with pytest.raises(CrackSegError, match=r"r.yaml: option 'ema_decay': must be .*\[0, 1\)"):
        resolve_config(recipe)
    recipe.write_text("class_weights: [1, -1]\n")
    with pytest.raises(CrackSegError, match=r"r.yaml: option 'class_weights': .*weight >= 0"):
        resolve_config(recipe)
    assert TrainConfig().problems() == []  # the defaults are valid


def test_config_types_come_from_the_annotations():
    assert value_type("crop") == (int, (), True)
    assert value_type("mean") == (tuple, (float, float, float), False)
    assert value_type("class_weights") == (list, (float,), True)
    assert coerce("mean", ["0.5", 1, 0], "x.yaml") == (0.5, 1.0, 0.0)
    with pytest.raises(CrackSegError, match="x.yaml: option 'mean' expects 3 numbers"):
        coerce("mean", [0.5, 0.5], "x.yaml")
    with pytest.raises(CrackSegError, match="expects a list of float"):
        coerce("class_weights", [1, "a"], "x.yaml")


def test_every_config_option_is_a_train_flag():
    from crackseg.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {opt for action in train._actions for opt in action.option_strings}
    for name in FIELDS:
        flag = "--model-arg" if name == "model_args" else "--" + name.replace("_", "-")
        assert flag in flags, flag
    args = train.parse_args(
        ["--eval-every", "2", "--mean", "0.5", "0.5", "0.5", "--no-channels-last"]
    )
    assert (args.eval_every, args.mean, args.channels_last) == (2, [0.5, 0.5, 0.5], False)
    assert args.epochs is None  # not given: the YAML value or the default stands


def test_time_budget_warms_up_by_step_then_decays_with_the_clock():
    now = [100.0]
    budget = TimeBudget(60.0, base_lr=1.0, warmup_steps=4, schedule="cosine", min_lr_ratio=0.0,
                        clock=lambda: now[0])  # fmt: skip
    assert budget(0) == pytest.approx(0.25) and budget(3) == pytest.approx(1.0)
    assert budget(10) == pytest.approx(1.0) and not budget.spent()  # no time has passed
    now[0] += 30.0
    assert budget(10) == pytest.approx(0.5) and budget.fraction() == pytest.approx(0.5)
    now[0] += 30.0
    assert budget(10) == pytest.approx(0.0) and budget.spent()
    resumed = TimeBudget(60.0, base_lr=1.0, warmup_steps=0, schedule="cosine", min_lr_ratio=0.0,
                         elapsed=45.0, clock=lambda: now[0])  # fmt: skip
    assert resumed.fraction() == pytest.approx(0.75)
