"""Bundled models built in a tmp folder (`CRACKSEG_WEIGHTS_DIR`): the `--checkpoint` resolver,
`load_model()` with no argument or a name, the same checks as checkpoints, and listing."""

from __future__ import annotations

import json

import pytest
import torch

import crackseg
from crackseg.engine.checkpoint import model_payload, save_checkpoint
from crackseg.errors import CrackSegError
from crackseg.models import build_model
from crackseg.weights import bundled_models, resolve_checkpoint
from crackseg.weights.bundle import write_bundle

CONFIG = {"image_size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "lr": 1e-3}


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model("unet_small").eval()
    model.config = dict(CONFIG)
    return model


def bundle(folder, name="crackseg-test-v1", *, dtype="fp16", threshold=0.7, **kw):
    metrics = {"split": "val", "crack_iou": 0.42}
    return write_bundle(tiny_model(), folder, name, dtype=dtype, threshold=threshold,
                        metrics=metrics, **kw)  # fmt: skip


def test_resolver_passes_a_given_path_through_without_a_note(weights_dir):
    assert resolve_checkpoint("runs/x/best.ckpt") == ("runs/x/best.ckpt", None)


def test_resolver_without_a_bundle_is_one_clear_error(weights_dir):
    with pytest.raises(CrackSegError, match="no bundled model in this installation; pass --checkp"):
        resolve_checkpoint(None)
    with pytest.raises(CrackSegError, match="no bundled model"):
        crackseg.load_model()


def test_resolver_none_is_the_default_bundle_with_a_one_line_note(weights_dir):
    path = bundle(weights_dir)
    resolved, note = resolve_checkpoint(None)
    assert resolved == path and "\n" not in note
    assert note == ("using the bundled model crackseg-test-v1 (val crack IoU 0.42; "
                    "pass --checkpoint to use your own)")  # fmt: skip


def test_the_bundle_marked_default_wins_over_name_order(weights_dir):
    bundle(weights_dir, "a-first")
    bundle(weights_dir, "z-chosen", extra={"default": True})
    assert [m.name for m in bundled_models()] == ["z-chosen", "a-first"]
    assert resolve_checkpoint(None)[0].stem == "z-chosen"


def test_the_newest_bundle_marked_default_is_the_default(weights_dir):
    """A user's recalibrated bundle, marked default, takes over from the shipped one whatever
    the names; bundles without a creation time count as the oldest."""
    created = {"b-shipped": "2026-12-01T21:59:51Z", "a-mine": "2026-12-07T10:00:00Z"}
    for name, when in created.items():
        bundle(weights_dir, name, extra={"default": True, "provenance": {"created": when}})
    bundle(weights_dir, "0-undated", extra={"default": True})
    bundle(weights_dir, "0-plain")
    assert [m.name for m in bundled_models()] == ["a-mine", "b-shipped", "0-undated", "0-plain"]
    assert resolve_checkpoint(None)[0].stem == "a-mine"


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_load_model_no_argument_is_the_bundle_upcast_to_float32(weights_dir, dtype):
    path = bundle(weights_dir, dtype=dtype)
    reference = tiny_model()
    model = crackseg.load_model()
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    cast = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    for key, value in reference.state_dict().items():  # exactly the stored low-precision values
        expected = value.to(cast).float() if value.is_floating_point() else value
        assert torch.equal(model.state_dict()[key], expected), key
    assert model.config["threshold"] == 0.7
    assert model.config["image_size"] == 64 and model.config["mean"] == CONFIG["mean"]
    assert "lr" not in model.config  # only what inference needs
    assert crackseg.load_model("crackseg-test-v1").config["bundle"] == "crackseg-test-v1"
    assert crackseg.load_model(path).config["threshold"] == 0.7
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["dtype"] == dtype and meta["size_bytes"] == path.stat().st_size


def test_a_checkpoint_path_still_loads_as_before(weights_dir, tmp_path):
    model = tiny_model(seed=3)
    path = save_checkpoint({**model_payload(model), "config": CONFIG}, tmp_path / "best.ckpt")
    loaded = crackseg.load_model(path)
    assert torch.equal(loaded.state_dict()["head.weight"], model.state_dict()["head.weight"])
    assert loaded.config == CONFIG


def test_unknown_name_lists_the_bundled_models(weights_dir):
    bundle(weights_dir)
    with pytest.raises(CrackSegError, match=r"nosuch: neither a checkpoint file nor a bundled "
                       r"model \(bundled: crackseg-test-v1\)"):  # fmt: skip
        crackseg.load_model("nosuch")


def test_bundle_with_non_finite_weights_is_refused_by_name(weights_dir):
    from safetensors.torch import load_file, save_file

    path = bundle(weights_dir)
    tensors = load_file(path)
    tensors["head.weight"][0] = float("nan")
    save_file(tensors, path)
    with pytest.raises(CrackSegError, match="non-finite weights .* in 'head.weight'"):
        crackseg.load_model()


def test_bundle_with_foreign_keys_names_them(weights_dir):
    from safetensors.torch import load_file, save_file

    path = bundle(weights_dir)
    tensors = load_file(path)
    tensors["renamed.weight"] = tensors.pop("head.weight")
    save_file(tensors, path)
    with pytest.raises(CrackSegError, match=r"1 missing \(e.g. 'head.weight'\), 1 unexpected"):
        crackseg.load_model()


def test_corrupt_or_orphan_bundle_files_are_one_line_errors(weights_dir):
    path = bundle(weights_dir)
    path.write_bytes(b"not safetensors")
    with pytest.raises(CrackSegError, match="not readable safetensors"):
        crackseg.load_model(path)
    path.with_suffix(".json").write_text("{broken")
    with pytest.raises(CrackSegError, match="unreadable metadata"):
        crackseg.load_model(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(CrackSegError, match="no metadata file crackseg-test-v1.json"):
        crackseg.load_model(path)


def test_write_bundle_refuses_files_over_the_size_limit(weights_dir, monkeypatch):
    monkeypatch.setattr("crackseg.weights.bundle.MAX_BYTES", 1000)
    with pytest.raises(CrackSegError, match="over the 0 MB limit|MB, over the"):
        bundle(weights_dir)
    assert list(weights_dir.iterdir()) == []  # nothing half-written


def test_predictor_uses_the_bundles_normalisation(weights_dir):
    from crackseg.inference import Predictor

    bundle(weights_dir)
    predictor = Predictor.from_checkpoint(resolve_checkpoint(None)[0])
    assert list(predictor.mean) == CONFIG["mean"] and predictor.window == 64
