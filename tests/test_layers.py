"""Numerical equivalence of the from-scratch layers with their formulas and with torch's own ops."""

import math

import pytest
import torch
import torch.nn.functional as F

from crackseg.models import (
    Block,
    MultiHeadAttention,
    PatchEmbed,
    attention,
    resample_pos_embed,
    sincos_1d,
    sincos_2d,
)


def test_attention_paths_agree_with_formula():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 16) for _ in range(3))
    formula = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(16), dim=-1) @ v
    fused = attention(q, k, v)
    out, weights = attention(q, k, v, return_weights=True)
    torch.testing.assert_close(fused, formula, atol=1e-5, rtol=0)
    torch.testing.assert_close(out, formula, atol=1e-5, rtol=0)
    assert weights.shape == (2, 3, 7, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 7))


def test_multihead_attention_matches_torch_reference():
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, num_heads=4).eval()
    ref = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    ref.in_proj_weight.data.copy_(mha.qkv.weight)
    ref.in_proj_bias.data.copy_(mha.qkv.bias)
    ref.out_proj.weight.data.copy_(mha.proj.weight)
    ref.out_proj.bias.data.copy_(mha.proj.bias)
    x = torch.randn(2, 9, 32)
    expected, expected_w = ref(x, x, x, average_attn_weights=False)
    out, weights = mha(x, return_attention=True)
    torch.testing.assert_close(mha(x), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, expected_w, atol=1e-5, rtol=0)
    assert isinstance(mha(x), torch.Tensor)  # weights only on request


def test_block_is_the_lectures_prenorm_block():
    torch.manual_seed(0)
    block = Block(24, num_heads=3).eval()
    x = torch.randn(2, 5, 24)
    y = x + block.attn(block.norm1(x))
    expected = y + block.mlp(block.norm2(y))
    torch.testing.assert_close(block(x), expected)
    assert isinstance(block.mlp.act, torch.nn.GELU) and block.mlp.act.approximate == "none"


def test_drop_path_drops_whole_samples_in_training_only():
    torch.manual_seed(0)
    block = Block(8, num_heads=2, drop_path=0.5)
    x = torch.randn(64, 3, 8)
    assert torch.equal(block.drop_path.eval()(x), x)
    out = block.drop_path.train()(x)
    per_sample_zero = (out == 0).flatten(1).all(1)
    assert 10 < per_sample_zero.sum() < 54  # about half the samples dropped, whole samples
    kept = ~per_sample_zero
    torch.testing.assert_close(out[kept], x[kept] * 2)


def test_patch_embedding_equals_strided_conv():
    torch.manual_seed(0)
    embed = PatchEmbed(patch_size=8, in_channels=3, embed_dim=20)
    conv = torch.nn.Conv2d(3, 20, 8, stride=8)
    conv.weight.data.copy_(embed.proj.weight.reshape(20, 3, 8, 8))
    conv.bias.data.copy_(embed.proj.bias)
    images = torch.randn(2, 3, 32, 48)
    expected = conv(images).flatten(2).transpose(1, 2)  # (B, N, D)
    torch.testing.assert_close(embed(images), expected, atol=1e-5, rtol=0)


def test_overlapping_patches_equal_conv_with_smaller_stride():
    torch.manual_seed(0)
    embed = PatchEmbed(patch_size=8, stride=4, in_channels=3, embed_dim=10)
    images = torch.randn(1, 3, 32, 40)
    expected = F.conv2d(images, embed.proj.weight.reshape(10, 3, 8, 8), embed.proj.bias, stride=4)
    assert embed.grid(32, 40) == (7, 9)
    torch.testing.assert_close(
        embed(images), expected.flatten(2).transpose(1, 2), atol=1e-5, rtol=0
    )


def test_patch_embedding_rejects_bad_sizes():
    with pytest.raises(ValueError, match="multiple of patch_size"):
        PatchEmbed(patch_size=16, embed_dim=8)(torch.zeros(1, 3, 20, 32))
    with pytest.raises(ValueError, match="stride"):
        PatchEmbed(patch_size=4, stride=8)


def test_sincos_1d_is_the_formula():
    pe = sincos_1d(50, 16)
    for pos in (0, 1, 7, 49):
        for i in range(8):
            angle = pos / 10000 ** (2 * i / 16)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_sincos_2d_encodes_rows_then_columns():
    pe = sincos_2d(3, 4, 16).reshape(3, 4, 16)
    torch.testing.assert_close(pe[2, 1, :8], sincos_1d(3, 8)[2])
    torch.testing.assert_close(pe[2, 1, 8:], sincos_1d(4, 8)[1])
    with pytest.raises(ValueError):
        sincos_2d(2, 2, 10)


def test_resample_keeps_class_token_and_changes_grid():
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 4 * 4, 8)
    out = resample_pos_embed(pos, (6, 8), (4, 4))
    assert out.shape == (1, 1 + 48, 8)
    torch.testing.assert_close(out[:, :1], pos[:, :1])
    assert resample_pos_embed(pos, (4, 4), (4, 4)) is pos
    constant = torch.ones(1, 17, 8)  # a constant grid stays constant under bicubic resampling
    torch.testing.assert_close(resample_pos_embed(constant, (7, 5), (4, 4)), torch.ones(1, 36, 8))
