"""Attention maps, rollout, class-embedding attention and saliency; `crackseg explain` end to end."""

import numpy as np
import pytest
import torch
from PIL import Image

from crackseg import CrackSegError, build_model
from crackseg.cli import main
from crackseg.engine.checkpoint import model_payload, save_checkpoint
from crackseg.explain import attention_rollout, explain, explanation_grid

VIT = dict(embed_dim=32, depth=2, num_heads=2, image_size=64)
MODELS = {
    "mask": ("segmenter_vit_tiny_patch16_mask", {**VIT, "decoder_depth": 1}),
    "linear": ("segmenter_vit_tiny_patch16_linear", VIT),
    "vit": ("vit_tiny_patch16", VIT),
    "unet": ("unet_small", dict(base_channels=4, depth=2)),
}
CONFIG = {"image_size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "threshold": 0.5}


def tiny(kind: str):
    torch.manual_seed(0)
    name, kw = MODELS[kind]
    model = build_model(name, **kw).eval()
    model.config = dict(CONFIG)
    return model


def photo(h: int = 50, w: int = 70) -> np.ndarray:
    """A grey image with a dark diagonal 'crack'."""
    image = np.full((h, w, 3), 170, np.uint8)
    for i in range(min(h, w)):
        image[i, i : i + 3] = 30
    return image


@pytest.fixture
def checkpoint(tmp_path):
    def make(kind: str):
        path = tmp_path / f"{kind}.pt"
        return save_checkpoint({**model_payload(tiny(kind)), "config": CONFIG}, path)

    return make


def test_rollout_of_identity_attention_is_identity():
    eye = torch.eye(5).expand(3, 5, 5)  # (nh, T, T): every token attends only to itself
    rollout = attention_rollout([eye, eye, eye])
    assert torch.allclose(rollout, torch.eye(5))
    assert rollout[0, 1:].abs().max() == 0  # the class token's rollout over the patches


def test_rollout_matches_hand_computation():
    w1 = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    w2a, w2b = torch.tensor([[1.0, 0.0], [0.5, 0.5]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # heads averaged: W2 = [[1, 0], [.25, .75]]; A = (W + I) / 2; rollout = A2 @ A1
    expected = torch.tensor([[1.0, 0.0], [0.125, 0.875]]) @ torch.tensor([[0.75, 0.25], [0, 1]])
    rollout = attention_rollout([w1[None], torch.stack([w2a, w2b])])
    assert torch.allclose(rollout, expected)
    assert torch.allclose(rollout, torch.tensor([[0.75, 0.25], [0.09375, 0.90625]]))
    no_residual = attention_rollout([w1[None], w2a[None]], residual=False)
    assert torch.allclose(no_residual, w2a @ w1)
    top = attention_rollout([torch.stack([w2a, w2b])], head_fusion="max", residual=False)
    assert torch.allclose(top, torch.tensor([[1.0, 0.0], [0.5, 1.0]]))  # max is not renormalised
    with pytest.raises(ValueError, match="head_fusion"):
        attention_rollout([w1[None]], head_fusion="median")


def test_raw_attention_rows_sum_to_one():
    model = tiny("mask")
    _, maps = model.forward_with_attention(torch.randn(1, 3, 64, 64))
    for w in maps["encoder"] + maps["decoder"]:
        assert torch.allclose(w.sum(dim=-1), torch.ones(w.shape[:-1]), atol=1e-5)
    assert maps["decoder"][0].shape[-1] == 16 + 2  # N patch tokens + K class embeddings


@pytest.mark.parametrize("kind", ["mask", "linear", "vit"])
def test_attention_shapes(kind):
    image = photo()
    expl = explain(tiny(kind), image)
    assert expl.kind == "attention" and expl.saliency is None
    assert expl.cls_attention.shape == (2, 2, 4, 4) and expl.rollout.shape == (4, 4)
    assert (expl.cls_attention >= 0).all() and (expl.cls_attention.sum(dim=(-2, -1)) <= 1).all()
    if kind == "mask":
        assert expl.class_attention.shape == (1, 2, 4, 4)
    else:
        assert expl.class_attention is None
    assert (expl.probs is None) == (kind == "vit")
    assert expl.upsample(expl.cls_attention).shape == (2, 2, 50, 70)
    grid = explanation_grid(expl, image, cell=64)
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3


def test_class_attention_is_the_last_k_tokens_averaged_over_heads():
    model = tiny("mask")
    image = photo(64, 64)  # already the training size: no resize, no padding
    expl = explain(model, image)
    x = (torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 - 0.5) / 0.25
    _, maps = model.forward_with_attention(x)
    last = maps["decoder"][-1][0].mean(dim=0)  # (N + K, N + K)
    assert torch.allclose(expl.class_attention[-1].flatten(1), last[16:, :16], atol=1e-6)
    enc = maps["encoder"]
    assert torch.allclose(expl.cls_attention[1].flatten(1), enc[1][0, :, 0, 1:], atol=1e-6)
    rollout = attention_rollout([w[0] for w in enc])
    assert torch.allclose(expl.rollout.flatten(), rollout[0, 1:], atol=1e-6)


def test_maps_cover_the_padded_grid_and_crop_back():
    model = tiny("mask")
    model.config["image_size"] = 70  # not a multiple of 16: padded to 80, a 5x5 grid
    expl = explain(model, photo())
    assert expl.input_size == (70, 70) and expl.padded_size == (80, 80)
    assert expl.cls_attention.shape[-2:] == (5, 5)
    assert expl.upsample(expl.rollout).shape == (50, 70)


def test_unet_saliency_is_nonnegative_and_nonzero():
    model = tiny("unet")
    expl = explain(model, photo())
    assert expl.kind == "saliency" and expl.cls_attention is None
    assert expl.saliency.shape == (50, 70) and expl.probs.shape == (50, 70)
    assert (expl.saliency >= 0).all() and expl.saliency.max() > 0
    assert all(p.grad is None for p in model.parameters())  # only the input was differentiated
    smooth = explain(model, photo(), smoothgrad=3)
    assert (smooth.saliency >= 0).all() and not torch.equal(smooth.saliency, expl.saliency)
    with pytest.raises(CrackSegError, match="no attention"):
        explain(model, photo(), saliency=False)


def test_threshold_zero_is_honoured_and_stored_threshold_used():
    """0 is a valid threshold (every pixel is crack), not "unset" (the `threshold or 0.5` bug)."""
    model = tiny("unet")
    model.config["threshold"] = 0.9
    assert explain(model, photo()).threshold == 0.9  # the checkpoint's, when none is given
    assert explain(model, photo(), threshold=0.0).threshold == 0.0
    model.config = {}
    assert explain(model, photo()).threshold == 0.5  # the default


def test_explain_modules_point_one_way():
    """types is a leaf; render never needs core; core never needs render or files."""
    from test_architecture import import_graph

    graph = import_graph()
    assert not {e for e in graph["crackseg.explain.types"] if e.startswith("crackseg.explain")}
    assert "crackseg.explain.core" not in graph["crackseg.explain.render"]
    assert "crackseg.explain.core" not in graph["crackseg.explain.saliency"]
    assert (
        not {"crackseg.explain.render", "crackseg.explain.files"} & graph["crackseg.explain.core"]
    )


def test_segmenter_saliency_on_request_and_bad_images():
    expl = explain(tiny("linear"), photo(), saliency=True)
    assert expl.kind == "attention" and expl.saliency.shape == (50, 70)
    with pytest.raises(CrackSegError, match="no segmentation head"):
        explain(tiny("vit"), photo(), saliency=True)
    with pytest.raises(CrackSegError, match="uint8 RGB"):
        explain(tiny("vit"), photo().astype(np.float32))


def test_cli_writes_attention_grid(tmp_path, checkpoint, capsys):
    ckpt = checkpoint("mask")
    Image.fromarray(photo()).save(tmp_path / "wall.jpg")
    out = tmp_path / "out"
    assert main(["explain", "--checkpoint", str(ckpt), str(tmp_path / "wall.jpg"),
                 "--out", str(out), "--device", "cpu", "--cell", "64"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "2 layers x 2 heads + rollout + 2 class embeddings" in printed
    grid = np.asarray(Image.open(out / "wall_attention.png"))
    # rows: image/prediction/rollout/2 class embeddings, then 2 layers; 5 columns of 64 px cells
    assert grid.shape[:2] == (3 * 46, 5 * 64)  # cells keep the 50x70 aspect: 46x64
    assert (out / "wall_rollout.png").is_file()
    assert main(["explain", "--checkpoint", str(ckpt), str(tmp_path / "wall.jpg"), "--out",
                 str(out), "--device", "cpu", "--cell", "64", "--layers", "last"]) == 0  # fmt: skip
    assert "last of 2 layers x 2 heads" in capsys.readouterr().out
    assert np.asarray(Image.open(out / "wall_attention.png")).shape[:2] == (2 * 46, 5 * 64)


def test_cli_unet_says_attention_does_not_apply(tmp_path, checkpoint, capsys):
    ckpt = checkpoint("unet")
    Image.fromarray(photo()).save(tmp_path / "wall.png")
    assert main(["explain", "--checkpoint", str(ckpt), str(tmp_path / "wall.png"),
                 "--out", str(tmp_path), "--device", "cpu"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "unet_small is a convolutional network: attention maps do not apply; " in printed
    assert "wrote a gradient saliency map instead: " in printed
    assert (tmp_path / "wall_saliency.png").is_file()
    assert not (tmp_path / "wall_attention.png").exists()


def test_cli_bad_inputs_name_the_file(tmp_path, checkpoint, capsys):
    ckpt = checkpoint("unet")
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "fake.pt").write_bytes(b"junk")
    Image.fromarray(photo()).save(tmp_path / "wall.png")
    cases = [
        ([str(tmp_path / "missing.png")], str(ckpt), "missing.png"),
        ([str(tmp_path / "notes.png")], str(ckpt), "notes.png"),
        ([str(tmp_path / "wall.png")], str(tmp_path / "fake.pt"), "fake.pt"),
    ]
    for images, ck, name in cases:
        assert main(["explain", "--checkpoint", ck, *images, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert name in err and "Traceback" not in err
