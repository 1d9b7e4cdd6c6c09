"""The model-search architectures: residual U-Net, the TransUNet-style hybrid and its ablation,
the Segmenter's conv stem and skip decoder. Tiny widths, CPU, seconds."""

import hashlib
import math

import pytest
import torch

import crackseg
from crackseg.models.contracts import Encoder
from crackseg.models.unet import ResidualCNNBlocks

TINY = {
    "unet_res_small": dict(base_channels=4, depth=3),
    "unet_vit_small": dict(
        base_channels=4, depth=3, embed_dim=16, num_heads=2, transformer_depth=2
    ),
    "unet_cnn16_small": dict(base_channels=4, depth=3),
    "segmenter_vit_tiny_convstem8_linear": dict(embed_dim=32, depth=2, num_heads=2, image_size=64),
    "segmenter_vit_tiny_convstem8_mask": dict(
        embed_dim=32, depth=2, num_heads=2, image_size=64, decoder_heads=2
    ),
    "segmenter_vit_tiny_convstem8_skip": dict(embed_dim=32, depth=2, num_heads=2, image_size=64),
}


def test_new_presets_are_listed():
    assert set(TINY) <= set(crackseg.list_models())


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("size", [(70, 94), (64, 64)])
def test_new_preset_shapes_and_finite_grads(name, size):
    torch.manual_seed(0)
    model = crackseg.build_model(name, **TINY[name])
    logits = model(torch.randn(2, 3, *size))
    assert logits.shape == (2, 2, *size)
    logits.logsumexp(1).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


def test_unet_small_parameters_unchanged():
    """Old unet_small checkpoints still load: same 118 state-dict entries, names, shapes, order."""
    state = crackseg.build_model("unet_small").state_dict()
    names = [(k, tuple(v.shape)) for k, v in state.items()]
    assert len(names) == 118
    assert sum(p.numel() for p in crackseg.build_model("unet_small").parameters()) == 1_942_594
    digest = hashlib.sha256(repr(names).encode()).hexdigest()
    assert digest == "f0f0b0eeaecce5f95aab58781e70b602399bd7c67b2af7553244c94a71796027"


def test_ablation_is_unet_small_without_the_blocks():
    """transformer_depth=0 removes only the token stage: the ablation is unet_small's net."""
    ablation = crackseg.build_model("unet_cnn16_small").state_dict()
    unet = crackseg.build_model("unet_small").state_dict()
    assert [(k, v.shape) for k, v in ablation.items()] == [(k, v.shape) for k, v in unet.items()]
    hybrid = crackseg.build_model("unet_vit_small").state_dict()
    extra = {k.split(".")[0] for k in hybrid.keys() - ablation.keys()}
    assert extra == {"proj_in", "blocks", "norm", "proj_out"}
    assert crackseg.build_model("unet_res_small", residual=False).state_dict().keys() == unet.keys()


def test_residual_shortcut_is_used():
    """With the conv branch silenced (last BN scale and shift 0) the block outputs
    ReLU(shortcut(x)): the identity for equal widths, the 1x1 projection otherwise."""
    torch.manual_seed(0)
    same, wider = ResidualCNNBlocks(4, 4).eval(), ResidualCNNBlocks(3, 4).eval()
    x = torch.randn(2, 4, 9, 11)
    with torch.no_grad():
        for block in (same, wider):
            block.convs[-1][-1].weight.zero_()
            block.convs[-1][-1].bias.zero_()
        torch.testing.assert_close(same(x), x.relu())
        x3 = x[:, :3]
        torch.testing.assert_close(wider(x3), wider.shortcut(x3).relu())
        assert wider(x3).abs().sum() > 0
        wider.shortcut[0].weight.zero_()
        assert wider(x3).abs().sum() == 0  # nothing else is left to carry the input


