"""Every preset (shrunk through overrides): shapes at odd sizes, backward, no NaN; weight loading."""

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from safetensors.torch import save_file

import crackseg
from crackseg.errors import CrackSegError
from crackseg.models import (
    MaskTransformer,
    load_vit_weights,
    sincos_2d,
    to_timm_state_dict,
    valid_output_size,
    valid_sizes,
)

SHRINK_VIT = dict(embed_dim=32, depth=2, num_heads=2)


def shrunk(name: str) -> dict:
    if name.startswith("unet_vit"):
        return dict(base_channels=4, depth=3, embed_dim=16, num_heads=2, transformer_depth=1)
    if name.startswith("unet"):
        return dict(base_channels=4, depth=3)
    if name.startswith("segmenter") and name.endswith("_mask"):
        return dict(SHRINK_VIT, image_size=64, decoder_depth=1)
    return dict(SHRINK_VIT, image_size=64)


SEG_PRESETS = [n for n in crackseg.list_models() if not n.startswith("vit_")]


def test_list_models_has_every_family():
    names = crackseg.list_models()
    for size in ("tiny", "small", "base"):
        for patch in (16, 8):
            assert f"vit_{size}_patch{patch}" in names
            assert f"segmenter_vit_{size}_patch{patch}_linear" in names
            assert f"segmenter_vit_{size}_patch{patch}_mask" in names
    assert {"unet", "unet_small"} <= set(names)


@pytest.mark.parametrize("name", SEG_PRESETS)
def test_segmentation_preset_any_size_backward_no_nan(name):
    torch.manual_seed(0)
    model = crackseg.build_model(name, **shrunk(name))
    images = torch.randn(2, 3, 100, 150)
    logits = model(images)
    assert logits.shape == (2, 2, 100, 150)
    logits.logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(logits).all()
    assert model.preset["name"] == name


