"""benchmarks/peer_presets.py: an smp peer becomes a crackseg preset that keeps any input size, and
model_search.py --peers routes every crackseg command through that entry point. smp itself lives
in .venv-peers: a tiny stand-in module takes its place here, so the test runs in .venv and CI."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

import crackseg
from crackseg.errors import CrackSegError
from crackseg.models.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import model_search  # noqa: E402
import peer_presets  # noqa: E402


class StrideNet(nn.Module):
    """Like an smp net: refuses a side that is not a multiple of 32, else (B, K, H, W) logits."""

    def __init__(self, encoder_name: str, encoder_weights=None, classes: int = 1):
        super().__init__()
        assert encoder_weights is None  # the peers train from random init: nothing is downloaded
        self.conv = nn.Conv2d(3, classes, 3, padding=1)

    def forward(self, x):
        if x.shape[-2] % 32 or x.shape[-1] % 32:
            raise RuntimeError(f"side not divisible by 32: {tuple(x.shape)}")
        return self.conv(x)


@pytest.fixture
def clean_presets():
    """Leaves crackseg's presets as the test found them."""
    yield
    for name in peer_presets.PEERS:
        PRESETS.pop(name, None)


@pytest.fixture
def fake_smp(monkeypatch, clean_presets):
    monkeypatch.setitem(sys.modules, "segmentation_models_pytorch",
                        types.SimpleNamespace(Unet=StrideNet))  # fmt: skip


@pytest.mark.parametrize("size", [(416, 416), (121, 213), (224, 224)])
def test_peer_preset_takes_any_size(fake_smp, size):
    peer_presets.register()
    model = crackseg.build_model("smp_unet_resnet18", image_size=416)
    assert model.preset == {"name": "smp_unet_resnet18", "overrides": {"image_size": 416}}
    x = torch.randn(2, 3, *size)
    logits = model(x)
    assert logits.shape == (2, 2, *size)
    # the crop keeps the top-left: equal to the net on the zero-padded input, cut back
    padded = torch.nn.functional.pad(x, (0, -size[1] % 32, 0, -size[0] % 32))
    assert torch.equal(logits, model.net(padded)[..., : size[0], : size[1]])


def test_register_adds_only_the_peers_and_keeps_ours(fake_smp):
    ours = dict(PRESETS)
    peer_presets.register()
    peer_presets.register()  # idempotent
    assert PRESETS.keys() - ours.keys() == set(peer_presets.PEERS)
    assert all(PRESETS[k] is v for k, v in ours.items())


def test_missing_smp_is_one_clear_error(monkeypatch, clean_presets):
    monkeypatch.setitem(sys.modules, "segmentation_models_pytorch", None)  # import fails
    peer_presets.register()
    with pytest.raises(CrackSegError, match="needs segmentation_models_pytorch.*make peers"):
        crackseg.build_model("smp_unet_resnet18")


def test_model_search_routes_commands_through_the_peer_entry():
    plain = model_search.crackseg_cmd(["train"], threads=1, cpu=None)
    peers = model_search.crackseg_cmd(["train"], threads=1, cpu=None, peers=True)
    assert plain[1:] == ["-m", "crackseg", "train"]
    assert peers[1:] == [str(ROOT / "benchmarks" / "peer_presets.py"), "train"]