def _reach(model, size: int, far: tuple[int, int]) -> float:
    """How much the logits at pixel (0, 0) move when only the pixel `far` changes (float64, so a
    small but real dependence is not lost in rounding; no dependence gives exactly 0)."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, size, size, dtype=torch.float64)
    y = x.clone()
    y[..., far[0], far[1]] += 10.0
    model = model.double().eval()
    with torch.no_grad():
        return float((model(x)[..., 0, 0] - model(y)[..., 0, 0]).abs().max())


def test_hybrid_blocks_mix_tokens_across_the_image():
    """A depth-1 U-Net sees about 10 px; with one Transformer block over its 1/2 map, the corner
    logit depends on the far corner. Without the block (the ablation) it does not."""
    args = dict(base_channels=4, depth=1, embed_dim=16, num_heads=2)
    torch.manual_seed(0)
    hybrid = crackseg.build_model("unet_vit_small", **args, transformer_depth=1)
    ablation = crackseg.build_model("unet_vit_small", **args, transformer_depth=0)
    with torch.no_grad():  # ViT's 0.02 init makes the far token's share tiny; widen it
        for m in [hybrid.proj_in, hybrid.proj_out, *hybrid.blocks.modules()]:
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(std=0.5)
    assert _reach(hybrid, 32, (31, 31)) > 1e-6
    assert _reach(ablation, 32, (31, 31)) == 0.0
    assert _reach(ablation, 32, (1, 1)) > 1e-6  # the receptive field is there, only short


def test_hybrid_positions_are_the_2d_sincos_formula_of_the_actual_grid():
    """With the input projection zeroed, the first block's input is the positional table: row
    r, column c -> [sin, cos](r / 10000^(2i/(D/2))) then the same of c, for a 3 x 5 grid."""
    D = 16
    model = crackseg.build_model("unet_vit_small", base_channels=4, depth=2, embed_dim=D,
                                 num_heads=2, transformer_depth=1, image_size=32).eval()  # fmt: skip
    with torch.no_grad():
        model.proj_in.weight.zero_()
        model.proj_in.bias.zero_()
    seen = []
    model.blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        model(torch.randn(1, 3, 12, 20))  # grid 3 x 5 at stride 4, not the 8 x 8 of image_size
    expected = torch.zeros(15, D)
    for r in range(3):
        for c in range(5):
            for i in range(D // 4):
                freq = 10000 ** (2 * i / (D // 2))
                row = (math.sin(r / freq), math.cos(r / freq))
                col = (math.sin(c / freq), math.cos(c / freq))
                expected[r * 5 + c, 2 * i : 2 * i + 2] = torch.tensor(row)
                expected[r * 5 + c, D // 2 + 2 * i : D // 2 + 2 * i + 2] = torch.tensor(col)
    torch.testing.assert_close(seen[0][0], expected)


def test_hybrid_is_an_encoder_with_attention_maps():
    model = crackseg.build_model("unet_vit_small", **TINY["unet_vit_small"]).eval()
    assert isinstance(model, Encoder) and model.has_attention
    assert (model.patch_size, model.num_prefix_tokens) == (8, 0)
    assert model.padding_for(70, 94) == (2, 2) and model.token_grid(72, 96) == (9, 12)
    x = torch.randn(1, 3, 70, 94)
    logits, maps = model.forward_with_attention(x)
    torch.testing.assert_close(logits, model(x))
    assert [m.shape for m in maps["encoder"]] == [(1, 2, 108, 108)] * 2
    rows = maps["encoder"][0].sum(-1)
    torch.testing.assert_close(rows, torch.ones_like(rows))
    ablation = crackseg.build_model("unet_cnn16_small", base_channels=4, depth=3)
    assert not ablation.has_attention


def test_conv_stem_tokens_overlap_their_neighbours_patches():
    """A linear patch token sees only its own 8 x 8 patch; a conv-stem token also sees pixels
    of the next patch (overlapping windows), so a crack on a patch border reaches both."""
    torch.manual_seed(0)
    kw = dict(embed_dim=32, depth=1, num_heads=2, image_size=32)
    for stem, reaches in (("patch", False), ("conv", True)):
        vit = crackseg.build_model("vit_tiny_patch8", **kw, stem=stem).eval()
        x = torch.randn(1, 3, 32, 32)
        y = x.clone()
        y[..., 8, 8] += 10.0  # first pixel of token (1, 1)
        with torch.no_grad():
            first = vit.patch_embed(x)[0, 0] - vit.patch_embed(y)[0, 0]  # token (0, 0)
        assert (first.abs().max() > 1e-4) == reaches, stem


def test_skip_decoder_carries_full_resolution_detail():
    """With the stem's projection zeroed the tokens know nothing of the image: the linear decoder
    output then ignores a one-pixel change, the skip decoder shows it at that pixel only."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    y = x.clone()
    y[..., 40, 40] += 10.0
    for decoder in ("linear", "skip"):
        name = f"segmenter_vit_tiny_convstem8_{decoder}"
        model = crackseg.build_model(name, **TINY[name]).eval()
        with torch.no_grad():
            model.encoder.patch_embed.proj.weight.zero_()
            change = (model(x) - model(y)).abs().sum(dim=1)[0]  # (H, W)
        assert (change[40, 40] > 1e-4) == (decoder == "skip"), decoder
        assert change[0, 0] == 0.0


def test_skip_decoder_needs_a_conv_stem():
    with pytest.raises(crackseg.errors.CrackSegError, match="stem='conv'"):
        crackseg.build_model("segmenter_vit_tiny_convstem8_skip", stem="patch")


def test_explain_shows_the_hybrids_attention():
    """explain finds the hybrid's blocks through the Encoder contract; the ablation gets saliency."""
    import numpy as np

    from crackseg.explain.core import explain

    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    hybrid = crackseg.build_model("unet_vit_small", **TINY["unet_vit_small"], image_size=64)
    expl = explain(hybrid, image)
    assert expl.kind == "attention" and tuple(expl.rollout.shape) == (8, 8)  # 64 / 2**3
    assert tuple(expl.probs.shape) == (50, 70)
    ablation = crackseg.build_model("unet_cnn16_small", **TINY["unet_cnn16_small"])
    assert explain(ablation, image).kind == "saliency"


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("unet_vit_small", ["base_channels=4", "depth=2", "embed_dim=16", "num_heads=2",
                            "transformer_depth=1"]),
        ("segmenter_vit_tiny_convstem8_skip", ["embed_dim=16", "depth=1", "num_heads=2"]),
    ],
)  # fmt: skip
def test_new_presets_train_and_reload_through_the_cli(synth_yaml, tmp_path, name, args):
    """model_args reach the preset, and the checkpoint rebuilds the same net (load_model)."""
    from crackseg.cli import main

    out = tmp_path / "run"
    argv = ["train", "--data", str(synth_yaml), "--epochs", "1", "--out", str(out), "--model", name,
            "--image-size", "64", "--batch-size", "4", "--workers", "0"]  # fmt: skip
    for arg in args:
        argv += ["--model-arg", arg]
    assert main(argv) == 0
    model = crackseg.load_model(out / "last.ckpt")
    assert model.preset["name"] == name
    n_blocks = len(model.blocks) if name.startswith("unet") else len(model.encoder.blocks)
    assert n_blocks == 1
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 40, 56)).shape == (1, 2, 40, 56)