@pytest.mark.parametrize("name", [n for n in crackseg.list_models() if n.startswith("vit_")])
def test_vit_preset_features_and_head(name):
    model = crackseg.build_model(name, **shrunk(name), num_classes=5)
    images = torch.randn(2, 3, 96, 160)
    tokens = model.forward_features(images)
    patch = model.patch_size
    assert tokens.shape == (2, 1 + (96 // patch) * (160 // patch), 32)
    logits = model(images)
    assert logits.shape == (2, 5)
    logits.sum().backward()
    assert torch.isfinite(model.pos_embed.grad).all()


def test_vit_presets_have_timms_dimensions():
    for size, (dim, depth, heads) in {"tiny": (192, 12, 3), "small": (384, 12, 6),
                                      "base": (768, 12, 12)}.items():  # fmt: skip
        model = crackseg.build_model(f"vit_{size}_patch16")
        assert (model.embed_dim, len(model.blocks), model.blocks[0].attn.num_heads) == (
            dim,
            depth,
            heads,
        )
        assert model.norm.eps == 1e-6 and model.blocks[0].attn.qkv.bias is not None
        assert model.pos_embed.shape == (1, 1 + 14 * 14, dim)


def test_vit_tiny_parameter_count_matches_timm():
    # timm's vit_tiny_patch16_224 with num_classes=0 has 5,524,416 parameters.
    model = crackseg.build_model("vit_tiny_patch16")
    assert sum(p.numel() for p in model.parameters()) == 5_524_416


def test_sinusoidal_vit_at_other_sizes():
    model = crackseg.build_model("vit_tiny_patch16", **SHRINK_VIT, pos_embed="sincos")
    assert model.forward_features(torch.randn(1, 3, 64, 32)).shape == (1, 1 + 8, 32)
    assert "pos_embed" not in model.state_dict()
    # Another grid gets the formula's table for that grid (recomputed, not interpolated).
    torch.testing.assert_close(model.pos_embed_for((4, 2))[0, 1:], sincos_2d(4, 2, 32))


def test_attention_maps_on_request():
    model = crackseg.build_model("segmenter_vit_tiny_patch16_mask", **shrunk("x_mask"))
    logits, maps = model.forward_with_attention(torch.randn(1, 3, 64, 64))
    assert logits.shape == (1, 2, 64, 64)
    assert len(maps["encoder"]) == 2 and maps["encoder"][0].shape == (1, 2, 1 + 16, 1 + 16)
    assert maps["decoder"][0].shape[-1] == 16 + 2  # patches then the 2 class embeddings


def test_mask_decoder_refuses_one_class():
    with pytest.raises(CrackSegError, match="num_classes >= 2"):
        crackseg.build_model("segmenter_vit_tiny_patch16_mask", num_classes=1)
    model = crackseg.build_model("segmenter_vit_tiny_patch16_linear", **shrunk("x"), num_classes=1)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1, 32, 32)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_mask_decoder_learns_a_rare_class(num_classes):
    """LayerNorm over K = 2 class scores outputs +-1 (a step with no gradient), so that head
    collapsed to "all background" on cracks; the 2-class head must learn a rare class (5% of the
    tokens: those whose first feature is above 1.5), as the LayerNorm head does for K = 3."""
    torch.manual_seed(0)
    head = MaskTransformer(embed_dim=16, num_classes=num_classes, depth=1, num_heads=2, drop_rate=0)
    tokens = torch.randn(4, 64, 16)  # (B, N, D) on an 8x8 grid
    target = rearrange(tokens[..., 0] > 1.5, "b (h w) -> b h w", h=8).long()
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(100):
        loss = F.cross_entropy(head(tokens, (8, 8)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = head(tokens, (8, 8)).argmax(1) == 1
    rare = target == 1
    assert 4 <= rare.sum() <= 20
    assert (pred & rare).sum() / (pred | rare).sum() > 0.9  # IoU of the rare class
    assert head.mask_norm.weight.shape == head.mask_norm.bias.shape == (num_classes,)


def test_mask_decoder_class_features_start_apart_among_many_tokens():
    """Encoder tokens share a common component; with the official 0.02 init the class embeddings'
    residual stream is swamped by the attention average over the patch tokens, so the K class
    features start almost equal (cosine 0.998 here, and on the convstem8 Segmenter's 1024 tokens,
    which then kept one crack probability for every pixel for 418 steps). They must start apart."""
    torch.manual_seed(0)
    tokens = torch.randn(32) + 0.3 * torch.randn(2, 1024, 32)  # (B, N, D): shared + per-token
    cosines, feats = [], {}
    for init_std in (0.02, None):  # the official init, then the default
        kw = {} if init_std is None else {"class_init_std": init_std}
        head = MaskTransformer(embed_dim=32, num_classes=2, depth=1, num_heads=2, **kw).eval()
        head.decoder_norm.register_forward_hook(lambda m, i, out: feats.update(x=out))
        with torch.no_grad():
            head(tokens, (32, 32))
        classes = F.normalize(feats["x"][:, -2:] @ head.proj_classes, dim=-1)  # (B, K, D)
        cosines.append((classes[:, 0] * classes[:, 1]).sum(-1).mean().item())
    assert cosines[0] > 0.99  # the failure the default avoids, reproduced
    assert cosines[1] < 0.5


def test_unknown_model_and_bad_override_are_clear():
    with pytest.raises(CrackSegError, match="unknown model 'vit_huge'.*unet_small"):
        crackseg.build_model("vit_huge")
    with pytest.raises(CrackSegError, match="bad override"):
        crackseg.build_model("unet", channels=3)


def test_unet_valid_convolutions_follow_the_paper():
    assert valid_output_size(572) == 388
    assert valid_output_size(570) is None
    assert (572, 388) in valid_sizes(600)
    model = crackseg.build_model("unet", padding=0, base_channels=4)
    assert valid_output_size(188) == 4  # the smallest valid input
    assert model(torch.randn(1, 3, 204, 188)).shape == (1, 2, 20, 4)
    with pytest.raises(ValueError, match="nearest valid sizes: \\[188, 204\\]"):
        model(torch.randn(1, 3, 200, 188))


def test_unet_blocks_are_conv_bn_relu_without_bias():
    model = crackseg.build_model("unet")
    conv, bn, relu = model.down[0][0]
    assert conv.bias is None and conv.kernel_size == (3, 3)
    assert isinstance(bn, torch.nn.BatchNorm2d) and isinstance(relu, torch.nn.ReLU)
    assert [stage[0][0].out_channels for stage in model.down] == [64, 128, 256, 512, 1024]


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_timm_layout_round_trip(tmp_path, suffix):
    torch.manual_seed(0)
    src = crackseg.build_model("vit_tiny_patch16", **SHRINK_VIT, image_size=64).eval()
    state = to_timm_state_dict(src)
    assert state["patch_embed.proj.weight"].shape == (32, 3, 16, 16)
    path = tmp_path / f"vit{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"model": state}, path)
    dst = crackseg.build_model("vit_tiny_patch16", **SHRINK_VIT, image_size=64, pretrained=path)
    images = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(dst.eval().forward_features(images), src.forward_features(images))


def test_pretrained_encoder_resamples_grid_and_reports(tmp_path):
    torch.manual_seed(0)
    src = crackseg.build_model("vit_tiny_patch16", **SHRINK_VIT, image_size=64, num_classes=10)
    path = tmp_path / "w.safetensors"
    save_file(to_timm_state_dict(src), str(path))
    with pytest.warns(UserWarning, match="unexpected keys \\(2\\): head.bias, head.weight"):
        seg = crackseg.build_model(
            "segmenter_vit_tiny_patch16_linear", **SHRINK_VIT, image_size=96, pretrained=path
        )
    enc = seg.encoder
    assert enc.pos_embed.shape == (1, 1 + 36, 32)
    torch.testing.assert_close(enc.pos_embed[:, :1], src.pos_embed[:, :1])
    torch.testing.assert_close(enc.blocks[1].mlp.fc2.weight, src.blocks[1].mlp.fc2.weight)


def test_pretrained_mismatch_names_the_problem(tmp_path):
    src = crackseg.build_model("vit_tiny_patch16", **SHRINK_VIT, image_size=64)
    state = to_timm_state_dict(src)
    del state["blocks.1.attn.qkv.weight"]
    with pytest.raises(CrackSegError, match="missing keys \\(1\\): blocks.1.attn.qkv.weight"):
        load_vit_weights(crackseg.build_model("vit_tiny_patch16", **SHRINK_VIT), state)
    with pytest.raises(CrackSegError, match="expects"):
        load_vit_weights(crackseg.build_model("vit_small_patch16"), to_timm_state_dict(src))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CrackSegError, match="bad.pth: cannot read weights"):
        load_vit_weights(src, bad)


def test_every_preset_accepts_the_training_size():
    """create_model passes image_size to any preset: ViTs size their grid, U-Nets ignore it."""
    vit = crackseg.build_model("segmenter_vit_tiny_patch16_linear", **SHRINK_VIT, image_size=48)
    assert vit.encoder.grid_size == (3, 3)
    unet = crackseg.build_model("unet_small", base_channels=4, depth=2, image_size=48)
    plain = crackseg.build_model("unet_small", base_channels=4, depth=2)
    assert unet.state_dict().keys() == plain.state_dict().keys()


def test_encoder_contract_pads_and_grids_for_any_size():
    from crackseg.models.contracts import Decoder, Encoder

    model = crackseg.build_model("segmenter_vit_tiny_patch16_mask", **shrunk("segmenter_x_mask"))
    encoder = model.encoder
    assert isinstance(encoder, Encoder) and isinstance(model.decoder, Decoder)
    assert (encoder.patch_size, encoder.embed_dim, encoder.num_prefix_tokens) == (16, 32, 1)
    assert encoder.padding_for(100, 150) == (12, 10)  # -> 112 x 160, a 7 x 10 grid
    assert encoder.token_grid(112, 160) == (7, 10)
    assert encoder.padding_for(64, 64) == (0, 0)
    overlapping = crackseg.build_model("vit_tiny_patch16", **SHRINK_VIT, stride=8)
    assert overlapping.padding_for(30, 24) == (2, 0)  # 16 + 2 * 8 = 32 covers 30; 24 fits
    assert overlapping.token_grid(32, 24) == (3, 2)
    assert model.has_attention and model.decoder.has_attention
    linear = crackseg.build_model("segmenter_vit_tiny_patch16_linear", **shrunk("x"))
    assert not linear.decoder.has_attention
    assert "decoder" not in linear.forward_with_attention(torch.randn(1, 3, 32, 32))[1]
    assert not crackseg.build_model("unet_small", base_channels=4, depth=2).has_attention


def _reach(model, size: int, far: tuple[int, int]) -> float:
    """How much the logits at pixel (0, 0) move when only the pixel `far` changes."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, size, size)
    y = x.clone()
    y[..., far[0], far[1]] += 10.0
    with torch.no_grad():
        return float((model(x)[..., 0, 0] - model(y)[..., 0, 0]).abs().max())


def test_vit_sees_the_whole_image_while_a_shallow_unet_sees_its_receptive_field():
    """Global self-attention: the Segmenter's corner logit depends on the opposite corner. A
    depth-1 U-Net's receptive field is a few pixels, so its corner logit does not."""
    seg = crackseg.build_model("segmenter_vit_tiny_patch16_linear", **shrunk("x")).eval()
    assert _reach(seg, 64, (63, 63)) > 1e-4
    unet = crackseg.build_model("unet_small", base_channels=4, depth=1).eval()
    assert _reach(unet, 64, (63, 63)) == 0.0
    assert _reach(unet, 64, (1, 1)) > 1e-4  # but a neighbour does move it


def test_unet_skip_carries_full_resolution_detail():
    """With the bottleneck path zeroed, a one-pixel change still reaches the output through the
    skip connection at that pixel: fine detail does not have to survive the down-sampling."""
    torch.manual_seed(0)
    model = crackseg.build_model("unet_small", base_channels=4, depth=2).eval()
    with torch.no_grad():
        for up in model.up:
            up.up.weight.zero_()  # nothing comes up from the coarser level
            up.up.bias.zero_()
    x = torch.randn(1, 3, 32, 32)
    y = x.clone()
    y[..., 16, 16] += 10.0
    with torch.no_grad():
        change = (model(x) - model(y)).abs().sum(dim=1)[0]  # (H, W)
    assert change[16, 16] > 1e-4
    assert change[0, 0] == 0.0  # far away: nothing reaches through the skip's 3x3 convolutions
